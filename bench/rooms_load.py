"""The rooms service's load over a day of the default building, compressed in time.

A private mosquitto on loopback with the site's accounts and ACL (every device publishes with
its own account, as agents do), a private Radicale holding a calendar per bookable room, and
`edge-rooms run` in its own process with the configuration the simulator generates for the
Kamakura building (simulator.rooms_config: its 49 rooms and booths, 18 department areas and
the refresh area, `poll_s` 120 as in production), plus a `[web]` port and `devices_dir`
holding every device's configuration (simulator.building.device_config), so the service takes
the gates' doors, crossings and head counts as at a provisioned site. The day's bookings
(simulator.rooms_plan) are put in Radicale as the staff's calendar clients would, then the
day's messages (bench.rooms_day) are published as the devices would send them.

What is compressed, by `--factor` (default 300: 06:30-21:30 in 180 s): the day's bookings
(placed in real time from the day's real start, each start, end and length divided by the
factor) and every message of the day (occupancy, door and access events). What is not: the
service's clock and its rules (early 5 min, grace 10 min, ad hoc after 3 min, calendar poll
every 120 s: real minutes), and the devices' status every 30 s of real time. So check-ins
(presence inside a booking) happen as in a day, but a no-show is released, or unbooked use
booked, only 10 (3) real minutes after its compressed start: almost none within the run.

The service's CPU time and RSS are read from /proc/PID/stat and /proc/PID/status every
second: during a quiet spell before the day (statuses only) and during the day. Printed,
never asserted.

    python bench/rooms_load.py [--factor 300] [--quiet-s 20]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.rooms_day import ROOT, Devices, Send, day_sends, overnight, play, statuses
from bench.rooms_process import Accounts, RoomsProcess, Sampler
from rooms.caldav_client import connect
from rooms.caldav_setup import ensure_calendars, make_booking
from rooms.config import CaldavCalendar, load_service_config
from rooms.journal import Journal
from simulator.broker import free_port
from simulator.building import Building, Wiring, device_config, load_building
from simulator.calendar_server import SERVICE_ACCOUNT, STAFF_ACCOUNT, CalendarServer
from simulator.rooms_config import GRACE_MIN, rooms_config_text
from simulator.rooms_plan import Use, bookable, plan_day
from simulator.staff import make_people

DAY_S = 15 * 3600.0
DROPPED = re.compile(r"dropped a message \(([a-z-]+)\) from \S+; (\d+) so far")
REQUEST = re.compile(rb"\b(GET|PUT|PROPFIND|REPORT|DELETE|MKCOL|MKCALENDAR|PROPPATCH|POST) request")


def book(calendar: CaldavCalendar, server: CalendarServer, uses: list[Use],
         real: datetime, factor: float) -> int:  # fmt: skip
    """Put each booked use in its room's calendar, its times compressed from `real`."""
    staff = calendar.model_copy(update={
        "username": STAFF_ACCOUNT, "password_file": server.password_file(STAFF_ACCOUNT)})  # fmt: skip
    session = connect(staff)
    made = 0
    try:
        for use in uses:
            if use.booked:
                start = real + timedelta(seconds=use.start_s / factor)
                end = real + timedelta(seconds=use.end_s / factor)
                make_booking(staff, server.calendar_path(use.room), f"bench-{use.room}-{made}",
                             start, end, use.organiser, (), "打合せ", client=session)  # fmt: skip
                made += 1
    finally:
        session.close()
    return made


def requests(log: Path, offset: int) -> Counter[str]:
    """Count the calendar requests Radicale logged after `offset`, by method."""
    found = REQUEST.findall(log.read_bytes()[offset:])
    return Counter(m.decode() for m in found)


@dataclass
class Marks:
    """Monotonic moments of the run."""

    spawned: float = 0.0
    ready: float = 0.0
    quiet_from: float = 0.0
    day_from: float = 0.0
    ended: float = 0.0


@dataclass
class Outcome:
    """What the run measured besides the samples."""

    booked: int = 0
    booking_s: float = 0.0
    late_s: float = 0.0
    calls: Counter[str] = field(default_factory=Counter)
    decided: Counter[str] = field(default_factory=Counter)
    troubles: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    code: int | None = None


