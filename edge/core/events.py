"""What happens to a device: the inputs of the core.

Hardware threads and the network turn what they see into these and put them on one queue;
one loop hands each to the core with the time. Card reads carry a card reference (a keyed
hash), never the raw card identifier.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class CardPresented:
    """A card was read at a reader; `authenticated` if the read was cryptographically proven."""

    reader: str
    card_ref: str
    authenticated: bool = False


@dataclass(frozen=True, slots=True)
class PinEntered:
    """Digits were keyed on a reader's keypad and confirmed with enter (#)."""

    reader: str
    digits: str = field(repr=False)


class PinOutcome(StrEnum):
    """What the digits keyed after a card matched."""

    RIGHT = "right"
    DURESS = "duress"  # the person's duress PIN: open as usual, alarm silently
    WRONG = "wrong"


@dataclass(frozen=True, slots=True)
class PinChecked:
    """The answer to a `CheckPin` with the same ticket, computed off the loop."""

    reader: str
    card_ref: str
    ticket: int
    outcome: PinOutcome


@dataclass(frozen=True, slots=True)
class ReaderStatusChanged:
    """A card reader went offline (unplugged, driver lost) or came back."""

    reader: str
    online: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class ContactChanged:
    """A door contact changed: the leaf opened or closed."""

    door: str
    is_open: bool


@dataclass(frozen=True, slots=True)
class ExitPressed:
    """Someone pressed the exit button (request to exit) on the inside of a door."""

    door: str


@dataclass(frozen=True, slots=True)
class FireInputChanged:
    """A fire-alarm input changed. Any active input is a fire on the whole device."""

    door: str
    active: bool


@dataclass(frozen=True, slots=True)
class PresenceChanged:
    """A presence sensor's raw output changed; the core debounces it."""

    sensor: str
    active: bool


@dataclass(frozen=True, slots=True)
class PresenceSensorStatus:
    """A presence sensor stopped answering (`ok=False`: no frames from it) or came back."""

    sensor: str
    ok: bool
    detail: str = ""


@dataclass(frozen=True, slots=True)
class RoomDoorChanged:
    """The door of a booth or meeting room (no lock, a contact only) opened or closed."""

    door: str
    is_open: bool


@dataclass(frozen=True, slots=True)
class Tick:
    """Time passed: run the timers (relock, held-open, presence hold, schedules)."""


@dataclass(frozen=True, slots=True)
class PeersReachable:
    """The link to the other devices of this device's zones came up (`up`) or went down.

    Only an agent with a link sends it, first at start; an agent alone never does.
    """

    up: bool


# Operator and console commands (they arrive signed over the network; checked before here).


@dataclass(frozen=True, slots=True)
class UnlockOnce:
    """Unlock a door momentarily, as if a card had been granted (no crossing is assumed)."""

    door: str
    by: str = "operator"


@dataclass(frozen=True, slots=True)
class SetLockdown:
    """Lock every door of the device down, or end the lockdown."""

    on: bool
    by: str = "operator"


@dataclass(frozen=True, slots=True)
class SetHoldOpen:
    """Hold a door unlocked until told otherwise (`on=False` returns it to normal)."""

    door: str
    on: bool
    by: str = "operator"


@dataclass(frozen=True, slots=True)
class ResetAlarms:
    """Clear a door's alarms (forced, held open) by hand."""

    door: str
    by: str = "operator"


@dataclass(frozen=True, slots=True)
class ResetFire:
    """End the fire release once the fire inputs are quiet (fire_reset = manual)."""

    by: str = "operator"


@dataclass(frozen=True, slots=True)
class ResetOccupancy:
    """Set a zone's head count (default zero), e.g. after a night's cleaning round."""

    zone: str
    count: int = 0
    by: str = "operator"


@dataclass(frozen=True, slots=True)
class ForgivePosition:
    """Forget one card's anti-passback position (in `zone` only, if given)."""

    card_ref: str
    zone: str | None = None
    by: str = "operator"


Event = (
    CardPresented
    | PinEntered
    | PinChecked
    | ReaderStatusChanged
    | ContactChanged
    | ExitPressed
    | FireInputChanged
    | PresenceChanged
    | PresenceSensorStatus
    | RoomDoorChanged
    | Tick
    | PeersReachable
    | UnlockOnce
    | SetLockdown
    | SetHoldOpen
    | ResetAlarms
    | ResetFire
    | ResetOccupancy
    | ForgivePosition
)
