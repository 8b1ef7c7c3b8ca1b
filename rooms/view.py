"""The building as staff may see it: each room's and area's state, with no personal data.

The service builds a `BuildingView` and publishes it retained on `{root}/{site}/rooms/view`;
its own floor page and the console's occupancy page both draw from it. Only times, zone ids,
names of places and counts appear here: never an organiser, attendee, title or card.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

RoomStatus = Literal[
    "free",  # no booking now, nobody seen
    "booked",  # booked now (or starting within the grace time), nobody seen yet
    "in-use",  # booked and checked in, or someone present during a booking
    "in-use-unbooked",  # someone present and no booking covers it
    "released",  # a no-show released, free again until the next booking
    "unknown",  # the sensor or its device is offline or stale: nothing is released
]


class _View(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Slot(_View):
    """One booking's time, nothing else about it."""

    start: datetime
    end: datetime
    checked_in: bool = False
    ad_hoc: bool = False


class RoomView(_View):
    zone: str
    name: str
    kind: Literal["meeting-room", "focus-booth", "phone-booth"]
    floor: int
    capacity: int | None = None
    status: RoomStatus
    occupied: bool | None = Field(description="None while the sensor is unknown.")
    since: datetime | None = Field(default=None, description="When `status` began, if known.")
    reason: str = Field(default="", description="Why unknown, or why released (plain words).")
    next: tuple[Slot, ...] = Field(default=(), description="This and the next bookings today.")
    shape: tuple[int, int, int, int] | None = None


class AreaView(_View):
    """A department's free-seating area: how many of its desk islands show presence."""

    id: str
    name: str
    floor: int
    occupied: int = Field(ge=0, description="Islands where presence is seen.")
    zones: int = Field(ge=1, description="Islands watched.")
    unknown: int = Field(default=0, ge=0, description="Islands whose sensor is offline or stale.")
    shape: tuple[int, int, int, int] | None = None


class BuildingView(_View):
    v: Literal[1] = 1
    site: str
    name: str
    at: datetime
    rooms: tuple[RoomView, ...] = ()
    areas: tuple[AreaView, ...] = ()

    def floors(self) -> list[int]:
        """Every floor with a room or an area, lowest first."""
        return sorted({r.floor for r in self.rooms} | {a.floor for a in self.areas})

    def free_booths(self, floor: int | None = None) -> list[RoomView]:
        """Booths free right now (on one floor, or everywhere), nearest floor order."""
        return [
            r
            for r in self.rooms
            if r.kind != "meeting-room"
            and r.status in ("free", "released")
            and (floor is None or r.floor == floor)
        ]
