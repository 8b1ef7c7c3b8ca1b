"""What the core asks for: drive a relay, signal at a reader, record an event.

The core returns these and performs nothing. The runtime executes them in order; a
`Record` goes into the outbox in the same transaction as the state change it records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from edge.core.clock import utc_text
from edge.core.credentials import PinHash


class EventKind(StrEnum):
    """The kinds of event the MQTT contract names (`events/{kind}`), plus retained occupancy."""

    ACCESS = "access"
    DOOR = "door"
    ALARM = "alarm"
    PRESENCE = "presence"
    SYSTEM = "system"
    COMMAND = "command"
    OCCUPANCY = "occupancy"


class Signal(StrEnum):
    """Patterns for a reader's LEDs and buzzer."""

    GRANT = "grant"  # green, one short beep
    DENY = "deny"  # red, two beeps
    PRE_ALARM = "pre_alarm"  # slow beeping: close the door
    ALARM = "alarm"  # red flashing, continuous tone
    QUIET = "quiet"  # back to idle
    PIN_WANTED = "pin_wanted"  # amber / both LEDs, one beep: key the PIN, then #


@dataclass(frozen=True, slots=True)
class Unlock:
    """Release a door's lock."""

    door: str
    cause: str


@dataclass(frozen=True, slots=True)
class Lock:
    """Secure a door's lock."""

    door: str
    cause: str


@dataclass(frozen=True, slots=True)
class Indicate:
    """Show a signal at one reader, or at every reader of a door when `reader` is None."""

    door: str
    signal: Signal
    reader: str | None = None


@dataclass(frozen=True, slots=True)
class CheckPin:
    """Check digits keyed at a reader against a card's PIN hash, off the loop.

    The answer comes back as a `PinChecked` event carrying the same `ticket`.
    """

    reader: str
    card_ref: str
    ticket: int
    digits: str = field(repr=False)
    pin_hash: PinHash = field(repr=False)


@dataclass(frozen=True, slots=True)
class EventRecord:
    """One event as the MQTT contract carries it, before the store gives it `seq` and `id`."""

    kind: EventKind
    type: str
    ts: datetime
    data: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "data", MappingProxyType(dict(self.data)))

    def payload(self) -> dict[str, Any]:
        """Return the event's fields as a plain dict (without v, id, seq, clock_synced)."""
        return {"kind": str(self.kind), "type": self.type, "ts": utc_text(self.ts), **self.data}


@dataclass(frozen=True, slots=True)
class Record:
    """Write an event to the outbox."""

    event: EventRecord


Output = Unlock | Lock | Indicate | Record | CheckPin


def record(kind: EventKind, type_: str, utc: datetime, **data: Any) -> Record:
    """Return a `Record` output for an event of `kind`/`type_` at `utc`."""
    return Record(EventRecord(kind, type_, utc, data))
