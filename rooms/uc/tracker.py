"""Each opted-in person's UC state, from line crossings and checked-in bookings.

The rooms service calls it from its step, on one thread: `crossing` for each granted crossing
of the security line, `meetings` with the checked-in bookings in progress after each poll,
`tick` every step. States are worked out here (rooms.uc.states) and handed to each UC server's
courier, which sends only changes plus the refreshes its server needs. Only opted-in people are
held, and of them only their last crossing and current state: a crossing of anyone else is
dropped at once, and so is everything of a person who opts out (after their status is cleared).

What outlives the process: `held_file` (a small JSON file next to the service's state) lists the
UC ids a status of this service may still be set for. It is rewritten when that set changes and
at close (whoever could not be cleared then); at the first tick after start each one listed is
set AWAY, so a status left by a crash, or a person who opted out meanwhile, is cleared.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping, Sequence
from datetime import date, datetime, tzinfo
from pathlib import Path

from rooms.bookings import Booking
from rooms.uc.courier import Courier
from rooms.uc.directory import DirectoryError, UcDirectory, UcPerson
from rooms.uc.states import UcState, engagements, inside_today, state_of

log = logging.getLogger(__name__)


class PresenceTracker:
    """Work out opted-in people's UC states and hand changes to every UC server's courier."""

    def __init__(
        self,
        directory: UcDirectory,
        couriers: Sequence[Courier],
        room_kinds: Mapping[str, str],
        timezone: tzinfo,
        held_file: Path | None = None,
    ) -> None:
        self.directory = directory
        self.held_file = held_file
        self.couriers = tuple(couriers)
        self.room_kinds = dict(room_kinds)
        self.timezone = timezone
        self._crossings: dict[str, tuple[bool, datetime]] = {}  # staff_no -> (inside, at)
        self._engaged: dict[str, UcState] = {}  # opted-in addresses -> MEETING or PHONE
        self._states: dict[str, UcState] = {}  # staff_no -> the state handed to the couriers
        self._known: dict[str, UcPerson] = dict(directory.people)
        self._registry_failing = False
        self._closed = False
        self._stale = _read_held(held_file)  # to clear at the first tick
        self._written = set(self._stale)
        log.info(
            "UC presence: %d opted-in people, servers: %s",
            len(self._known),
            ", ".join(c.adapter.name for c in self.couriers),
        )

    def __repr__(self) -> str:
        return f"<PresenceTracker people={len(self._known)} couriers={len(self.couriers)}>"

    def start(self) -> None:
        """Start every courier's thread; idempotent."""
        self._check_open()
        for courier in self.couriers:
            courier.start()

    def crossing(self, card_ref: str, inside: bool, at: datetime) -> None:
        """Take a granted crossing of the security line (in when `inside`)."""
        self._check_open()
        person = self.directory.person(card_ref)
        if person is None:
            return  # not opted in (or not a person's own active card): nothing is kept
        last = self._crossings.get(person.staff_no)
        if last is not None and last[1] > at:
            return  # an older crossing delivered late changes nothing
        self._crossings[person.staff_no] = (inside, at)
        self._update(person, at)

    def meetings(self, active: Sequence[Booking], at: datetime) -> None:
        """Take the checked-in bookings in progress (all rooms) and update whom they concern."""
        self._check_open()
        found = engagements(active, self.room_kinds, at)
        addresses = {a for person in self._known.values() for a in person.addresses}
        self._engaged = {a: s for a, s in found.items() if a in addresses}
        self._update_all(at)

    def tick(self, at: datetime) -> None:
        """Read the registry if it changed, roll over at midnight, and let couriers refresh."""
        self._check_open()
        self._reload(at)
        if self._stale:
            wanted = {p.uc_id for p in self._known.values() if p.staff_no in self._states}
            for uc_id in self._stale - wanted:
                for courier in self.couriers:
                    courier.clear(uc_id, at)
            self._stale = set()
        self._update_all(at)
        for courier in self.couriers:
            courier.tick(at)
        self._save_held()

    def state_of(self, staff_no: str) -> UcState:
        """Return the state last worked out for a person (AWAY when nothing is known)."""
        return self._states.get(staff_no, UcState.AWAY)

    def close(self) -> None:
        """Stop every courier; idempotent."""
        if self._closed:
            return
        self._closed = True
        for courier in self.couriers:
            courier.close()  # sets every held person AWAY, within its bound
        self._save_held()

    def _save_held(self) -> None:
        """Write the UC ids a status may be held for, when that set changed."""
        held = set(self._stale).union(*(c.held_ids() for c in self.couriers))
        if self.held_file is None or held == self._written:
            return
        temporary = self.held_file.with_name(self.held_file.name + ".tmp")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as out:
                json.dump({"uc_ids": sorted(held)}, out)
            os.replace(temporary, self.held_file)
        except OSError as error:
            log.warning(
                "UC presence: cannot write %s (%s); statuses left at a crash are not cleared "
                "at the next start",
                self.held_file,
                type(error).__name__,
            )
            return
        self._written = held

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")

    def _reload(self, at: datetime) -> None:
        try:
            changed = self.directory.refresh()
        except DirectoryError as error:
            if not self._registry_failing:
                self._registry_failing = True
                log.warning("UC presence: %s; keeping the opt-ins read before", error)
            return
        if self._registry_failing:
            self._registry_failing = False
            log.info("UC presence: the registry is readable again")
        if not changed:
            return
        people = dict(self.directory.people)
        gone = [
            person
            for staff_no, person in self._known.items()
            if staff_no not in people or people[staff_no].uc_id != person.uc_id
        ]
        for person in gone:  # opted out, or their UC id changed
            for courier in self.couriers:
                courier.want(person.uc_id, UcState.AWAY, at)
            self._states.pop(person.staff_no, None)
            if person.staff_no not in people:
                self._crossings.pop(person.staff_no, None)
        added = len(set(people) - set(self._known))
        self._known = people
        if gone or added:
            log.info(
                "UC presence: registry read: %d opted in, %d joined, %d left or changed",
                len(people),
                added,
                len(gone),
            )

    def _update_all(self, at: datetime) -> None:
        for person in self._known.values():
            self._update(person, at)

    def _update(self, person: UcPerson, at: datetime) -> None:
        crossed = self._crossings.get(person.staff_no)
        inside = crossed is not None and inside_today(crossed[0], crossed[1], at, self.timezone)
        if crossed is not None and _day(crossed[1], self.timezone) < _day(at, self.timezone):
            del self._crossings[person.staff_no]  # an earlier day's: nothing more to keep
        state = state_of(inside, person.addresses, self._engaged)
        if self._states.get(person.staff_no, UcState.AWAY) is state:
            return
        if state is UcState.AWAY:
            self._states.pop(person.staff_no, None)
        else:
            self._states[person.staff_no] = state
        for courier in self.couriers:
            courier.want(person.uc_id, state, at)


def _day(moment: datetime, timezone: tzinfo) -> date:
    return moment.astimezone(timezone).date()


def _read_held(path: Path | None) -> set[str]:
    """Return the UC ids listed in `path` (none when it is missing, unreadable or malformed)."""
    if path is None or not path.exists():
        return set()
    try:
        data = json.loads(path.read_text(encoding="utf-8")[:1_000_000])
    except (OSError, UnicodeDecodeError, ValueError) as error:
        log.warning(
            "UC presence: cannot read %s (%s); nothing to clear", path, type(error).__name__
        )
        return set()
    listed = data.get("uc_ids") if isinstance(data, dict) else None
    if not isinstance(listed, list):
        log.warning("UC presence: %s holds no uc_ids list; nothing to clear", path)
        return set()
    return {u for u in listed if isinstance(u, str) and 0 < len(u) <= 255}
