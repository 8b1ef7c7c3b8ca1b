"""The rooms service inside the simulated day: its calendars, the bookings, its steps.

Before the day starts a private Radicale holds a calendar per bookable room, and the staff's
bookings are put in them as their calendar clients would (`rooms.caldav_setup.make_booking`).
The service runs in this process on the simulated clock: every `STEP_S` simulated seconds the
sensor nodes whose timers may have run are moved on to now, the day waits until their
occupancy has reached the broker's subscribers (the console's collector holds it), and the
service takes one step. What the service shows on its floor view is kept per room; its
journal says what it decided.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from rooms.caldav_client import connect
from rooms.caldav_setup import ensure_calendars, make_booking
from rooms.config import CaldavCalendar, ServiceConfig, load_service_config
from rooms.journal import OK
from rooms.service import Service, build_service
from simulator.building import Building
from simulator.calendar_server import SERVICE_ACCOUNT, STAFF_ACCOUNT, CalendarServer
from simulator.clock import FakeClock
from simulator.control import SIM_MONO
from simulator.engine import Process
from simulator.rooms_checks import RoomsDay, RoomsLog
from simulator.rooms_config import AD_HOC_AFTER_MIN, CALENDAR_ID, GRACE_MIN, rooms_config_text
from simulator.rooms_plan import Use, bookable
from simulator.world import World

log = logging.getLogger(__name__)

STEP_S = 30.0  # the service's step: releases within a grace time + 30 s
QUIET_STEP_S = 300.0  # its step before the day's first booking and after the last one
# How long after an input last changed a node may still have a timer to run: the longest
# hold (a desk island's 600 s) and the room latch's settling, with a step to spare.
QUIET_AFTER_S = 600.0 + 2 * STEP_S
TITLES = ("打合せ", "定例会議", "電話会議", "資料作成", "面談", "オンライン会議")


class RoomsDesk:
    """The rooms service of the simulated building, and what it did all day."""

    def __init__(self, building: Building, uses: Sequence[Use], start: datetime, workdir: Path):
        self.building = building
        self.uses = list(uses)
        self.start = start
        self.workdir = workdir
        self.calendars = CalendarServer(workdir / "calendars")
        self.clock = FakeClock(start, mono=SIM_MONO)
        self.log = RoomsLog()
        self.booked_s = 0.0  # real seconds it took to book the day
        self.step_real_s = 0.0  # real seconds spent in the service's steps
        self.steps = 0
        self._shown: dict[str, str] = {}
        self.config: ServiceConfig
        self.service: Service | None = None

    def __repr__(self) -> str:
        return f"<RoomsDesk {len(self.uses)} uses, {self.steps} steps>"

    def setup(self, broker_port: int, password_file: Path, devices_dir: Path | None = None) -> None:
        """Start the calendar server, book the day, and build the service."""
        began = time.perf_counter()
        self.calendars.start()
        paths = {z.id: self.calendars.calendar_path(z.id) for z in bookable(self.building)}
        path = self.workdir / "rooms.toml"
        path.write_text(
            rooms_config_text(
                self.building,
                broker_port=broker_port,
                password_file=password_file,
                state_path=self.workdir / "rooms.db",
                calendar_url=self.calendars.url,
                calendar_user=SERVICE_ACCOUNT,
                calendar_password_file=self.calendars.password_file(SERVICE_ACCOUNT),
                calendar_paths=paths,
                devices_dir=devices_dir,
            ),
            encoding="utf-8",
        )
        self.config = load_service_config(path)
        service_calendar = next(c for c in self.config.calendars if c.id == CALENDAR_ID)
        assert isinstance(service_calendar, CaldavCalendar)
        ensure_calendars(service_calendar, self.config.rooms)
        self._book(service_calendar, paths)
        self.booked_s = time.perf_counter() - began
        self.service = build_service(self.config, self.clock)
        self.service.start()

    def _book(self, service_calendar: CaldavCalendar, paths: dict[str, str]) -> None:
        """Book every planned booking as its organiser's calendar client would."""
        staff = service_calendar.model_copy(
            update={
                "username": STAFF_ACCOUNT,
                "password_file": self.calendars.password_file(STAFF_ACCOUNT),
            }
        )
        client = connect(staff)
        try:
            for n, use in enumerate(self.uses):
                if not use.booked:
                    continue
                make_booking(
                    staff,
                    paths[use.room],
                    self.uid(use),
                    self.start + timedelta(seconds=use.start_s),
                    self.start + timedelta(seconds=use.end_s),
                    use.organiser,
                    (),
                    TITLES[n % len(TITLES)],
                    client=client,
                )
        finally:
            client.close()

    def uid(self, use: Use) -> str:
        return f"sim-{use.room}-{int(use.start_s)}@{self.building.spec.site}"

    # -- the day ----------------------------------------------------------------------------

    def steps_process(
        self, world: World, caught_up: Callable[[Mapping[str, int]], bool | None]
    ) -> Process:
        """Step the service every STEP_S simulated seconds, its devices' news in first.

        `caught_up(want)` waits until the console holds each device's events up to its seq
        (None when it cannot: the broker is down, and so is the service's link).
        """
        nodes = {d.id for d in self.building.devices.values() if d.role == "sensor-node"}
        seen: dict[str, int] = {}
        booked = [u for u in self.uses if u.booked] or self.uses
        busy_from = min((u.start_s for u in booked), default=0.0) - 30 * 60
        busy_until = max((u.end_s for u in booked), default=0.0) + 30 * 60
        while True:
            now = world.engine.now
            want: dict[str, int] = {}
            for device in sorted(nodes - world.down):
                if now - world.input_at.get(device, -1e9) > QUIET_AFTER_S:
                    continue  # no input changed lately: no timer of its can run now
                reply = world.request(device, op="stats")  # moves its clock on to now
                last = int(reply["last_seq"]) if reply is not None else 0
                if last > seen.get(device, 0):
                    want[device] = seen[device] = last
            if want and caught_up(want) is False:
                world.note(f"rooms service: the devices' occupancy lagged at {world.clock_text()}")
            self.step(now)
            yield STEP_S if busy_from <= now <= busy_until else QUIET_STEP_S

    def step(self, at_s: float) -> None:
        """Step the service at `at_s` (simulated) and keep what its floor view shows."""
        assert self.service is not None, "set the rooms desk up first"
        began = time.perf_counter()
        now = self.clock.now().mono - SIM_MONO
        if at_s > now:
            self.clock.advance(at_s - now)
        self.service.step(self.clock.now().utc)
        self.observe(at_s, {r.zone: r.status for r in self.service.view().rooms})
        self.steps += 1
        self.step_real_s += time.perf_counter() - began

    def observe(self, at_s: float, statuses: dict[str, str]) -> None:
        """Keep each room's status as the floor view shows it, when it changes."""
        for room, status in statuses.items():
            if self._shown.get(room) != status:
                self._shown[room] = status
                self.log.shown.setdefault(room, []).append((at_s, status))

    # -- the end ----------------------------------------------------------------------------

    def agents_word(self, entries: Sequence[Any]) -> dict[str, list[tuple[float, bool]]]:
        """Each booth's and meeting room's occupancy as its agent reported it (console's log)."""
        rooms = {z.id for z in self.building.watched_rooms()}
        word: dict[str, list[tuple[float, bool]]] = defaultdict(list)
        for e in entries:
            zone = e.body.get("zone") if e.kind == "occupancy" else None
            if zone in rooms:
                at = (datetime.fromisoformat(e.ts) - self.start).total_seconds()
                word[zone].append((at, bool(e.body.get("occupied"))))
        return dict(word)

    def figures(self) -> dict[str, float]:
        """What running the service cost, in real seconds."""
        return {"steps": float(self.steps), "step_s": self.step_real_s, "booking_s": self.booked_s}

    def day(
        self, world: World, reported: dict[str, list[tuple[float, bool]]], end_s: float
    ) -> RoomsDay:
        """Gather the truth, the agents' word and the service's deeds for the checks."""
        offline: dict[str, list[tuple[float, float]]] = defaultdict(list)
        unsure: dict[str, list[tuple[float, float]]] = defaultdict(list)
        for zone in self.building.watched_rooms():
            device, _ = self.building.sensor_for(zone.id)
            for off, on in world.truth.unpowered.get(device.id, []):
                offline[zone.id].append((off, min(on, end_s)))
            unsure[zone.id] += world.truth.unsynced.get(device.id, [])
        grace = {kind: minutes * 60.0 for kind, minutes in GRACE_MIN.items()}
        stays = {room: [[a, min(b, end_s)] for a, b in s] for room, s in world.truth.stays.items()}
        return RoomsDay(
            uses=self.uses,
            stays=stays,
            offline=dict(offline),
            reported=reported,
            log=self.log,
            grace_s=grace,
            ad_hoc_after_s=AD_HOC_AFTER_MIN * 60.0,
            end_s=end_s,
            unsure=dict(unsure),
        )

    def read_journal(self) -> None:
        """Take the service's check-ins, releases and ad-hoc bookings from its journal."""
        if self.service is None:
            return
        kinds = {"released": self.log.releases, "checked_in": self.log.check_ins}
        kinds["ad_hoc"] = self.log.ad_hoc
        for entry in self.service.journal.entries():
            if entry.kind in kinds and entry.outcome == OK:
                at = (entry.at - self.start).total_seconds()
                start = (entry.start - self.start).total_seconds()
                end = (entry.end - self.start).total_seconds()
                kinds[entry.kind].append((at, entry.room, start, end))

    def close(self) -> None:
        """Stop the service and the calendar server; idempotent."""
        try:
            if self.service is not None:
                self.service.close()
        finally:
            self.calendars.stop()
