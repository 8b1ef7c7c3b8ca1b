"""The check-in and release rules, pure: bookings and sensing in, decisions out.

Per booking (key: calendar, uid, start), with `window` = [start - early_min, start + grace]:

* presence seen at any moment in the window checks it in (once, remembered); so does the room
  being in use when the window has passed and the booking still runs (a late arrival);
* at start + grace with no presence seen, it is RELEASED only if the room's reading was
  trustworthy without a break since the window opened and the room is vacant now; otherwise it
  is HELD (never released) with the reason, and stays booked;
* a booking the service made for unbooked use (`ad_hoc`) is released early once the room has
  been vacant, trustworthily, for the grace time: nobody booked it, and holding an empty room
  would turn away the next person;
* a room in use with no booking covering now for `ad_hoc_after_min` gets a booking of its own
  (rooms with `ad_hoc`), [now, min(now + ad_hoc_length_min, next booking's start)], and the
  next one when it is about to end while the room is still in use.

Time is an argument; the engine never reads a clock. Standard library and rooms types only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from rooms.bookings import Booking
from rooms.config import RoomSettings, ServiceConfig
from rooms.sensing import Sensing

Key = tuple[str, str, datetime]  # calendar id, booking uid, start
Kind = Literal["checked_in", "released", "held", "ad_hoc"]


def key_of(booking: Booking) -> Key:
    """Return the key a booking's decisions are remembered by."""
    return (booking.calendar, booking.uid, booking.start)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the engine decided about one booking (or, for `ad_hoc`, one room's slot).

    `reason` and `evidence` are plain facts about the room and its sensor: no organiser,
    attendee or title ever goes in them.
    """

    kind: Kind
    calendar: str
    uid: str  # "" for an ad-hoc booking not made yet
    start: datetime
    end: datetime
    room: str
    at: datetime
    reason: str
    evidence: Mapping[str, str] = field(default_factory=dict)

    @property
    def key(self) -> Key:
        return (self.calendar, self.uid, self.start)


@dataclass
class Memory:
    """Decisions already taken, restored from the journal: a restart repeats none."""

    kinds: dict[Key, Kind] = field(default_factory=dict)
    reasons: dict[Key, str] = field(default_factory=dict)
    pending: dict[Key, Decision] = field(default_factory=dict)  # calendar call not done yet
    tried: dict[Key, datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Action:
    """A decision to carry out; `booking` is None only for an ad-hoc booking to make."""

    decision: Decision
    booking: Booking | None


class Engine:
    """Decides check-ins, releases, holds and ad-hoc bookings from what is known now."""

    def __init__(self, config: ServiceConfig, memory: Memory) -> None:
        self._config = config
        self._settings = config.checkin
        self._tz = ZoneInfo(config.timezone)
        self._retry = timedelta(seconds=config.poll_s)
        self.memory = memory
        self._ad_hoc_tried: dict[str, datetime] = {}

    def __repr__(self) -> str:
        return f"<Engine rooms={len(self._config.rooms)} decided={len(self.memory.kinds)}>"

    def grace(self, room: RoomSettings) -> timedelta:
        return timedelta(minutes=self._settings.grace_min.get(room.kind, 10))

    def window(self, room: RoomSettings, booking: Booking) -> tuple[datetime, datetime]:
        """Return the booking's check-in window [opens, closes]."""
        early = timedelta(minutes=self._settings.early_min)
        return booking.start - early, booking.start + self.grace(room)

    def checked_in(self, booking: Booking) -> bool:
        return (
            booking.ad_hoc or booking.checked_in is not None or self.kind(booking) == "checked_in"
        )

    def kind(self, booking: Booking) -> Kind | None:
        return self.memory.kinds.get(key_of(booking))

    def evaluate(
        self,
        at: datetime,
        bookings: Mapping[str, Sequence[Booking]],
        sensing: Mapping[str, Sensing],
    ) -> list[Action]:
        """Return what to do now; decisions are remembered as they are taken."""
        actions: list[Action] = []
        for room in self._config.rooms:
            if room.calendar is None or room.zone not in sensing:
                continue
            found = bookings.get(room.zone, ())
            seen = sensing[room.zone]
            for booking in found:
                actions += self._booking(at, room, booking, seen)
            actions += self._ad_hoc(at, room, found, seen)
        return actions

    def settled(self, decision: Decision, ok: bool, at: datetime) -> None:
        """Record how the calendar call of a decision went; a failed one is tried again."""
        if ok:
            self.memory.pending.pop(decision.key, None)
        else:
            self.memory.tried[decision.key] = at

    # -- one booking ----------------------------------------------------------------------

    def _booking(
        self, at: datetime, room: RoomSettings, booking: Booking, seen: Sensing
    ) -> list[Action]:
        key = key_of(booking)
        pending = self.memory.pending.get(key)
        if pending is not None:
            due = at - self.memory.tried.get(key, pending.at) >= self._retry
            if not due or booking.released:
                return []
            if pending.kind == "released":
                return self._retry_release(at, room, booking, seen, pending)
            return [Action(pending, booking)]
        done = self.memory.kinds.get(key)
        if booking.released or done == "released":
            return []
        if booking.ad_hoc:
            return self._ad_hoc_release(at, room, booking, seen)
        opens, closes = self.window(room, booking)
        if at < opens or booking.checked_in is not None or done == "checked_in":
            return []
        present = seen.presence_between(opens, min(at, closes))
        if present is None and at >= closes and at < booking.end and seen.occupied:
            present = at  # arrived after the grace time: the room is in use
        if present is not None:
            reason = f"presence seen at {self._hm(present)}"
            evidence = {"seen_at": present.isoformat(), "device": seen.device}
            return [self._decide("checked_in", booking, at, reason, evidence)]
        if at < closes or done == "held" or at >= booking.end:
            return []
        evidence = self._evidence(room, seen, opens, closes)
        if seen.healthy_throughout(opens) and seen.occupied is False:
            grace = self._settings.grace_min.get(room.kind, 10)
            reason = f"nobody came within {grace} min of the start; the room is free again"
            return [self._decide("released", booking, at, reason, evidence)]
        if not seen.known:
            reason = f"not released: {seen.reason}"
        elif seen.occupied:
            reason = "not released: the room is in use"
        else:
            reason = (
                f"not released: no trustworthy reading for the whole window (sensor known "
                f"only since {self._hm(seen.healthy_since)})"
            )
        held = self._decide("held", booking, at, reason, evidence)
        self.memory.pending.pop(held.decision.key, None)  # nothing to tell the calendar
        return [held]

    def _retry_release(
        self, at: datetime, room: RoomSettings, booking: Booking, seen: Sensing, pending: Decision
    ) -> list[Action]:
        """Send a release not yet in the calendar only if the room still passes the test."""
        opens = self.window(room, booking)[0]
        if booking.ad_hoc:  # judged afresh: released again only once vacant for the grace
            key = key_of(booking)
            self.memory.pending.pop(key, None)
            self.memory.kinds.pop(key, None)
            self.memory.tried.pop(key, None)
            return self._ad_hoc_release(at, room, booking, seen)
        present = seen.presence_between(opens, at)
        if present is not None:
            self.memory.pending.pop(key_of(booking), None)
            reason = f"presence seen at {self._hm(present)}"
            evidence = {"seen_at": present.isoformat(), "device": seen.device}
            return [self._decide("checked_in", booking, at, reason, evidence)]
        if at >= booking.end:
            return self._unpend(at, booking, "not released: the booking ended before the calendar")
        if seen.healthy_throughout(opens) and seen.occupied is False:
            return [Action(pending, booking)]
        reason = (
            f"not released: {seen.reason}" if not seen.known
            else "not released: the room is in use" if seen.occupied
            else "not released: no trustworthy reading since the window opened"
        )  # fmt: skip
        return self._unpend(at, booking, reason)

    def _unpend(self, at: datetime, booking: Booking, reason: str) -> list[Action]:
        """Turn a release the calendar never took into a hold (the booking stays)."""
        self.memory.tried.pop(key_of(booking), None)
        held = self._decide("held", booking, at, reason, {"room": booking.room})
        self.memory.pending.pop(held.decision.key, None)
        return [held]

    def _ad_hoc_release(
        self, at: datetime, room: RoomSettings, booking: Booking, seen: Sensing
    ) -> list[Action]:
        grace = self.grace(room)
        since = at - grace
        if not (booking.start <= since and at < booking.end):
            return []
        if not seen.healthy_throughout(since) or seen.occupied is not False:
            return []
        left = seen.vacant_since()
        if left is not None and left > since:
            return []
        minutes = int(grace.total_seconds() // 60)
        reason = f"unbooked use ended: vacant for {minutes} min"
        evidence = self._evidence(room, seen, since, at)
        return [self._decide("released", booking, at, reason, evidence)]

    # -- unbooked use ---------------------------------------------------------------------

    def _ad_hoc(
        self, at: datetime, room: RoomSettings, found: Sequence[Booking], seen: Sensing
    ) -> list[Action]:
        if not room.ad_hoc or not seen.known or not seen.occupied or not seen.spans:
            return []
        after = timedelta(minutes=self._settings.ad_hoc_after_min)
        live = [b for b in found if not b.released and self.kind(b) != "released"]
        since = self.unbooked_since(at, seen, live)
        if since is None or at - since < after:
            return []
        cover = self._covering(at, live)
        if cover is None:
            start = at
        elif cover.ad_hoc and cover.end - at <= after and self._covering(cover.end, live) is None:
            start = cover.end  # still in use as our booking ends: book the next slot
        else:
            return []
        later = [b.start for b in live if b.start >= start]
        end = min([start + timedelta(minutes=self._settings.ad_hoc_length_min), *later])
        if end - start < timedelta(minutes=1):
            return []
        tried = self._ad_hoc_tried.get(room.zone)
        if tried is not None and at - tried < self._retry:
            return []
        self._ad_hoc_tried[room.zone] = at
        calendar = room.calendar or ""
        decision = Decision(
            "ad_hoc", calendar, "", start, end, room.zone, at,
            f"in use without a booking since {self._hm(since)}",
            {"occupied_since": seen.spans[-1][0].isoformat(), "device": seen.device},
        )  # fmt: skip
        return [Action(decision, None)]

    def unbooked_since(
        self, at: datetime, seen: Sensing, found: Sequence[Booking]
    ) -> datetime | None:
        """Return since when the room has been in use with no booking, if it is now.

        Use counts from the later of its start and the end of the last booking it ran on
        from: people leaving at the end of a meeting (a booth holds occupied a while after
        its door shuts) are not unbooked use of the time before.
        """
        if not seen.occupied or not seen.spans or seen.spans[-1][1] is not None:
            return None
        since = seen.spans[-1][0]
        live = [b for b in found if not b.released and self.kind(b) != "released"]
        for booking in live:
            if since < booking.end <= at:
                since = booking.end
        return since

    def covering(self, at: datetime, found: Sequence[Booking]) -> Booking | None:
        """Return the live booking covering `at` (or opening its window), if any."""
        live = [b for b in found if not b.released and self.kind(b) != "released"]
        return self._covering(at, live)

    def _covering(self, at: datetime, live: Sequence[Booking]) -> Booking | None:
        early = timedelta(minutes=self._settings.early_min)
        return next((b for b in live if b.start - early <= at < b.end), None)

    # -- records --------------------------------------------------------------------------

    def _decide(
        self, kind: Kind, booking: Booking, at: datetime, reason: str, evidence: dict[str, str]
    ) -> Action:
        decision = Decision(
            kind, booking.calendar, booking.uid, booking.start, booking.end, booking.room, at,
            reason, evidence,
        )  # fmt: skip
        self.memory.kinds[decision.key] = kind
        self.memory.reasons[decision.key] = reason
        self.memory.pending[decision.key] = decision
        return Action(decision, booking)

    def _evidence(
        self, room: RoomSettings, seen: Sensing, opens: datetime, closes: datetime
    ) -> dict[str, str]:
        vacant = seen.vacant_since()
        return {
            "room": room.zone,
            "device": seen.device,
            "vacant_since": vacant.isoformat() if vacant else "not seen occupied",
            "sensor_healthy_since": seen.healthy_since.isoformat() if seen.healthy_since else "",
            "last_status_at": seen.last_status_at.isoformat() if seen.last_status_at else "",
            "window": f"{opens.isoformat()}..{closes.isoformat()}",
            "grace_min": str(self._settings.grace_min.get(room.kind, 10)),
        }

    def _hm(self, moment: datetime | None) -> str:
        return moment.astimezone(self._tz).strftime("%H:%M") if moment else "?"
