"""The whole agent: tap-to-relay latency, memory, disk writes and throughput, at scale.

For 1k, 100k and 1M cardholders held in the device's SQLite store (the agent never loads
them into RAM); the cards a run taps are enrolled by their real reference, the others by a
stand-in of the same shape (see `enrol`):

* tap -> relay: a simulated reader taps an enrolled card (the reader computes its scrypt
  card reference, as on a Pi); timed until the loop has
  committed the event (one fsync'd transaction, synchronous=FULL) and driven the relay.
  Baseline in the same run: the core alone on the same events (no commit, no queue).
* RSS: the agent as its own process (python -m simulator.agent), after 200 taps, in an
  environment holding only the agent's dependencies, as on a Pi (bench/agent_env.py).
* bytes written per event: the kernel's write_bytes for this process, divided by the
  events recorded (WAL writes and checkpoints included): what an SD card sees.
* sustained events/s into the outbox: a burst of door movements through the loop.
* SQLite credential lookup against an in-memory dict.

Figures are printed, never asserted.

    python bench/agent.py [--sizes 1000 100000 1000000] [--taps 1000]
"""

from __future__ import annotations

import argparse
import hashlib
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from gpiozero.pins.mock import MockFactory

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.agent_env import agent_python, modules_loaded
from edge.app import build_agent
from edge.cardref import card_references
from edge.core.credentials import Credential
from edge.core.events import CardPresented, ContactChanged, Event, Tick
from edge.core.outputs import Output
from edge.core.policy import AccessPolicy, Rule
from edge.runtime import Agent
from edge.store import Store, outbox
from edge.store.credentials import SqliteCredentials
from edge.system import SystemClock
from firmware_config.loader import load_config
from simulator.pins import idle_inputs
from simulator.process import AgentProcess
from simulator.readers import SimCardReader
from tests.edge.agent_fixtures import KEY, SimDevice, felica, sim_config