def service_config(tmp: Path, building: Building, broker_port: int, accounts: Accounts,
                   server: CalendarServer) -> tuple[Path, int]:  # fmt: skip
    """Write the simulator's configuration for the building, with a free web port.

    The devices' configurations go where edge-provision keeps them (`devices_dir`): the
    service takes doors, line crossings and head counts only as they allow.
    """
    web_port = free_port()
    devices_dir = tmp / "site" / "devices"
    devices_dir.mkdir(parents=True)
    wiring = Wiring(broker_port, tmp / "site", tmp / "stores")
    for device in building.devices.values():
        text = device_config(building, device, wiring)
        (devices_dir / f"{device.id}.toml").write_text(text, encoding="utf-8")
    text = rooms_config_text(
        building, broker_port=broker_port, password_file=accounts.file("rooms"),
        state_path=tmp / "rooms.db", calendar_url=server.url, calendar_user=SERVICE_ACCOUNT,
        calendar_password_file=server.password_file(SERVICE_ACCOUNT),
        calendar_paths={z.id: server.calendar_path(z.id) for z in bookable(building)},
    )  # fmt: skip
    if "devices_dir" not in text:  # a top-level key: before the first table
        text = f"devices_dir = {json.dumps(str(devices_dir))}\n{text}"
    path = tmp / "rooms.toml"
    path.write_text(f"{text}\n[web]\nport = {web_port}\n", encoding="utf-8")
    return path, web_port


def run(args: argparse.Namespace, tmp: Path, building: Building, uses: list[Use],
        sends: list[Send], marks: Marks, out: Outcome) -> tuple[Sampler, Devices]:  # fmt: skip
    """Set everything up, play the day and stop the service; fill `marks` and `out`."""
    spec, names = building.spec, sorted(building.devices)
    accounts = Accounts(tmp, {**dict.fromkeys(names, "device"), "rooms": "rooms"})
    broker = accounts.broker(tmp, ROOT, spec.site)
    server = CalendarServer(tmp / "calendars")
    devices = service = sampler = None
    stop = threading.Event()
    try:
        server.start()
        path, web_port = service_config(tmp, building, broker.port, accounts, server)
        config = load_service_config(path)
        calendar = config.calendars[0]
        assert isinstance(calendar, CaldavCalendar)
        ensure_calendars(calendar, config.rooms)
        day_real = datetime.now(UTC) + timedelta(seconds=args.lead_s)
        marks.day_from = time.monotonic() + args.lead_s
        began = time.monotonic()
        out.booked = book(calendar, server, uses, day_real, args.factor)
        out.booking_s = time.monotonic() - began
        devices = Devices(broker.port, accounts, names, spec.site)
        overnight(devices, sends)
        offset = server.log.stat().st_size
        marks.spawned = time.monotonic()
        service = RoomsProcess(path, web_port, tmp / "rooms.log")
        sampler = Sampler(service)
        rooms = len(config.rooms)
        service.wait_view(lambda v: sum(r["occupied"] is False for r in v["rooms"]) == rooms, 60)
        marks.ready = time.monotonic()
        threading.Thread(target=statuses, args=(devices, names, stop), daemon=True).start()
        marks.quiet_from = marks.day_from - args.quiet_s
        if marks.quiet_from < marks.ready:
            raise SystemExit(f"set-up took too long: raise --lead-s above {args.lead_s}")
        out.late_s = play(devices, sends, marks.day_from, args.factor)
        threading.Event().wait(
            max(0.0, marks.day_from + DAY_S / args.factor - time.monotonic()) + 5
        )
        marks.ended = time.monotonic()
        sampler.stop.set()
        sampler.thread.join(5)
        out.code = service.stop()
        collect(out, server.log, offset, config.state_path, service.log_path)
    finally:
        stop.set()
        if sampler is not None:
            sampler.stop.set()
        if service is not None:
            service.stop()
        if devices is not None:
            devices.close()
        server.stop()
        broker.stop()
    return sampler, devices


def collect(out: Outcome, calendar_log: Path, offset: int, journal: Path, log: Path) -> None:
    """Take the calendar requests, the journal's decisions and the log's failures."""
    out.calls = requests(calendar_log, offset)
    kept = Journal(journal, read_only=True)
    out.decided = Counter(f"{e.kind} {e.outcome}" for e in kept.entries())
    kept.close()
    lines = log.read_text(errors="replace").splitlines()
    out.troubles = sum(1 for line in lines if "failed" in line or "cannot" in line)
    for reason, count in DROPPED.findall("\n".join(lines)):  # logged at most once a minute
        out.dropped[reason] = max(out.dropped[reason], int(count))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--factor", type=float, default=300.0, help="day seconds per real second")
    parser.add_argument("--quiet-s", type=float, default=20.0, help="statuses only, before the day")
    parser.add_argument("--lead-s", type=float, default=60.0, help="booking to the day's start")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    building = load_building()
    zone = ZoneInfo(building.spec.timezone)
    day = datetime.now(zone).date()
    start = datetime.combine(day, clock_time(6, 30), zone)  # the simulated day (offsets only)
    people = make_people(building, day, args.seed)
    uses = plan_day(building, people, start, args.seed, GRACE_MIN)
    sends = day_sends(building, uses, start, args.seed)
    marks, out = Marks(), Outcome()
    with tempfile.TemporaryDirectory(prefix="rooms-load-bench-") as scratch:
        sampler, devices = run(args, Path(scratch), building, uses, sends, marks, out)
    report(args.factor, building, sends, devices.sent, sampler, marks, out)


