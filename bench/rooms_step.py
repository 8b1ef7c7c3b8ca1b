"""The rooms service's step: what one step costs for a whole building, in process.

A building of `--rooms` rooms and booths (each with `--bookings` bookings that day) and
`--areas` department areas of six islands, one sensor node per floor. Each step takes a
status from every node and `--changes` occupancy changes, reads the in-memory calendar when
`poll_s` has passed, runs the engine, builds the view and publishes what changed (to a
recorder). Prints median, p95 and p99 of a step; never asserted.

    python bench/rooms_step.py [--rooms 200] [--areas 30] [--steps 600]
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.core.clock import utc_text
from edge.link import topics
from edge.link.payloads import OccupancyPayload, StatusPayload
from rooms.bookings import Booking
from rooms.config import RoomSettings, ServiceConfig
from rooms.inbox import Inbound, Inbox, LinkState
from rooms.service import Service
from simulator.clock import FakeClock

SITE, ROOT = "bench", "edge"
START = datetime(2030, 6, 3, 0, tzinfo=UTC)  # 09:00 in Tokyo


class Recorder:
    connected = True

    def __init__(self) -> None:
        self.sent = 0

    def start(self, timeout_s: float = 10.0) -> None:
        """Nothing to connect."""

    def publish(self, topic: str, payload: str, *, retain: bool = True) -> None:
        self.sent += 1

    def close(self) -> None:
        """Nothing to close."""


class Calendar:
    def __init__(self, items: dict[str, list[Booking]]) -> None:
        self.items = items

    def bookings(
        self, rooms: Sequence[RoomSettings], start: datetime, end: datetime
    ) -> dict[str, list[Booking]]:
        return {r.zone: self.items.get(r.zone, []) for r in rooms}

    def check_in(self, room: RoomSettings, booking: Booking, at: datetime) -> None:
        """Accepted."""

    def release(self, room: RoomSettings, booking: Booking, reason: str) -> None:
        """Accepted."""

    def book(self, room: RoomSettings, start: datetime, end: datetime, title: str) -> Booking:
        return Booking("cal", room.zone, f"adhoc-{start.timestamp()}", start, end, ad_hoc=True)

    def close(self) -> None:
        """Nothing to close."""


def node(floor: int) -> str:
    return f"sensors-{floor}f"


def config(tmp: Path, rooms: int, areas: int) -> ServiceConfig:
    (tmp / "pw").write_text("x")
    data: dict[str, Any] = {
        "site": SITE,
        "name": "Bench",
        "state_path": str(tmp / "rooms.db"),
        "mqtt": {"password_file": str(tmp / "pw")},
        "homeassistant": {"enabled": True},
        "calendars": [
            {"kind": "caldav", "id": "cal", "url": "http://127.0.0.1/", "username": "u",
             "password_file": str(tmp / "pw")}
        ],
        "rooms": [
            {"zone": f"room-{i}", "name": f"Room {i}", "kind": "focus-booth" if i % 2 else
             "meeting-room", "floor": 1 + i % 10, "device": node(1 + i % 10), "calendar": "cal",
             "resource": f"/r/{i}/", "ad_hoc": True}
            for i in range(rooms)
        ],
        "areas": [
            {"id": f"area-{a}", "name": f"Area {a}", "floor": 1 + a % 10, "device": node(1 + a % 10),
             "zones": [f"island-{a}-{z}" for z in range(6)]}
            for a in range(areas)
        ],
    }  # fmt: skip
    return ServiceConfig.model_validate(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rooms", type=int, default=200)
    parser.add_argument("--areas", type=int, default=30)
    parser.add_argument("--bookings", type=int, default=6)
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory() as tmp:
        settings = config(Path(tmp), args.rooms, args.areas)
        items = {
            r.zone: [
                Booking("cal", r.zone, f"{r.zone}-{b}", START + timedelta(hours=b * 1.5),
                        START + timedelta(hours=b * 1.5 + 1))
                for b in range(args.bookings)
            ]
            for r in settings.rooms
        }  # fmt: skip
        clock, inbox = FakeClock(START), Inbox()
        service = Service(
            settings, clock=clock, link=Recorder(), inbox=inbox, adapters={"cal": Calendar(items)}
        )
        zones = [(r.zone, r.device) for r in settings.rooms] + [
            (z, a.device) for a in settings.areas for z in a.zones
        ]
        inbox.put(LinkState(up=True))
        times = []
        for _ in range(args.steps):
            at = clock.advance(30).utc
            for floor in range(1, 11):
                body = StatusPayload(device=node(floor), site=SITE, state="online", ts=utc_text(at))
                inbox.put(
                    Inbound(topics.status(ROOT, SITE, node(floor)), body.model_dump_json().encode())
                )
            for zone, device in rng.sample(zones, args.changes):
                reading = OccupancyPayload(
                    v=1,
                    device=device,
                    zone=zone,
                    ts=utc_text(at),
                    count=None,
                    occupied=rng.random() < 0.4,
                    capacity=None,
                )
                inbox.put(
                    Inbound(
                        topics.occupancy(ROOT, SITE, device, zone),
                        reading.model_dump_json().encode(),
                    )
                )
            began = time.perf_counter()
            service.step(at)
            times.append((time.perf_counter() - began) * 1000)
        service.close()  # fmt: skip
    times.sort()
    cut = statistics.quantiles(times, n=100)
    print(f"rooms service step: {args.rooms} rooms, {args.areas} areas x 6 islands, "
          f"{args.changes} changes + 10 statuses a step, {args.steps} steps (30 s apart)")  # fmt: skip
    print(f"  median {statistics.median(times):.2f} ms  p95 {cut[94]:.2f} ms  p99 {cut[98]:.2f} ms")
    print(f"  python {platform.python_version()} on {platform.machine()}")


if __name__ == "__main__":
    main()