def pct(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return statistics.median(ordered), pick(0.95), pick(0.99)


def write_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def enrol(store_path: Path, n: int, tapped: set[int]) -> None:
    """Enrol n cards: real references for the cards the run taps, stand-ins for the rest.

    A reference costs about 0.7 ms here (scrypt), a few on a Pi; a million would outlast the
    run. The store only sees 64 hex digits either way, so the others get a SHA-256 of their
    number.
    """
    policy = AccessPolicy(version=1, rules=(Rule("staff", frozenset({"gate-east"})),))
    real = dict(
        zip(
            sorted(tapped),
            card_references(KEY, [("felica", felica(i)) for i in sorted(tapped)]),
            strict=True,
        )
    )
    cards = (
        Credential(
            real.get(i) or hashlib.sha256(b"stand-in %d" % i).hexdigest(), frozenset({"staff"})
        )
        for i in range(n)
    )
    with Store(store_path) as store, store.transaction():
        SqliteCredentials(store.db).replace(policy, cards, {})


class InProcess:
    """An agent looping on a thread, with a way to wait for a given event."""

    def __init__(self, device: SimDevice) -> None:
        config = load_config(device.config)
        factory = MockFactory()
        self.readers: dict[str, SimCardReader] = {}

        def reader_factory(cfg, referencer, card_keys):  # type: ignore[no-untyped-def]
            self.readers[cfg.id] = SimCardReader(cfg.id, referencer, 0)
            return self.readers[cfg.id]

        self.agent: Agent
        self.agent, startup = build_agent(
            config,
            card_key=KEY,
            pin_factory=factory,
            clock=SystemClock(),
            reader_factory=reader_factory,
        )
        idle_inputs(factory, config)
        self.cond = threading.Condition()
        self.done: dict[int, float] = {}
        self.watch: set[int] = set()
        self.agent.when_processed(self._processed)
        self.agent.start(startup)
        self.thread = threading.Thread(target=self.agent.run, daemon=True)
        self.thread.start()

    def _processed(self, event: Event, outputs: list[Output]) -> None:
        if isinstance(event, CardPresented) or id(event) in self.watch:
            with self.cond:
                self.done[id(event)] = time.perf_counter()
                self.cond.notify_all()

    def wait(self, event: Event) -> float:
        with self.cond:
            self.cond.wait_for(lambda: id(event) in self.done, timeout=30)
            self.watch.discard(id(event))
            return self.done.pop(id(event))

    def close(self) -> None:
        self.agent.stop()
        self.thread.join()
        self.agent.close()


def settle(running: InProcess) -> None:
    marker = Tick()
    running.watch.add(id(marker))
    running.agent.emit(marker)
    running.wait(marker)


def run_size(n: int, taps: int, rng: random.Random, python: str) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f"bench-agent-{n}-"))
    device = sim_config(tmp)
    cards = rng.sample(range(n), min(taps, n))
    rss_cards = rng.sample(range(n), min(200, n))
    t0 = time.perf_counter()
    enrol(device.store, n, {*cards, *rss_cards})
    enrol_s = time.perf_counter() - t0

    running = InProcess(device)
    reader = running.readers["gate-east-in"]
    whole, events = [], []
    written_before = write_bytes()
    seq_before = outbox.last_seq(running.agent.store.db)
    for card in cards:
        start = time.perf_counter()
        event = reader.tap("felica", felica(card))
        assert event is not None
        whole.append((running.wait(event) - start) * 1000)
        events.append(event)
        running.agent.emit(ContactChanged("gate-east", True))
        running.agent.emit(ContactChanged("gate-east", False))
        settle(running)  # people arrive seconds apart: each tap finds the loop idle
    settle(running)
    seq_after = outbox.last_seq(running.agent.store.db)
    per_event = (write_bytes() - written_before) / max(1, seq_after - seq_before)

    burst = 20_000
    start = time.perf_counter()
    for i in range(burst):
        running.agent.emit(ContactChanged("gate-east", i % 2 == 0))
    marker = Tick()
    running.watch.add(id(marker))
    running.agent.emit(marker)
    running.wait(marker)
    rate = burst / (time.perf_counter() - start)
    running.agent.stop()
    running.thread.join()
    core = running.agent.controller
    clock = SystemClock()
    bare = []
    for event in events:  # the same taps again, through the core alone
        s = time.perf_counter()
        core.handle(event, clock.now())
        bare.append((time.perf_counter() - s) * 1000)
    running.agent.close()

    proc = AgentProcess(device.config, tmp, python=python)
    for card in rss_cards:
        proc.request(op="tap", reader="gate-east-out", technology="felica", id=felica(card))
    status = Path(f"/proc/{proc.proc.pid}/status").read_text()
    rss = {
        k: int(v.split()[0]) / 1024
        for k, v in (line.split(":", 1) for line in status.splitlines())
        if k in ("VmRSS", "VmHWM")
    }
    proc.terminate()
    db_mb = device.store.stat().st_size / 1e6

    w50, w95, w99 = pct(whole)
    b50, _, b99 = pct(bare)
    print(
        f"{n:>9,} | tap->relay p50 {w50:6.3f} p95 {w95:6.3f} p99 {w99:6.3f} ms | core alone p50 {b50:6.3f} p99 {b99:6.3f} ms "
        f"| ratio {w50 / b50:5.1f}x | RSS {rss['VmRSS']:5.1f} MB (peak {rss['VmHWM']:5.1f}) | {per_event:6.0f} B written/event "
        f"| {rate:7.0f} events/s | store {db_mb:5.0f} MB, enrol {enrol_s:5.1f} s",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--taps", type=int, default=1000)
    args = parser.parse_args()
    print(
        f"# {platform.machine()} Python {sys.version.split()[0]}, store in {tempfile.gettempdir()}, {args.taps} taps per size"
    )
    python = agent_python()
    extra = {"numpy", "matplotlib", "fastapi", "rich"} & set(
        modules_loaded(python, "simulator.agent")
    )
    print(
        f"# agent process: {python} (the agent's dependencies only; also loaded: {sorted(extra) or 'nothing else'})"
    )
    rng = random.Random(5)
    for n in args.sizes:
        run_size(n, args.taps, rng, python)


if __name__ == "__main__":
    main()
