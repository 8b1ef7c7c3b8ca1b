"""A simulated card reader: the same port as the PC/SC and nfcpy adapters.

Tests and the simulator tap cards on it by technology and raw id (the reference is
computed here, at the adapter boundary, as the real adapters do), unplug and replug it,
and read its history.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from edge.core.events import CardPresented, ReaderStatusChanged
from edge.errors import ClosedError
from edge.ports import CardKeys, CardReferencer, Emit
from edge.readers.debounce import TapDebouncer


@dataclass(frozen=True, slots=True)
class SimTap:
    """One presentation on the simulated reader, as its history keeps it."""

    card_ref: str
    authenticated: bool
    counted: bool  # False if debouncing merged it into the previous tap


class SimCardReader:
    """A reader driven by method calls instead of radio."""

    def __init__(
        self,
        reader_id: str,
        referencer: CardReferencer,
        debounce_s: float = 1.5,
        monotonic: Callable[[], float] | None = None,
        card_keys: CardKeys | None = None,
    ) -> None:
        self._id = reader_id
        self._referencer = referencer
        self._card_keys = card_keys
        self._debounce = TapDebouncer(debounce_s)
        self._monotonic = monotonic or time.monotonic
        self._emit: Emit | None = None
        self._closed = False
        self._lock = threading.Lock()
        self.online = True
        self.history: list[SimTap] = []

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("online" if self.online else "offline")
        return f"<SimCardReader {self._id} {state} taps={len(self.history)}>"

    @property
    def reader_id(self) -> str:
        """The reader's id in the device configuration."""
        return self._id

    def start(self, emit: Emit) -> None:
        """Begin delivering taps to `emit`."""
        self._check_open()
        self._emit = emit

    def tap(
        self,
        technology: str,
        card_id: str,
        authenticated: bool = False,
        *,
        key: bytes | None = None,
    ) -> CardPresented | None:
        """Present a card and take it away; return the event emitted (None if merged).

        A card holding `key` proves itself the way a Lite-S or DESFire card does: the read
        is authenticated when the device's key for that card is the same key.
        """
        ref = self._referencer(technology, card_id)
        if key is not None and self._card_keys is not None:
            expected = self._card_keys(ref)
            authenticated = expected is not None and hmac.compare_digest(expected, key)
        return self.tap_ref(ref, authenticated)

    def tap_ref(self, ref: str, authenticated: bool = False) -> CardPresented | None:
        """Present a card known only by its reference (as a clone of it would read)."""
        self._check_open()
        with self._lock:
            now = self._monotonic()
            counted = self.online and self._debounce.arrived(ref, now)
            self._debounce.left(ref, now)
            self.history.append(SimTap(ref, authenticated, counted))
        if not counted:
            return None
        event = CardPresented(self._id, ref, authenticated)
        if self._emit is not None:
            self._emit(event)
        return event

    def unplug(self) -> None:
        """Pull the reader's cable."""
        self._set_online(False, "unplugged (simulated)")

    def plug(self) -> None:
        """Plug the reader back in."""
        self._set_online(True, "plugged in (simulated)")

    def close(self) -> None:
        """Stop delivering taps; idempotent."""
        self._closed = True
        self._emit = None

    def _set_online(self, online: bool, detail: str) -> None:
        self._check_open()
        if online == self.online:
            return
        self.online = online
        if self._emit is not None:
            self._emit(ReaderStatusChanged(self._id, online, detail))

    def _check_open(self) -> None:
        if self._closed:
            raise ClosedError(f"simulated reader {self._id} is closed")
