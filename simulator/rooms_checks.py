"""The report's checks of the rooms service and the room sensors, against the truth.

- every no-show whose room's sensor was healthy is released within its grace time + 1 min;
- no booking is released while its room is truly occupied, while its sensor node is
  offline, or before its grace time ran out unchecked-in;
- each use of a booth nobody booked is flagged and booked by the service;
- no truly occupied booth or meeting room is reported vacant by its agent (the agents'
  occupancy as the console holds it), allowing the sensor's reaction time and the node's
  power cuts, nor shown released on the floor view;
- figures: booked hours released and returned to the pool, releases, check-ins, ad-hoc
  bookings.

Each check reads a `RoomsDay` only, so a test can hand it a crafted bad history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from simulator.rooms_plan import Use
from simulator.verdict import Check

REACTION_S = 15.0  # a sensor's and its agent's reaction to someone walking in
SLACK_S = 60.0  # the grace time's margin: the service steps every 30 s, calendars lag
Span = tuple[float, float]


# What the service did: (when, room, the booking's start and end), in simulated seconds.
Deed = tuple[float, str, float, float]


@dataclass
class RoomsLog:
    """What the rooms service did and showed, each with its simulated time."""

    releases: list[Deed] = field(default_factory=list)
    check_ins: list[Deed] = field(default_factory=list)
    ad_hoc: list[Deed] = field(default_factory=list)  # bookings it made (start: their start)
    shown: dict[str, list[tuple[float, str]]] = field(default_factory=dict)  # room -> statuses


@dataclass(frozen=True)
class RoomsDay:
    """The truth, the agents' word and the service's deeds over one day (simulated s)."""

    uses: Sequence[Use]
    stays: Mapping[str, Sequence[Sequence[float]]]  # room -> [entered, left] (truth)
    offline: Mapping[str, Sequence[Span]]  # room -> its sensor node without power
    reported: Mapping[str, Sequence[tuple[float, bool]]]  # room -> agent's occupied changes
    log: RoomsLog
    grace_s: Mapping[str, float]  # by room kind
    ad_hoc_after_s: float
    end_s: float
    clock: Mapping[float, str] = field(default_factory=dict)  # optional labels for times
    # room -> its node's clock unsynchronised: the times it reported cannot be compared
    unsure: Mapping[str, Sequence[Span]] = field(default_factory=dict)

    def label(self, at: float) -> str:
        return self.clock.get(at) or f"{at / 3600:.2f} h"

    def offline_at(self, room: str, at: float) -> bool:
        return any(a <= at <= b for a, b in self.offline.get(room, ()))

    def occupied_at(self, room: str, at: float) -> bool:
        return any(a <= at <= b for a, b in self.stays.get(room, ()))

    def booking(self, room: str, start: float) -> Use | None:
        """The planned booking of `room` starting at `start` (None: one the service made)."""
        for use in self.uses:
            if use.booked and use.room == room and abs(use.start_s - start) < 1:
                return use
        return None


def rooms_checks(day: RoomsDay) -> list[Check]:
    """Return every rooms check of the day."""
    return [
        no_shows_released(day),
        no_wrong_release(day),
        ad_hoc_booked(day),
        occupied_never_vacant(day),
        occupied_never_shown_released(day),
    ]


def no_shows_released(day: RoomsDay) -> Check:
    """Each no-show with a healthy sensor was released within grace + 1 min of its start."""
    late: list[str] = []
    done = 0
    for use in day.uses:
        if use.outcome != "no_show":
            continue
        due = use.start_s + day.grace_s[use.kind] + SLACK_S
        if any(day.offline_at(use.room, t) for t in (use.start_s, due)):
            continue
        released = [
            at
            for at, room, start, _ in day.log.releases
            if room == use.room and start == use.start_s
        ]
        if released and released[0] <= due:
            done += 1
        else:
            when = day.label(released[0]) if released else "never"
            late.append(f"{use.room} {day.label(use.start_s)} (released {when})")
    return Check(
        "every no-show (sensor healthy) released within its grace time + 1 min",
        not late,
        f"{done} released in time; late or never: {late[:5] or 'none'}",
    )


def no_wrong_release(day: RoomsDay) -> Check:
    """No release while the room was truly occupied, its sensor offline, or in grace."""
    wrong: list[str] = []
    for at, room, start, _ in day.log.releases:
        use = day.booking(room, start)
        why = ""
        if day.occupied_at(room, at):
            why = "truly occupied"
        elif day.offline_at(room, at):
            why = "its sensor node offline"
        elif use is not None and use.arrive_s is not None and at < start + day.grace_s[use.kind]:
            checked = any(r == room and s == start for _, r, s, _ in day.log.check_ins)
            why = "" if checked else "before its grace time ran out"
        if why:
            wrong.append(f"{room} at {day.label(at)}: {why}")
    return Check(
        "no booking released while its room was truly occupied or its sensor offline",
        not wrong,
        f"{len(day.log.releases)} releases; wrong: {wrong[:5] or 'none'}",
    )


def ad_hoc_booked(day: RoomsDay) -> Check:
    """Each unbooked use of a booth is covered by a booking the service made, in time."""
    missing: list[str] = []
    found = 0
    for use in day.uses:
        if use.outcome != "ad_hoc" or use.arrive_s is None or use.leave_s is None:
            continue
        due = use.arrive_s + day.ad_hoc_after_s + SLACK_S
        if use.leave_s < due or day.offline_at(use.room, use.arrive_s):
            continue
        # Booked by the service at that moment: for them, or still for the one before them.
        made = day.log.ad_hoc
        if any(r == use.room and at <= due and a <= due < b for at, r, a, b in made):
            found += 1
        else:
            missing.append(f"{use.room} {day.label(use.arrive_s)}")
    return Check(
        "a booth used without a booking was flagged and booked (ad hoc) within "
        "the flag time + 1 min",
        not missing,
        f"{found} booked ad hoc; missed: {missing[:5] or 'none'}",
    )


def _vacant_spans(changes: Sequence[tuple[float, bool]], end: float) -> list[Span]:
    spans: list[Span] = []
    since: float | None = 0.0  # a room is vacant until its agent first says otherwise
    for at, occupied in sorted(changes):
        if occupied and since is not None:
            spans.append((since, at))
            since = None
        elif not occupied and since is None:
            since = at
    if since is not None:
        spans.append((since, end))
    return spans


def occupied_never_vacant(day: RoomsDay) -> Check:
    """While someone is truly in a room, its agent never reports it vacant."""
    wrong: list[str] = []
    stays = 0
    for room, room_stays in day.stays.items():
        vacant = _vacant_spans(day.reported.get(room, ()), day.end_s)
        for entered, left in room_stays:
            stays += 1
            seen_from = entered + REACTION_S
            for a, b in vacant:
                lo, hi = max(a, seen_from), min(b, left)
                if hi <= lo:
                    continue
                if all(day.offline_at(room, t) for t in (lo, (lo + hi) / 2, hi)):
                    continue  # no power: its agent says nothing at all
                if any(a <= hi and lo <= b for a, b in day.unsure.get(room, ())):
                    continue  # its clock was off: its times cannot be compared
                wrong.append(f"{room} vacant {day.label(lo)}-{day.label(hi)}")
    return Check(
        "no truly occupied booth or meeting room reported vacant by its agent "
        f"(after {REACTION_S:g} s to react)",
        not wrong,
        f"{stays} stays compared with the agents' occupancy; wrong: {wrong[:5] or 'none'}",
    )


def occupied_never_shown_released(day: RoomsDay) -> Check:
    """The floor view never shows a truly occupied room as released."""
    wrong: list[str] = []
    for room, statuses in day.log.shown.items():
        ordered = sorted(statuses)
        for n, (at, status) in enumerate(ordered):
            if status != "released":
                continue
            until = ordered[n + 1][0] if n + 1 < len(ordered) else day.end_s
            for entered, left in day.stays.get(room, ()):
                lo, hi = max(at, entered + REACTION_S + SLACK_S), min(until, left)
                if hi > lo:
                    wrong.append(f"{room} {day.label(lo)}-{day.label(hi)}")
    return Check(
        "no truly occupied room shown released on the floor view",
        not wrong,
        f"{sum(len(s) for s in day.log.shown.values())} status changes; "
        f"wrong: {wrong[:5] or 'none'}",
    )


def rooms_figures(day: RoomsDay) -> dict[str, float]:
    """Booked hours given back, releases, check-ins, ad-hoc bookings and what was planned."""
    returned = 0.0
    for at, room, start, _ in day.log.releases:
        use = day.booking(room, start)
        if use is not None:
            returned += max(0.0, use.end_s - max(at, use.start_s)) / 3600
    planned = [u for u in day.uses if u.booked]
    ends = {(u.room, u.end_s) for u in planned}
    overruns = sum((room, start) in ends for _, room, start, _ in day.log.ad_hoc)
    return {
        "bookings": float(len(planned)),
        "booked_h": sum(u.end_s - u.start_s for u in planned) / 3600,
        "no_shows": float(sum(u.outcome == "no_show" for u in day.uses)),
        "late": float(sum(u.outcome == "late" for u in day.uses)),
        "early_leavers": float(sum(u.outcome == "early_leave" for u in day.uses)),
        "unbooked_uses": float(sum(u.outcome == "ad_hoc" for u in day.uses)),
        "releases": float(sum(day.booking(r, s) is not None for _, r, s, _ in day.log.releases)),
        "ad_hoc_released": float(sum(day.booking(r, s) is None for _, r, s, _ in day.log.releases)),
        "released_h": returned,
        "check_ins": float(len(day.log.check_ins)),
        "ad_hoc_bookings": float(len(day.log.ad_hoc)),
        # Booked ad hoc from a booking's end: its occupants' last minute, or the sensor's hold.
        "ad_hoc_at_booking_end": float(overruns),
    }
