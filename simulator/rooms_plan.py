"""The day's bookings of meeting rooms and booths, and how each really goes, from the seed.

Each office floor's meeting rooms and booths are booked through the day by members of staff
(the organiser is their address). Most bookings are used as booked; some are no-shows, some
start late (within the grace time), some end early; now and then someone takes a booth
nobody booked. A booking made for a room whose sensor node a scenario powers off is kept
normal and spans the cut, so the report can show that the service did not release it.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from simulator.building import Building, Zone
from simulator.staff import Person

Outcome = Literal["normal", "no_show", "late", "early_leave", "ad_hoc"]
RoomKind = Literal["meeting-room", "focus-booth", "phone-booth"]
OUTCOMES: tuple[Outcome, ...] = ("normal", "no_show", "late", "early_leave")
WEIGHTS = (0.58, 0.16, 0.13, 0.13)
MIN = 60.0
FIRST_H, LAST_H = 9.0, 18.5  # local hours bookings fall between
MAIL_DOMAIN = "city.example.jp"


@dataclass(frozen=True)
class Use:
    """One booking (or unbooked use) of a room, and what really happens (simulated seconds)."""

    room: str
    kind: RoomKind
    start_s: float  # the booking's start (ad hoc: when they walk in)
    end_s: float
    outcome: Outcome
    arrive_s: float | None  # None: nobody comes
    leave_s: float | None
    organiser: str  # a member of staff's address (personal data: never in the report)
    people: int = 1

    @property
    def booked(self) -> bool:
        return self.outcome != "ad_hoc"


def room_kind(zone: Zone) -> RoomKind | None:
    """Return the rooms service's kind of a zone, or None if it is not bookable."""
    if zone.kind == "meeting-room":
        return "meeting-room"
    if zone.id.startswith("focus-"):
        return "focus-booth"
    if zone.id.startswith("phone-"):
        return "phone-booth"
    return None  # consultation booths: visitors walk in, nobody books them


def bookable(building: Building) -> list[Zone]:
    """Every room and booth the rooms service books."""
    return [z for z in building.zones.values() if room_kind(z) is not None]


def plan_day(
    building: Building,
    people: Sequence[Person],
    start: datetime,
    seed: int,
    grace_min: Mapping[str, int],
    kept: Sequence[tuple[str, float, float]] = (),
    length_s: float = 24 * 3600,
) -> list[Use]:
    """Return the day's uses of every bookable room, in time order (all over by `length_s`).

    `kept`: (device, from, until) in simulated seconds: a sensor node powered off then;
    the first room it watches gets a normal booking spanning that time.
    """
    rng = random.Random(seed * 7_727 + 11)
    staff = [p for p in people if p.case == "" and "security" not in p.groups] or list(people)
    day0 = start.replace(hour=0, minute=0, second=0, microsecond=0)
    offset = (start - day0).total_seconds()
    uses: list[Use] = []
    spans = {d: (a, b) for d, a, b in kept}
    for zone in bookable(building):
        kind = room_kind(zone)
        assert kind is not None
        device, _ = building.sensor_for(zone.id)
        forced = spans.pop(device.id, None) if zone.id == _first_room(building, device.id) else None
        grace = grace_min.get(kind, 10) * MIN
        last = min(LAST_H * 3600 - offset, length_s - 30 * MIN)
        uses += _room_day(rng, zone.id, kind, staff, offset, last, grace, forced)
    return sorted(uses, key=lambda u: (u.start_s, u.room))


def _first_room(building: Building, device: str) -> str | None:
    return next((z.id for z in building.devices[device].zones if room_kind(z)), None)


def _room_day(
    rng: random.Random,
    room: str,
    kind: RoomKind,
    staff: Sequence[Person],
    offset: float,
    last: float,
    grace: float,
    forced: tuple[float, float] | None,
) -> list[Use]:
    meeting = kind == "meeting-room"
    lengths = (30, 60, 60, 90) if meeting else (30, 45, 60)
    t = FIRST_H * 3600 - offset + rng.choice((0, 15, 30, 45)) * MIN
    uses: list[Use] = []
    while True:
        length = rng.choice(lengths) * MIN
        if t + length > last:
            break
        outcome = rng.choices(OUTCOMES, WEIGHTS)[0]
        organiser = rng.choice(staff)
        people = rng.randint(2, 6) if meeting else 1
        uses.append(_booked(rng, room, kind, t, t + length, outcome, organiser, grace, people))
        gap = rng.choice((15, 30, 45, 60, 90)) * MIN
        if not meeting and gap >= 90 * MIN and rng.random() < 0.6:
            walk_in = t + length + rng.uniform(10, 20) * MIN  # a booth nobody booked
            stay = rng.uniform(12, 25) * MIN
            who = _address(rng.choice(staff))
            uses.append(
                Use(room, kind, walk_in, walk_in + stay, "ad_hoc", walk_in, walk_in + stay, who)
            )
        t += length + gap
    if forced is not None:
        uses = _spanning(rng, room, kind, staff, uses, *forced)
    return uses


def _spanning(
    rng: random.Random,
    room: str,
    kind: RoomKind,
    staff: Sequence[Person],
    uses: list[Use],
    cut: float,
    back: float,
) -> list[Use]:
    """Replace what overlaps the cut by one normal booking from before it to after it."""
    start = (cut - 20 * MIN) // (5 * MIN) * (5 * MIN)
    end = (back + 25 * MIN) // (5 * MIN) * (5 * MIN)
    keep = [u for u in uses if u.end_s + 30 * MIN <= start or u.start_s >= end + 30 * MIN]
    organiser = rng.choice(staff)
    spanning = Use(
        room, kind, start, end, "normal", start - MIN, end - 2 * MIN, _address(organiser)
    )
    return sorted([*keep, spanning], key=lambda u: u.start_s)


def _booked(
    rng: random.Random,
    room: str,
    kind: RoomKind,
    start: float,
    end: float,
    outcome: Outcome,
    organiser: Person,
    grace: float,
    people: int,
) -> Use:
    arrive: float | None
    leave: float | None
    match outcome:
        case "no_show":
            arrive = leave = None
        case "late":  # within the grace time, with a margin for the service's step
            arrive = start + rng.uniform(2 * MIN, max(2 * MIN, grace - 3 * MIN))
            leave = end - rng.uniform(0, 2) * MIN
        case "early_leave":
            arrive = start - rng.uniform(0, 3) * MIN
            leave = start + (end - start) * rng.uniform(0.3, 0.55)
        case _:
            arrive = start - rng.uniform(0, 3) * MIN
            leave = end - rng.uniform(0, 2) * MIN
    return Use(room, kind, start, end, outcome, arrive, leave, _address(organiser), people)


def _address(person: Person) -> str:
    return f"{person.staff_no.lower()}@{MAIL_DOMAIN}"


def local(start: datetime, at_s: float) -> datetime:
    """Return the aware local time `at_s` simulated seconds after `start`."""
    return start + timedelta(seconds=at_s)
