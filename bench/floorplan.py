"""The floor view's cost: drawing every floor of a building as SVG, and its size.

A building of `--floors` floors, each with `--rooms` rooms and booths (every status, three
bookings each) and six department areas: the time to draw the whole building (what `/` and the
console's occupancy page do at each reload), and the bytes of SVG and of the view's JSON (what
the service publishes retained). Figures are printed, never asserted.

    python bench/floorplan.py [--floors 8] [--rooms 25] [--repeat 200]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rooms import floorplan
from rooms.view import AreaView, BuildingView, RoomView, Slot

STATUSES = ("free", "booked", "in-use", "in-use-unbooked", "released", "unknown")
KINDS = ("meeting-room", "focus-booth", "phone-booth")


def building(floors: int, rooms: int) -> BuildingView:
    """Return a building with every status on every floor."""
    at = datetime(2030, 6, 3, 1, tzinfo=UTC)
    slots = tuple(
        Slot(start=at + timedelta(hours=h), end=at + timedelta(hours=h + 1)) for h in range(3)
    )
    return BuildingView(
        site="bench",
        name="ベンチ庁舎",
        at=at,
        rooms=tuple(
            RoomView(
                zone=f"room-{f}-{i}",
                name=f"会議室{f}-{i}",
                kind=KINDS[i % 3],
                floor=f,
                status=STATUSES[i % 6],
                occupied=None,
                next=slots,
            )
            for f in range(1, floors + 1)
            for i in range(rooms)
        ),
        areas=tuple(
            AreaView(id=f"area-{f}-{i}", name=f"課{i}", floor=f, occupied=i, zones=10)
            for f in range(1, floors + 1)
            for i in range(6)
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--floors", type=int, default=8)
    parser.add_argument("--rooms", type=int, default=25)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    view = building(args.floors, args.rooms)
    zone = ZoneInfo("Asia/Tokyo")
    took = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        svg = [floorplan.render(view, f, zone) for f in view.floors()]
        took.append((time.perf_counter() - start) * 1000)
    took.sort()
    cuts = statistics.quantiles(took, n=100)
    print(f"{platform.machine()} Python {platform.python_version()}")
    print(
        f"{args.floors} floors, {len(view.rooms)} rooms and booths, {len(view.areas)} areas: "
        f"whole building drawn in median {statistics.median(took):.2f} ms, "
        f"p95 {cuts[94]:.2f} ms, p99 {cuts[98]:.2f} ms"
    )
    print(
        f"SVG {sum(len(s) for s in svg):,} bytes; view JSON {len(view.model_dump_json()):,} bytes"
    )


if __name__ == "__main__":
    main()
