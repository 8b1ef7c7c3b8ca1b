"""How long the console takes to add up a zone's head count on a year of log.

A year of a four-gate line (PEOPLE people, in and out each day, in only today, half of the exits
by another gate, a few by the exit button) and each gate's 03:00 forgiveness are written
straight into a central log (rows as the collector stores them, hashes left out: the count
reads none). Then: the occupancy page's zones (the staff area since this morning's
forgiveness; the lobby, which is forgiven never, over the whole year), the staff area alone,
and the staff area over the whole year; each the median of RUNS, warm cache.

    .venv/bin/python bench/console_headcount.py [--people 1000] [--days 365]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path[0] = str(Path(__file__).resolve().parents[1])  # the project, not bench/console.py

from console import headcount  # noqa: E402
from console.log import CentralLog  # noqa: E402

GATES = ("gate-1f-east", "gate-1f-west", "gate-2f-north", "gate-b1-south")
RUNS = 7


def fill(log: CentralLog, people: int, days: int) -> int:
    """Write the year's events; return how many."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    seqs = dict.fromkeys(GATES, 0)
    rows: list[tuple[object, ...]] = []

    def add(device: str, ts: datetime, kind: str, type_: str, body: dict[str, object]) -> None:
        seqs[device] += 1
        seq = seqs[device]
        text = ts.strftime("%Y-%m-%dT%H:%M:%S.000Z")
        full = {"v": 1, "id": f"{device}:{seq}", "seq": seq, "ts": text, "kind": kind,
                "type": type_, "device": device, **body}  # fmt: skip
        rows.append((f"{device}:{seq}", device, seq, text, kind, type_, body.get("door"),
                     body.get("card_ref"), json.dumps(full), text, "-", 2))  # fmt: skip

    for day in range(days):
        base = start + timedelta(days=day)
        for gate in GATES:  # 03:00 JST is 18:00 UTC the day before
            add(gate, base - timedelta(hours=6), "system", "anti_passback_forgiven",
                {"zone": "staff-area", "local_date": base.date().isoformat()})  # fmt: skip
        for person in range(people):
            ref = f"{person:064x}"
            gate_in, gate_out = GATES[person % 4], GATES[(person // 2) % 4]
            arrive = base + timedelta(minutes=person % 90)
            leave = base + timedelta(hours=9, minutes=person % 120)
            add(gate_in, arrive, "access", "crossing", {"door": gate_in, "card_ref": ref,
                "from_zone": "lobby", "to_zone": "staff-area"})  # fmt: skip
            if day == days - 1:
                continue  # today: everyone is in (the count should be PEOPLE)
            if person % 50 == 0:
                add(gate_out, leave, "access", "button_exit", {"door": gate_out,
                    "from_zone": "staff-area", "to_zone": "lobby"})  # fmt: skip
            else:
                add(gate_out, leave, "access", "crossing", {"door": gate_out, "card_ref": ref,
                    "from_zone": "staff-area", "to_zone": "lobby"})  # fmt: skip
        if len(rows) > 50_000 or day == days - 1:
            with log.transaction() as conn:
                conn.executemany(
                    "INSERT INTO events (id, device, seq, ts, kind, type, door, card_ref, body, "
                    "received_at, hash, scheme) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    rows,
                )
            rows.clear()
    return sum(seqs.values())


def timed(what: str, call: object) -> None:
    times = []
    for _ in range(RUNS):
        began = time.perf_counter()
        result = call()  # type: ignore[operator]
        times.append(time.perf_counter() - began)
    print(f"{what}: median {statistics.median(times) * 1000:.1f} ms  ({result})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = CentralLog(Path(tmp) / "log.db")
        began = time.perf_counter()
        total = fill(log, args.people, args.days)
        print(f"{total} events written in {time.perf_counter() - began:.0f} s")
        timed("occupancy page (staff-area since today's forgiveness, lobby over the year)",
              lambda: {z: c.count for z, c in headcount.occupancy(log).items()})  # fmt: skip
        timed("staff-area since this morning's forgiveness (baseline looked up too)",
              lambda: headcount.head_count(log, "staff-area"))  # fmt: skip
        whole = headcount.Baseline(None, 0, "log")
        timed("staff-area over the whole year (no baseline)",
              lambda: headcount.head_count(log, "staff-area", whole))  # fmt: skip
        log.close()


if __name__ == "__main__":
    main()
