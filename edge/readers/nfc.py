"""Card reader on nfcpy: Sony PaSoRi readers on USB, and nfcpy's udp driver for tests.

The only module that imports nfcpy. One daemon thread per reader polls with
`ContactlessFrontend.connect`, turns each tag into a card reference at once (the raw id goes
into the referencer and nowhere else), debounces, and reopens a lost reader with a backoff.

| reader (nfcpy path)                      | FeliCa | ISO 14443 A | ISO 14443 B |
| ---------------------------------------- | ------ | ----------- | ----------- |
| Sony RC-S380 (`usb:054c:06c3`, `06c1`)   | yes    | yes         | yes         |
| Sony RC-S370/S360/S330 (`usb:054c:02e1`) | yes    | yes         | yes (1)     |
| ACS ACR122U (`usb:072f:2200`) (2)        | yes    | yes         | yes (1)     |
| PN531-based readers                      | yes    | yes         | no (3)      |
| nfcpy udp driver (`udp:127.0.0.1:PORT`)  | yes    | yes         | yes (4)     |

1. The firmware activates B cards itself; nfcpy deselects them and sends its own ATTRIB.
2. Only when neither pcscd nor the kernel's pn533_usb holds it. nfcpy's polling on the
   ACR122U has been reported at 615-715 ms a cycle: use the PC/SC adapter (the primary path).
3. No 106B: leave "106B" out of `targets`, or nfcpy raises on every sweep.
4. For tests, with `simulator.nfc_card`. nfcpy waits 1 s for each absent target per sweep.

| card                                       | technology, id         | authenticated     |
| ------------------------------------------ | ---------------------- | ----------------- |
| FeliCa Standard, FeliCa Lite (Type 3)      | `felica`, IDm          | no                |
| FeliCa Lite-S (PMm IC code F1h, F2h)       | `felica`, IDm          | with `card_key`   |
| Type 2 (Ultralight, NTAG), MIFARE Classic (5) | `iso14443a`, UID    | no                |
| Type 4A (DESFire and other ISO-DEP cards)  | `iso14443a`, UID       | no                |
| Type 4B                                    | `iso14443b`, PUPI      | no                |
| Type 1 (Topaz), NFC-DEP peers (phones)     | ignored                | -                 |

5. From nfcpy's code, not tried on hardware: nfcpy activates MIFARE Classic as Type 2, whose
   presence check (READ) a Classic card refuses unauthenticated, so nfcpy re-activates a held
   card over and over, logging a warning each time; debouncing keeps it one tap.

A Lite-S card is authenticated when `card_key(ref)` gives its own 16-byte card key (CK,
diversified from a master that stays in provisioning) and the card proves it holds that key
for the IDm it was polled with (`lite_s_proves`); a plain FeliCa card with the same IDm is not.

Random UIDs (first byte 08h) and random PUPIs change every tap: such cards are denied as
unknown. nfcpy sets its `nfc` logger to INFO on import; keep it there: its DEBUG output
carries raw card ids and, during Lite-S authentication, the card key.
"""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import nfc
import nfc.tag.tt2
import nfc.tag.tt3
import nfc.tag.tt3_sony
import nfc.tag.tt4

from edge.core.events import CardPresented, Event, ReaderStatusChanged
from edge.errors import ClosedError, EdgeError
from edge.ports import CardReferencer, Emit
from edge.readers.debounce import TapDebouncer

log = logging.getLogger(__name__)

DEFAULT_TARGETS = ("212F", "106A", "106B")
_KNOWN_TARGETS = ("212F", "424F", "106A", "106B")
_ID_BLOCK = 0x82  # FeliCa Lite-S ID block: IDd (= IDm), DFC
# Hex runs, spaced hex bytes and bytes reprs: whatever in an error message might be a card id.
_MAYBE_ID = re.compile(
    r"[0-9A-Fa-f]{8,}|(?:[0-9A-Fa-f]{2}[ :-]){3,}[0-9A-Fa-f]{2}|b'(?:[^'\\]|\\.)*'"
)


class ReaderSetupError(EdgeError, ValueError):
    """An nfc reader set up with a value that cannot work."""


def open_frontend(path: str) -> Any:
    """Open nfcpy's frontend on `path`; nfcpy raises OSError(ENODEV) if there is no reader."""
    return nfc.ContactlessFrontend(path)


