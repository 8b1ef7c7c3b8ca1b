"""Each room's and area's state for the building view, from bookings, sensing and decisions.

Pure: the engine's memory says what was decided, the sensing what is seen; the status
rules (in order) are:

* unknown — the room's reading cannot be trusted now (a booking stays in `next`, unreleased);
* in-use — a booking covers now and it is checked in or someone is present; for a room that
  cannot be booked, someone is present;
* booked — a booking covers now (or its window has opened), nobody seen yet;
* released — a no-show released by this service covers now;
* in-use-unbooked — someone present for `ad_hoc_after_min` with no booking;
* free — otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from rooms.bookings import Booking
from rooms.checkin import Engine, key_of
from rooms.config import AreaSettings, RoomSettings, ServiceConfig
from rooms.sensing import Sensing
from rooms.view import AreaView, BuildingView, RoomStatus, RoomView, Slot

MAX_SLOTS = 4


class Board:
    """Builds the building view and remembers since when each room shows its status."""

    def __init__(self, config: ServiceConfig, engine: Engine) -> None:
        self._config = config
        self._engine = engine
        self._tz = ZoneInfo(config.timezone)
        self._since: dict[str, tuple[RoomStatus, datetime]] = {}

    def __repr__(self) -> str:
        return f"<Board {self._config.site} rooms={len(self._config.rooms)}>"

    def view(
        self,
        at: datetime,
        bookings: Mapping[str, Sequence[Booking]],
        sensing: Mapping[str, Sensing],
    ) -> BuildingView:
        """Return the view at `at`."""
        rooms = tuple(
            self._room(at, room, bookings.get(room.zone, ()), sensing[room.zone])
            for room in self._config.rooms
            if room.zone in sensing
        )
        areas = tuple(self._area(area, sensing) for area in self._config.areas)
        return BuildingView(
            site=self._config.site, name=self._config.name, at=at, rooms=rooms, areas=areas
        )

    def _room(
        self, at: datetime, room: RoomSettings, found: Sequence[Booking], seen: Sensing
    ) -> RoomView:
        status, reason = self._status(at, room, found, seen)
        previous = self._since.get(room.zone)
        if previous is None or previous[0] != status:
            self._since[room.zone] = (status, at)
        return RoomView(
            zone=room.zone,
            name=room.name,
            kind=room.kind,
            floor=room.floor,
            capacity=room.capacity,
            status=status,
            occupied=seen.occupied,
            since=self._since[room.zone][1],
            reason=reason,
            next=self._slots(at, found),
            shape=room.shape,
        )

    def _status(
        self, at: datetime, room: RoomSettings, found: Sequence[Booking], seen: Sensing
    ) -> tuple[RoomStatus, str]:
        engine = self._engine
        cover = engine.covering(at, found) if room.calendar else None
        if not seen.known:
            held = "; the booking is kept (nothing is released)" if cover else ""
            return "unknown", f"{seen.reason}{held}"
        if room.calendar is None:
            return ("in-use" if seen.occupied else "free"), ""
        if cover is not None:
            if seen.occupied or engine.checked_in(cover):
                return "in-use", ""
            return "booked", self._reason(cover) if engine.kind(cover) == "held" else ""
        released = next(
            (
                b
                for b in found
                if b.start <= at < b.end and engine.kind(b) == "released" and not b.ad_hoc
            ),
            None,
        )
        if released is not None and not seen.occupied:
            return "released", self._reason(released)
        since = self._engine.unbooked_since(at, seen, found)
        if since is not None:
            after = timedelta(minutes=self._config.checkin.ad_hoc_after_min)
            if at - since >= after:
                return "in-use-unbooked", ""
        return "free", ""

    def _reason(self, booking: Booking) -> str:
        return self._engine.memory.reasons.get(key_of(booking), "")

    def _slots(self, at: datetime, found: Sequence[Booking]) -> tuple[Slot, ...]:
        local = at.astimezone(self._tz)
        midnight = datetime.combine(local.date() + timedelta(days=1), time(), self._tz)
        live = sorted(
            (
                b
                for b in found
                if b.end > at
                and b.start < midnight
                and not b.released
                and self._engine.kind(b) != "released"
            ),
            key=lambda b: b.start,
        )
        return tuple(
            Slot(start=b.start, end=b.end, checked_in=self._engine.checked_in(b), ad_hoc=b.ad_hoc)
            for b in live[:MAX_SLOTS]
        )

    def _area(self, area: AreaSettings, sensing: Mapping[str, Sensing]) -> AreaView:
        readings = [sensing[z] for z in area.zones if z in sensing]
        return AreaView(
            id=area.id,
            name=area.name,
            floor=area.floor,
            occupied=sum(1 for s in readings if s.known and s.occupied),
            zones=len(area.zones),
            unknown=len(area.zones) - sum(1 for s in readings if s.known),
            shape=area.shape,
        )
