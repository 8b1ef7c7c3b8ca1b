"""The core's view of a device: doors, readers, zones and sensors, plain and frozen.

The agent builds these from the validated device configuration; the core never sees the
configuration models, so it stays standard-library only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import time
from enum import StrEnum


class FailMode(StrEnum):
    """What the lock does without power (it is the lock's nature, not a setting of ours).

    `safe`: the lock releases when unpowered (maglock, fail-safe strike). A power cut, a dead
    Pi or a cut wire leaves the door free: used on stairways and egress routes, and released
    by the fire input. `secure`: the lock stays locked when unpowered (fail-secure strike);
    people inside still leave by the handle. The agent never inverts this: the relay powers
    the lock for a fail-safe door and powers the strike to open for a fail-secure one, so a
    dead agent always leaves the door in the lock's own fail state.
    """

    SAFE = "safe"
    SECURE = "secure"


class Direction(StrEnum):
    """Which way a reader lets people cross its door."""

    IN = "in"  # outside_zone -> inside_zone
    OUT = "out"  # inside_zone -> outside_zone


class AntiPassback(StrEnum):
    """Anti-passback for a zone: hard denies a repeated entry, soft grants and records it."""

    OFF = "off"
    SOFT = "soft"
    HARD = "hard"


class OfflineFallback(StrEnum):
    """What a zone's anti-passback does while the device cannot hear its peers."""

    HARD = "hard"  # refuse on what this device knows
    SOFT = "soft"  # grant what hard would refuse, flagged, and raise anti_passback_degraded


class CardSecurity(StrEnum):
    """What a reader requires of a card read."""

    UID = "uid"  # the card's identifier is enough (it can be cloned)
    AUTHENTICATED = "authenticated"  # the read must be cryptographically authenticated


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    """A zone: an area, a booth, a meeting room or a stairway."""

    id: str
    name: str = ""
    kind: str = "area"
    capacity: int | None = None
    anti_passback: AntiPassback = AntiPassback.OFF
    forgive_at: time | None = None  # local time of day when positions are forgotten
    offline: OfflineFallback = OfflineFallback.HARD  # while cut off from the zone's peers


@dataclass(frozen=True, slots=True)
class DoorSpec:
    """A door or gate leaf with its timings; zones on each side."""

    id: str
    outside_zone: str
    inside_zone: str
    fail: FailMode
    unlock_s: float = 5.0
    held_open_s: float = 30.0
    pre_alarm_s: float = 10.0
    has_contact: bool = True
    has_fire_input: bool = False


class PinMode(StrEnum):
    """Whether a reader asks for a PIN after the card."""

    NEVER = "never"  # only for cards of the policy's pin_groups, if the reader has a keypad
    ALWAYS = "always"  # every card (the reader has a keypad)


@dataclass(frozen=True, slots=True)
class ReaderSpec:
    """A card reader at a door, facing one direction, with its keypad if it has one."""

    id: str
    door: str
    direction: Direction
    security: CardSecurity = CardSecurity.UID
    has_keypad: bool = False
    pin: PinMode = PinMode.NEVER
    pin_timeout_s: float = 10.0
    pin_attempts: int = 3  # wrong PINs in a row for one card before the alarm
    pin_lockout_s: float = 300.0  # then the card's PIN doors refuse it this long (0: never)


RADAR_KINDS = frozenset({"mmwave", "ld2410-uart"})
"""Sensor kinds that see a person sitting still: their silence is evidence of absence."""


@dataclass(frozen=True, slots=True)
class PresenceSpec:
    """A presence sensor in a zone; vacant only after `hold_s` without presence.

    `kind` is the configuration's: "pir", "mmwave" or "ld2410-uart".
    """

    id: str
    zone: str
    hold_s: float = 60.0
    kind: str = "pir"

    @property
    def sees_still(self) -> bool:
        """True for a radar: it keeps seeing a person who sits still."""
        return self.kind in RADAR_KINDS

    @property
    def reports(self) -> bool:
        """True for a sensor that is not known to work until its first report (a UART radar)."""
        return self.kind == "ld2410-uart"


@dataclass(frozen=True, slots=True)
class RoomDoorSpec:
    """The door contact of a booth or meeting room with no lock: its presence latch's input.

    `latch_after_s`: presence still seen this long after the doors close latches the room
    (a sensor's output outlasts the person who just walked out by a few seconds).
    `settle_s`: a room occupied when its doors close stays occupied this long while the
    detection that latches it is awaited (a PIR misses a person who sits still at once).
    """

    id: str
    zone: str
    latch_after_s: float = 10.0
    settle_s: float = 300.0


@dataclass(frozen=True, slots=True)
class DeviceSpec:
    """Everything the core needs to know about one device."""

    id: str
    timezone: str = "Asia/Tokyo"
    fire_reset_manual: bool = True
    zones: tuple[ZoneSpec, ...] = ()
    doors: tuple[DoorSpec, ...] = ()
    readers: tuple[ReaderSpec, ...] = ()
    presence: tuple[PresenceSpec, ...] = field(default=())
    room_doors: tuple[RoomDoorSpec, ...] = ()