def _quiet_reopen(record: logging.LogRecord) -> bool:
    """Drop nfcpy's messages for each open attempt: the reader logs its state changes itself."""
    return not str(record.msg).startswith(("searching for reader on", "no reader available on"))


def _describe(error: BaseException) -> str:
    """Return an exception as text, with anything that might be a card id masked."""
    return _MAYBE_ID.sub("…", f"{type(error).__name__}: {error}")


def _card_identity(tag: Any) -> tuple[str, str] | None:
    if isinstance(tag, nfc.tag.tt3.Type3Tag):
        technology = "felica"  # identifier is the IDm
    elif isinstance(tag, nfc.tag.tt2.Type2Tag | nfc.tag.tt4.Type4ATag):
        technology = "iso14443a"  # identifier is the UID (sdd_res, cascade tags joined)
    elif isinstance(tag, nfc.tag.tt4.Type4BTag):
        technology = "iso14443b"  # identifier is the PUPI from SENSB_RES
    else:
        return None
    return technology, bytes(tag.identifier).hex().upper()


class LiteSError(EdgeError, ValueError):
    """A FeliCa Lite-S card key that cannot be a card key."""


def is_lite_s(tag: Any) -> bool:
    """Return whether nfcpy took the card for a FeliCa Lite-S (PMm IC code F1h or F2h)."""
    return isinstance(tag, nfc.tag.tt3_sony.FelicaLiteS)


def lite_s_proves(tag: Any, key: bytes) -> bool:
    """Return whether a Lite-S card holds the 16-byte card key `key` for its own IDm.

    nfcpy's mutual authentication: the card MACs its ID block under a session key from a
    random challenge and the key (internal), then accepts a state write MACed by the reader
    (external). The ID block read again with a MAC must then start with the polled IDm: a
    card that answers with another card's key and id proves nothing about this IDm.
    """
    if len(key) != 16:
        raise LiteSError(f"a Lite-S card key is 16 bytes, not {len(key)}")
    if not tag.authenticate(key):
        return False
    id_block = tag.read_with_mac(_ID_BLOCK)  # None when the MAC does not check out
    return id_block is not None and bytes(id_block[:8]) == bytes(tag.identifier)


def _check_path(path: str) -> None:
    scheme, _, rest = path.partition(":")
    if scheme not in ("usb", "tty", "com", "udp"):
        raise ReaderSetupError(
            f"nfc reader path {path!r}: use usb[:vendor:product], tty:PORT:DRIVER or udp:HOST:PORT"
        )
    port = rest.rpartition(":")[2] if scheme == "udp" and ":" in rest else ""
    if port and not port.isdigit():
        raise ReaderSetupError(f"nfc reader path {path!r}: the udp port must be a number")
    try:
        # nfcpy resolves the port with getnameinfo and int()s the answer: a port with a
        # service name in /etc/services (1 'tcpmux', 57000 'dircproxy') breaks its udp driver.
        name = socket.getservbyport(int(port), "tcp") if port else None
    except OSError:
        name = None
    if name:
        raise ReaderSetupError(
            f"nfc reader path {path!r}: port {port} is {name!r} in "
            "/etc/services, which nfcpy cannot use; pick another port"
        )


