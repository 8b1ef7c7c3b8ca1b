"""Card + PIN: which taps wait for a PIN, the waits per reader, wrong attempts per card.

A card that keys too many wrong PINs in a row is locked out of the device's PIN readers for
a while: guessing then costs time, not only alarms. Lockouts, like the counts, are kept in
memory on the monotonic clock: a wall-clock step neither lifts nor stretches them, and a
restart (which the console sees) forgets them.

The gate holds state only; the controller turns what it says into records and signals.
Digits are handed on in a `CheckPin` for the runtime to hash off the loop: hashing here
would stall every door of the device for tens of milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.core.clock import Instant
from edge.core.credentials import Credential, CredentialStore
from edge.core.events import CardPresented, PinChecked, PinEntered
from edge.core.outputs import CheckPin
from edge.core.policy import AccessPolicy
from edge.core.spec import PinMode, ReaderSpec


@dataclass(slots=True)
class Waiting:
    """A granted card waiting at a reader for its PIN (`ticket` set while it is checked)."""

    card: CardPresented
    deadline: float  # monotonic
    ticket: int | None = None


def wants_pin(reader: ReaderSpec, credential: Credential | None, policy: AccessPolicy) -> bool:
    """Return True if a card granted at `reader` must still key its PIN."""
    if reader.pin is PinMode.ALWAYS:
        return True
    return (
        reader.has_keypad and credential is not None and bool(credential.groups & policy.pin_groups)
    )


class PinGate:
    """The cards waiting for a PIN, by reader; wrong PINs in a row and lockouts, by card."""

    def __init__(self) -> None:
        self._waiting: dict[str, Waiting] = {}
        self._wrong: dict[str, int] = {}
        self._locked: dict[str, float] = {}  # card_ref -> monotonic end of its lockout
        self._tickets = 0

    def __repr__(self) -> str:
        return (
            f"<PinGate waiting={sorted(self._waiting)} cards_with_wrong={len(self._wrong)} "
            f"locked_out={len(self._locked)}>"
        )

    def wait(self, card: CardPresented, reader: ReaderSpec, at: Instant) -> None:
        """Hold `card` at its reader until a PIN or the reader's timeout."""
        self._waiting[reader.id] = Waiting(card, at.mono + reader.pin_timeout_s)

    def drop(self, reader: str) -> None:
        """Forget what waits at `reader` (another card was tapped there)."""
        self._waiting.pop(reader, None)

    def entered(self, event: PinEntered, credentials: CredentialStore) -> CheckPin | None:
        """Return the check to run for digits keyed at a reader, or None if none is due.

        None when no card waits there or its digits are already being checked; a card whose
        credential or PIN is gone meanwhile stops waiting.
        """
        waiting = self._waiting.get(event.reader)
        if waiting is None or waiting.ticket is not None:
            return None
        credential = credentials.find(waiting.card.card_ref)
        if credential is None or credential.pin is None:
            self._waiting.pop(event.reader)
            return None
        self._tickets += 1
        waiting.ticket = self._tickets
        return CheckPin(
            event.reader, waiting.card.card_ref, self._tickets, event.digits, credential.pin
        )

    def checked(self, event: PinChecked) -> CardPresented | None:
        """Return the card a check answers and stop waiting for it; None for a stale answer."""
        waiting = self._waiting.get(event.reader)
        if (
            waiting is None
            or waiting.ticket != event.ticket
            or waiting.card.card_ref != event.card_ref
        ):
            return None
        del self._waiting[event.reader]
        return waiting.card

    def right(self, card_ref: str) -> None:
        """Forget the card's wrong attempts."""
        self._wrong.pop(card_ref, None)

    def wrong(self, card_ref: str, limit: int) -> bool:
        """Count a wrong PIN; return True (and start counting again) when it reaches `limit`."""
        count = self._wrong.get(card_ref, 0) + 1
        if count >= limit:
            self._wrong.pop(card_ref, None)
            return True
        self._wrong[card_ref] = count
        return False

    def lock_out(self, card_ref: str, at: Instant, seconds: float) -> None:
        """Refuse `card_ref` at PIN readers for `seconds` from `at` (0 or less: not at all)."""
        if seconds > 0:
            self._locked[card_ref] = at.mono + seconds

    def locked_out(self, card_ref: str, at: Instant) -> bool:
        """Return True while `card_ref` is locked out of PIN readers."""
        until = self._locked.get(card_ref)
        if until is None:
            return False
        if at.mono < until:
            return True
        del self._locked[card_ref]
        return False

    def expired(self, at: Instant) -> list[CardPresented]:
        """Return the cards whose time to key a PIN is over, and stop waiting for them.

        A card whose digits are being checked waits for the answer instead. Lockouts that
        are over are forgotten here too.
        """
        for card_ref in [c for c, until in self._locked.items() if at.mono >= until]:
            del self._locked[card_ref]
        due = [
            reader
            for reader, w in self._waiting.items()
            if w.ticket is None and at.mono >= w.deadline
        ]
        return [self._waiting.pop(reader).card for reader in due]

    def next_deadline(self) -> float | None:
        """Return the earliest monotonic time a wait runs out, or None."""
        return min((w.deadline for w in self._waiting.values() if w.ticket is None), default=None)
