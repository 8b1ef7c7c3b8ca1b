"""Positions digests: what a full one costs to build on the drain thread, and to judge and merge
on the agent's loop (where it holds taps up while it runs).

A device store with `--cards` own positions in one zone (its own crossings, recorded as the
agent records them); then, on a second device's store:

* build: the drain thread's query and JSON for that zone (`Digests.due`);
* judge: `judge_digest` on the payload (parse and every entry's checks);
* first merge: the whole digest into an empty store (a device restarted without its store),
  in one store transaction, as `PeerCrossings` merges a digest;
* repeat: the same digest again (every entry already known: no transaction).

Figures are printed, never asserted. On a Raspberry Pi expect several times these.

    python bench/positions_digest.py [--cards 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.core.antipassback import AntiPassbackTracker
from edge.core.clock import Instant
from edge.core.controller import DeviceState
from edge.core.outputs import EventKind, EventRecord
from edge.core.spec import AntiPassback, ZoneSpec
from edge.link.messages import InboundMessage
from edge.link.positions import Digests, judge_digest
from edge.peers import PeerCrossings
from edge.store import Store, outbox, state

ZONES = frozenset({"lobby", "staff-area"})
START = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def own_positions(path: Path, cards: int) -> None:
    """Record `cards` crossings into staff-area at gate-a, 100 per transaction."""
    with Store(path) as store:
        for first in range(0, cards, 100):
            records = [
                EventRecord(
                    EventKind.ACCESS,
                    "crossing",
                    START + timedelta(milliseconds=n),
                    {"card_ref": f"{n:064x}", "from_zone": "lobby", "to_zone": "staff-area"},
                )
                for n in range(first, min(first + 100, cards))
            ]
            with store.transaction() as db:
                outbox.append(db, "gate-a", records, True)
                state.apply(db, records, DeviceState(), DeviceState())


def timed(action: Callable[..., object], *args: object) -> tuple[float, object]:
    began = time.perf_counter()
    result = action(*args)
    return time.perf_counter() - began, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    zones = [ZoneSpec(z, anti_passback=AntiPassback.HARD) for z in sorted(ZONES)]
    now = Instant(0.0, START + timedelta(hours=1))
    figures: dict[str, list[float]] = {"build": [], "judge": [], "first merge": [], "repeat": []}
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "gate-a.db"
        own_positions(source, args.cards)
        with Store(source) as store:
            for round_ in range(args.rounds):
                digests = Digests("edge", "s", "gate-a", ZONES)
                elapsed, due = timed(digests.due, store.db, 0.0, "2026-12-01T01:00:00.000Z")
                figures["build"].append(elapsed)
                topic, body = next((t, b) for z, t, b in due if z == "staff-area")  # type: ignore[attr-defined]
                where = ("edge", "s", "gate-b")
                elapsed, verdict = timed(judge_digest, topic, body, True, where, ZONES, now.utc)
                figures["judge"].append(elapsed)
                assert isinstance(verdict, list)
                assert len(verdict) == args.cards
                with Store(Path(tmp) / f"gate-b-{round_}.db") as empty:
                    peers = PeerCrossings(
                        root="edge",
                        site="s",
                        device="gate-b",
                        zones=ZONES,
                        tracker=AntiPassbackTracker(zones),
                        store=empty,
                    )
                    message = InboundMessage(topic, body, True)
                    elapsed, _ = timed(peers.handle, message, now)
                    figures["first merge"].append(elapsed)
                    assert peers.applied == args.cards, peers
                    # A second on: a gate takes a sender's digest of a zone once a second.
                    later = Instant(now.mono + 1.0, now.utc)
                    elapsed, _ = timed(peers.handle, message, later)
                    figures["repeat"].append(elapsed)
    print(
        f"positions digest of {args.cards} cards ({len(body) / 1e6:.2f} MB), {args.rounds} rounds"
    )
    print(f"{platform.python_implementation()} {platform.python_version()} on {platform.machine()}")
    for name, values in figures.items():
        print(
            f"  {name:12s} median {statistics.median(values) * 1000:8.1f} ms  "
            f"max {max(values) * 1000:8.1f} ms"
        )


if __name__ == "__main__":
    main()