class NfcCardReader:
    """A CardReader port on one nfcpy reader, polled on its own thread."""

    def __init__(
        self,
        reader_id: str,
        path: str,
        referencer: CardReferencer,
        debounce_s: float = 1.5,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        card_key: Callable[[str], bytes | None] = lambda ref: None,
        targets: Sequence[str] = DEFAULT_TARGETS,
        poll_gap_s: float = 0.1,
        reopen_first_s: float = 0.5,
        reopen_max_s: float = 4.0,
        opener: Callable[[str], Any] = open_frontend,
    ) -> None:
        _check_path(path)
        if not targets or any(t not in _KNOWN_TARGETS for t in targets):
            raise ReaderSetupError(f"nfc targets {list(targets)}: use some of {_KNOWN_TARGETS}")
        if poll_gap_s < 0 or not 0 < reopen_first_s <= reopen_max_s:
            raise ReaderSetupError("want poll_gap_s >= 0 and 0 < reopen_first_s <= reopen_max_s")
        self._id, self._path, self._referencer = reader_id, path, referencer
        self._debouncer = TapDebouncer(debounce_s)
        self._monotonic, self._card_key = monotonic, card_key
        self._targets, self._poll_gap_s = tuple(targets), poll_gap_s
        self._reopen = (reopen_first_s, reopen_max_s)
        self._delay_s = reopen_first_s
        self._opener = opener
        # Guards the lifecycle; notified whenever `online`, `has_card` or `taps` change.
        self._lock = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._online: bool | None = None  # None: not yet known
        self._card_ref: str | None = None
        self.taps = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else "new" if self._thread is None else "running"
        health = {None: "starting", True: "online", False: "offline"}[self._online]
        card = " card-in-field" if self._card_ref else ""
        return f"<NfcCardReader {self._id} {self._path} {state} {health}{card} taps={self.taps}>"

    @property
    def reader_id(self) -> str:
        """The reader's id in the device configuration."""
        return self._id

    @property
    def online(self) -> bool | None:
        """True while the reader polls, False once reported offline, None before."""
        return self._online

    @property
    def has_card(self) -> bool:
        """True while a card lies on the reader, as the polling thread last saw it."""
        return self._card_ref is not None

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
        """Wait until `predicate()` holds after a change the polling thread saw.

        For whoever needs to know what the thread has seen (a probe, a test): `online`,
        `has_card` and `taps` change only on that thread. False after `timeout_s`.
        """
        with self._lock:
            return self._lock.wait_for(predicate, timeout_s)

    def start(self, emit: Emit) -> None:
        """Start polling on a daemon thread; `emit` gets every tap and status change."""
        with self._lock:
            if self._closed:
                raise ClosedError(f"nfc reader {self._id} is closed; make a new one")
            if self._thread is not None:
                raise EdgeError(f"nfc reader {self._id} is already started")
            self._thread = threading.Thread(
                target=self._run, args=(emit,), name=f"nfc-{self._id}", daemon=True
            )
        logging.getLogger("nfc.clf").addFilter(_quiet_reopen)  # a set: adding twice is a no-op
        log.info("nfc reader %s on %s: targets %s, debounce %s s, reopen %s-%s s",
                 self._id, self._path, ",".join(self._targets), self._debouncer.window_s,
                 *self._reopen)  # fmt: skip
        self._thread.start()

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop polling and release the reader; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            # nfcpy checks `terminate` between sweeps: milliseconds on USB, up to 1 s per
            # absent target on udp.
            thread.join(timeout_s)
            if thread.is_alive():
                log.warning("nfc reader %s: nfcpy did not stop within %.1f s", self._id, timeout_s)

    def _run(self, emit: Emit) -> None:
        while not self._stop.is_set():
            try:
                clf = self._opener(self._path)
            except Exception as error:  # OSError(ENODEV) when unplugged; usb1/serial errors too
                self._failed(emit, f"cannot open {self._path}: {_describe(error)}")
            else:
                try:
                    failure = self._serve(clf, emit)
                finally:
                    try:
                        clf.close()
                    except Exception as error:  # a USB device already gone can fail to close
                        log.debug("nfc reader %s: close: %s", self._id, _describe(error))
                if failure is None:
                    return
                self._failed(emit, failure)
            if self._stop.wait(self._delay_s):
                return
            self._delay_s = min(self._delay_s * 2, self._reopen[1])

    def _serve(self, clf: Any, emit: Emit) -> str | None:
        """Poll an open frontend until closed (None) or until it fails (what went wrong)."""
        device = str(clf)  # vendor, product and bus path: no card data
        calls = 0

        def terminate() -> bool:
            # Called before the first sweep and after each one (and between presence checks):
            # a second call proves the reader polls. Waiting here paces polling on fast USB
            # readers and lets close() stop the loop at once.
            nonlocal calls
            calls += 1
            if calls >= 2:
                self._healthy(emit, device)
            return self._stop.wait(self._poll_gap_s)

        def on_connect(tag: Any) -> bool:
            self._healthy(emit, device)
            self._arrived(tag, emit)
            return True  # hold the tag: nfcpy checks its presence until it leaves

        def on_release(tag: Any) -> bool:
            self._card_left()
            return True

        options = {
            "targets": list(self._targets),
            "on-connect": on_connect,
            "on-release": on_release,
            "iterations": 1,  # one sweep per call, so terminate() runs between sweeps
            # The reader must not beep "OK" (ACR122U) before the door decision is made.
            "beep-on-connect": False,
        }
        while not self._stop.is_set():
            try:
                result = clf.connect(rdwr=options, terminate=terminate)
            except Exception as error:  # nfcpy bugs on odd cards; usb1 errors not mapped to IOError
                return f"nfcpy failed on {device}: {_describe(error)}"
            finally:
                self._card_left()  # a card held when the reader failed never got on-release
            if result is False:  # nfcpy caught an IOError: the reader is gone or wedged
                return f"lost the reader {device}"
        return None

    def _arrived(self, tag: Any, emit: Emit) -> None:
        identity = _card_identity(tag)
        if identity is None:
            kind = getattr(tag, "type", type(tag).__name__)
            log.info("nfc reader %s: ignored a %s (not FeliCa, ISO 14443 A or B)", self._id, kind)
            return
        technology = identity[0]
        try:
            ref = self._referencer(*identity)
        except Exception as error:
            log.warning("nfc reader %s: unusable %s id: %s", self._id, technology, _describe(error))
            return
        del identity
        new = self._debouncer.arrived(ref, self._monotonic())
        authenticated = new and self._authenticated(tag, ref)
        if new:
            with self._lock:
                self.taps += 1
            # The product and FeliCa system code help commissioning; neither identifies a card.
            system = f", system {tag.sys:04X}" if technology == "felica" else ""
            log.debug("nfc reader %s: %s card %s… (%s%s), authenticated %s", self._id,
                      technology, ref[:8], tag.product, system, authenticated)  # fmt: skip
            self._emit(emit, CardPresented(self._id, ref, authenticated))
        with self._lock:
            self._card_ref = ref
            self._lock.notify_all()

    def _authenticated(self, tag: Any, ref: str) -> bool:
        if not is_lite_s(tag):
            return False
        try:
            key = self._card_key(ref)
        except Exception as error:  # the credential lookup is the agent's; a bug there denies
            log.warning("nfc reader %s: card key lookup failed: %s", self._id, _describe(error))
            return False
        if key is None:  # not enrolled here as a Lite-S card: the policy decides on the id alone
            return False
        try:
            proved = lite_s_proves(tag, key)
        except LiteSError as error:
            log.warning("nfc reader %s: card %s…: %s", self._id, ref[:8], error)
            return False
        except Exception as error:  # TagCommandError, CommunicationError: card left mid-way
            log.info("nfc reader %s: Lite-S authentication broke off: %s", self._id,
                     _describe(error))  # fmt: skip
            return False
        if not proved:
            log.info("nfc reader %s: card %s… failed Lite-S authentication", self._id, ref[:8])
        return proved

    def _card_left(self) -> None:
        ref = self._card_ref
        if ref is not None:
            self._debouncer.left(ref, self._monotonic())  # before waiters move the clock
        with self._lock:
            self._card_ref = None
            self._lock.notify_all()

    def _healthy(self, emit: Emit, device: str) -> None:
        self._delay_s = self._reopen[0]
        was = self._online
        if was is not True:
            self._set_online(True)
        if was is False:
            log.info("nfc reader %s online again: %s", self._id, device)
            self._emit(emit, ReaderStatusChanged(self._id, True, f"polling again on {device}"))

    def _failed(self, emit: Emit, detail: str) -> None:
        if self._stop.is_set() or self._online is False:
            log.debug("nfc reader %s: %s", self._id, detail)
            return
        self._set_online(False)
        log.warning("nfc reader %s offline: %s; retrying, at least every %s s", self._id,
                    detail, self._reopen[1])  # fmt: skip
        self._emit(emit, ReaderStatusChanged(self._id, False, detail))

    def _set_online(self, online: bool) -> None:
        with self._lock:
            self._online = online
            self._lock.notify_all()

    def _emit(self, emit: Emit, event: Event) -> None:
        if self._stop.is_set():
            return  # closed: the agent's queue may be gone
        try:
            emit(event)
        except Exception:
            log.exception("nfc reader %s: emit failed; event dropped", self._id)
