"""The alarms page's `gaps()` on both stores: holes found in SQL against every seq fetched.

A site of --devices gates, each with --seqs events and one hole near its start (as after a
lost message the device never resent), goes into an SQLite log and a PostgreSQL log (a
private cluster this bench starts). Then `CentralLog.gaps()` (holes found in SQL, only the
gaps returned) and the baseline measured in the same run (every seq after a device's first
hole fetched and walked in Python) run --repeats times each, interleaved: median, p95 and
p99 per store and the ratio baseline/gaps(). Figures are printed, never asserted.

    python bench/log_gaps.py [--devices 20] [--seqs 20000] [--repeats 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from console.log import CentralLog, open_log
from simulator.postgres import PostgresCluster

SITE = "hall"


def baseline(log: CentralLog, limit: int = 1000) -> dict[str, list[int]]:
    """Every seq after the first hole, walked in Python (what gaps() did before)."""
    missing: dict[str, list[int]] = {}
    for device, contiguous in log.db.execute(
        "SELECT device, contiguous FROM devices WHERE contiguous < max_seq"
    ).fetchall():
        holes: list[int] = []
        expected = contiguous + 1
        for (seq,) in log.db.execute(
            "SELECT seq FROM events WHERE device = ? AND seq > ? ORDER BY seq",
            [device, contiguous],
        ):
            while expected < seq and len(holes) < limit:
                holes.append(expected)
                expected += 1
            if len(holes) >= limit:
                break
            expected = seq + 1
        missing[device] = holes
    return missing


def fill(log: CentralLog, devices: int, seqs: int) -> None:
    for number in range(devices):
        device = f"gate-{number}"
        batch = [
            {"id": f"{device}:{seq}", "seq": seq, "ts": "2026-11-02T08:00:00.000Z"}
            | {"kind": "access", "type": "granted"}
            for seq in range(1, seqs + 1)
            if seq != 3  # the hole near the start
        ]
        for start in range(0, len(batch), 5000):
            log.append(batch[start : start + 5000], "2026-11-02T08:00:00.000Z", site=SITE)


def figures(times: list[float]) -> str:
    ordered = sorted(times)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"median {statistics.median(ordered) * 1000:8.2f} ms  p95 {pick(0.95) * 1000:8.2f} ms  "
        f"p99 {pick(0.99) * 1000:8.2f} ms"
    )


def measure(name: str, log: CentralLog, repeats: int) -> None:
    new: list[float] = []
    old: list[float] = []
    for _ in range(repeats):
        started = time.perf_counter()
        found = log.gaps(site=SITE)
        new.append(time.perf_counter() - started)
        started = time.perf_counter()
        expected = baseline(log)
        old.append(time.perf_counter() - started)
    assert found == expected, "gaps() and the baseline disagree"
    print(f"{name:>10} gaps():   {figures(new)}")
    print(f"{name:>10} baseline: {figures(old)}")
    print(
        f"{name:>10} ratio baseline/gaps() (median): {statistics.median(old) / statistics.median(new):.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--seqs", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-gaps-"))
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="bench-gaps-pg-")))
    cluster.start()
    try:
        for name, target in (("sqlite", str(workdir / "log.db")), ("postgresql", cluster.url)):
            log = open_log(target)
            fill(log, args.devices, args.seqs)
            log.db.execute("ANALYZE")
            measure(name, log, args.repeats)
            log.close()
    finally:
        cluster.remove()


if __name__ == "__main__":
    main()
