"""Tap-to-unlock latency through the whole agent, against the bare core in the same run.

A real agent (store on disk with synchronous=FULL, gpiozero MockFactory pins, a simulated
reader) handles N taps of enrolled cards; each is timed from the reader's tap to the moment
the loop has committed the event and driven the relay. The baseline is the core alone
(Controller.handle) on the same events. Also: credential lookup from SQLite at 1k / 100k /
1M cardholders against the in-memory store. Figures are printed, never asserted.

    python bench/agent.py [--taps 2000] [--sizes 1000 100000 1000000]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import platform
import random
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from gpiozero.pins.mock import MockFactory

from edge.app import build_agent
from edge.core.credentials import Credential, InMemoryCredentials
from edge.core.events import CardPresented, ContactChanged, Event
from edge.core.outputs import Output
from edge.core.policy import AccessPolicy, Rule
from edge.store import Store
from edge.store.credentials import SqliteCredentials
from edge.system import SystemClock
from firmware_config.loader import load_config
from simulator.pins import idle_inputs
from simulator.readers import SimCardReader

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.edge.agent_fixtures import KEY, enrol, felica, sim_config


def stats(samples: list[float]) -> str:
    ordered = sorted(samples)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return f"median {statistics.median(ordered):8.3f} ms  p95 {p(0.95):8.3f}  p99 {p(0.99):8.3f}"


def tap_latency(taps: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-agent-"))
    device = sim_config(tmp)
    enrol(device.store, range(taps + 10), ["gate-east"])
    config = load_config(device.config)
    factory = MockFactory()
    readers: dict[str, SimCardReader] = {}

    def reader_factory(cfg, referencer):  # type: ignore[no-untyped-def]
        readers[cfg.id] = SimCardReader(cfg.id, referencer, 0)
        return readers[cfg.id]

    agent, startup = build_agent(
        config,
        card_key=KEY,
        pin_factory=factory,
        clock=SystemClock(),
        reader_factory=reader_factory,
    )
    idle_inputs(factory, config)
    done = threading.Condition()
    finished: dict[int, float] = {}

    def processed(event: Event, outputs: list[Output]) -> None:
        if isinstance(event, CardPresented):
            with done:
                finished[id(event)] = time.perf_counter()
                done.notify_all()

    agent.on_processed.append(processed)
    agent.start(startup)
    loop = threading.Thread(target=agent.run, daemon=True)
    loop.start()
    whole, events = [], []
    reader = readers["gate-east-in"]
    for n in range(taps):
        start = time.perf_counter()
        event = reader.tap("felica", felica(n))
        assert event is not None
        with done:
            done.wait_for(lambda e=event: id(e) in finished, timeout=5)  # type: ignore[misc]
        whole.append((finished.pop(id(event)) - start) * 1000)
        events.append(event)
        # Walk through, so the door relocks and anti-passback stays quiet.
        agent.emit(ContactChanged("gate-east", True))
        agent.emit(ContactChanged("gate-east", False))
    agent.stop()
    loop.join()
    agent.close()

    # Baseline: the core alone, same events, fresh controller and in-memory credentials.
    agent2, _ = build_agent(
        config,
        card_key=KEY,
        pin_factory=MockFactory(),
        clock=SystemClock(),
        reader_factory=reader_factory,
    )
    core = agent2.controller
    clock = SystemClock()
    bare = []
    for event in events:
        start = time.perf_counter()
        core.handle(event, clock.now())
        bare.append((time.perf_counter() - start) * 1000)
        core.handle(ContactChanged("gate-east", True), clock.now())
        core.handle(ContactChanged("gate-east", False), clock.now())
    agent2.close()
    print(f"tap -> committed + relay driven, whole agent  {stats(whole)}")
    print(f"core alone (SQLite credentials, no commit)    {stats(bare)}")
    print(
        f"ratio of medians: {statistics.median(whole) / statistics.median(bare):.1f}x "
        f"(the difference is the fsync'd transaction and the queue hand-off)"
    )


def lookup_latency(sizes: list[int]) -> None:
    rng = random.Random(3)
    for n in sizes:
        tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
        refs = [
            hmac.new(KEY, f"felica:{i:016X}".encode(), hashlib.sha256).hexdigest() for i in range(n)
        ]
        creds = [Credential(r, frozenset({"staff"})) for r in refs]
        t0 = time.perf_counter()
        with Store(tmp / "agent.db") as store, store.transaction():
            SqliteCredentials(store.db).replace(
                AccessPolicy(rules=(Rule("staff", frozenset({"d"})),)), creds, {}
            )
        load_s = time.perf_counter() - t0
        size_mb = (tmp / "agent.db").stat().st_size / 1e6
        memory = InMemoryCredentials(creds)
        sample = [rng.choice(refs) for _ in range(20_000)]
        with Store(tmp / "agent.db") as store:
            sql = SqliteCredentials(store.db)
            t_sql = []
            for ref in sample:
                s = time.perf_counter()
                sql.find(ref)
                t_sql.append((time.perf_counter() - s) * 1000)
        t_mem = []
        for ref in sample:
            s = time.perf_counter()
            memory.find(ref)
            t_mem.append((time.perf_counter() - s) * 1000)
        print(
            f"{n:>9,} cards: SQLite find {stats(t_sql)} | in memory median "
            f"{statistics.median(t_mem) * 1000:.2f} µs | ratio {statistics.median(t_sql) / statistics.median(t_mem):.0f}x "
            f"| load {load_s:.1f} s, file {size_mb:.0f} MB"
        )
        del memory, creds, refs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taps", type=int, default=2000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    args = parser.parse_args()
    print(
        f"# {platform.machine()} Python {sys.version.split()[0]}, store in {tempfile.gettempdir()}"
    )
    tap_latency(args.taps)
    lookup_latency(args.sizes)
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
