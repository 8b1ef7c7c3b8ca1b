"""The hardware ports: one small protocol per capability.

Adapters (pyscard, nfcpy, gpiozero, the simulator) implement these. Inputs and readers get
an `emit` callable at `start` and only ever call it: it puts an event on the agent's one
queue and returns at once, so no adapter thread ever drives a door.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from edge.core.events import Event
from edge.core.outputs import Signal

Emit = Callable[[Event], None]
"""Put an event on the agent's queue; thread-safe, never blocks."""

CardReferencer = Callable[[str, str], str]
"""(technology, raw card id) -> card reference. Raw ids go in here and nowhere else."""


class CardKeys(Protocol):
    """The keys this device checks proven cards with, by card reference."""

    @property
    def desfire_key_no(self) -> int:
        """The DESFire application key this device authenticates with (its kind of door)."""
        ...

    def __call__(self, ref: str) -> bytes | None:
        """Return the card's key, or None (an id-only card, or not enrolled here)."""
        ...


class CardReader(Protocol):
    """Watches one physical reader and emits CardPresented and ReaderStatusChanged."""

    @property
    def reader_id(self) -> str:
        """The reader's id in the device configuration."""
        ...

    def start(self, emit: Emit) -> None:
        """Begin watching (on the adapter's own thread); call `emit` for every tap."""
        ...

    def close(self) -> None:
        """Stop watching and release the reader; idempotent."""
        ...


class Relay(Protocol):
    """The lock relay of one door."""

    @property
    def is_unlocked(self) -> bool:
        """True while the lock is released."""
        ...

    def unlock(self) -> None:
        """Release the lock."""
        ...

    def lock(self) -> None:
        """Secure the lock."""
        ...

    def close(self) -> None:
        """Leave the relay de-energised (the lock's own fail state) and release the pin."""
        ...


class Input(Protocol):
    """A binary input: door contact, exit button, fire input or presence sensor."""

    def start(self, emit: Emit) -> None:
        """Emit the input's current state at once, then every change."""
        ...

    def close(self) -> None:
        """Release the pin; idempotent."""
        ...


class Indicator(Protocol):
    """The LEDs and buzzer at one reader."""

    def show(self, signal: Signal) -> None:
        """Show a signal (grant, deny, pre-alarm, alarm, quiet)."""
        ...

    def close(self) -> None:
        """Turn everything off and release the pins; idempotent."""
        ...