def report(factor: float, building: Building, sends: list[Send], sent: Counter[str],
           sampler: Sampler, marks: Marks, out: Outcome) -> None:  # fmt: skip
    spec = building.spec
    print(f"rooms service load, the default building ({spec.site}): {len(bookable(building))} "
          f"rooms and booths, {len(building.areas)} areas + the refresh area, "
          f"{len(building.devices)} devices, {spec.staff} staff")  # fmt: skip
    print(f"  python {platform.python_version()} on {platform.machine()}, {_cpu()}")
    print(f"  day 06:30-21:30 (15 h) in {DAY_S / factor:.0f} s real (x{factor:g}): "
          f"{len(sends)} messages ({_counts(sent, ('occupancy', 'access', 'door'))}) "
          f"+ {sent['status']} statuses (every device every 30 s, real time); sent late at most "
          f"{out.late_s * 1000:.0f} ms")  # fmt: skip
    print(
        f"  bookings: {out.booked} put in Radicale before the day ({out.booking_s:.1f} s), "
        "their times compressed likewise"
    )
    samples = sampler.samples
    ready = min(samples, key=lambda s: abs(s[0] - marks.ready))
    print(f"  start-up: view ready {marks.ready - marks.spawned:.1f} s after spawn, "
          f"CPU {ready[1]:.2f} s, RSS {ready[2] / 2**20:.1f} MB")  # fmt: skip
    quiet = sampler.between(marks.quiet_from, marks.day_from)
    idle = (quiet[-1][1] - quiet[0][1]) / (quiet[-1][0] - quiet[0][0])
    print(f"  quiet spell before the day ({quiet[-1][0] - quiet[0][0]:.0f} s, statuses only): "
          f"CPU {idle * 100:.1f} %")  # fmt: skip
    during = sampler.between(marks.day_from, marks.ended)
    percent = [(b[1] - a[1]) / (b[0] - a[0]) * 100 for a, b in itertools.pairwise(during)]
    cut = statistics.quantiles(percent, n=100)
    rss = [s[2] / 2**20 for s in during]
    cpu, wall = during[-1][1] - during[0][1], during[-1][0] - during[0][0]
    print(f"  the day ({wall:.0f} s): CPU % each second median {statistics.median(percent):.1f}  "
          f"p95 {cut[94]:.1f}  max {max(percent):.1f}; RSS start {rss[0]:.1f} MB  median "
          f"{statistics.median(rss):.1f}  max {max(rss):.1f}")  # fmt: skip
    print(f"  CPU for the compressed day: {cpu:.1f} s; the process's whole run "
          f"{samples[-1][1]:.1f} s")  # fmt: skip
    messages = cpu - idle * wall
    low = messages + idle * DAY_S
    high = low + idle * len(sends)  # as if each message had a step of its own
    print(f"  estimate at real pace (not measured): {low:.0f}-{high:.0f} CPU s for the 15 h day: "
          f"the quiet rate x 54,000 s ({idle * DAY_S:.0f} s) + the day's messages "
          f"({messages:.1f} s, up to {messages + idle * len(sends):.0f} s if each wakes its own "
          f"step); {low / DAY_S * 100:.2f}-{high / DAY_S * 100:.2f} % of a core on average")  # fmt: skip
    print(f"  calendar requests by the service: {sum(out.calls.values())} "
          f"({_counts(out.calls, sorted(out.calls))}); journal: "
          f"{_counts(out.decided, sorted(out.decided)) or 'nothing decided'}; "
          f"exit {out.code}; failures in its log: {out.troubles}")  # fmt: skip
    print(f"  dropped by the service's feed (at least, as last logged): "
          f"{_counts(out.dropped, sorted(out.dropped)) or 'none'}")  # fmt: skip


def _counts(counter: Counter[str], keys: Iterable[str]) -> str:
    return ", ".join(f"{k} {counter[k]}" for k in keys)


def _cpu() -> str:
    lines = Path("/proc/cpuinfo").read_text().splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    return f"{os.cpu_count()} cores ({model})"


if __name__ == "__main__":
    main()
