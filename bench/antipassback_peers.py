"""Anti-passback shared by a zone: how fast a crossing reaches the other gates, and whether
peer traffic slows a gate's own decisions.

A private mosquitto on loopback and four gates (the same agent code as on a Pi: store, loop,
MQTT link, simulated pins), each serving lobby and staff-area:

* propagation: a card crosses at gate A (the door's contact opens after a grant); timed from
  the moment A's loop has committed the crossing to the moment each other gate's loop has
  merged it into its store and tracker.
* decisions: tap -> decided and committed at gate D, alone in this process, with no peer
  traffic and with another process publishing peers' crossings on D's zones at `--rate` a
  second, in alternating rounds of the same run. Ratio = no-traffic / with-traffic (1.0: no
  slowdown; goal >= 0.95).

The four gates share this process (and its GIL) in the first part: the propagation figure
includes that. Figures are printed, never asserted.

    python bench/antipassback_peers.py [--crossings 300] [--taps 400] [--rate 200]
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from gpiozero.pins.mock import MockFactory
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.app import build_agent
from edge.cardref import card_references
from edge.connection import build_connection
from edge.core.clock import utc_text
from edge.core.events import CardPresented, ContactChanged, Event, Tick
from edge.core.outputs import Output
from edge.inbox import Item
from edge.link.messages import InboundMessage
from edge.link.mqtt import MqttLink
from edge.runtime import Agent
from edge.system import SystemClock
from firmware_config.loader import load_config
from simulator.broker import Broker
from simulator.pins import idle_inputs
from simulator.readers import SimCardReader
from tests.edge.agent_fixtures import KEY, enrol, felica, sim_config

SITE = "kamakura-city-hall"
GATES = ("gate-a", "gate-b", "gate-c", "gate-d")
PACE_S = 0.02


def pct(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return statistics.median(ordered), pick(0.95), pick(0.99)


class Gate:
    """One agent looping on a thread with its MQTT link; notes when events are processed."""

    def __init__(self, home: Path, gate: str, port: int, cards: int) -> None:
        home.mkdir()
        device = sim_config(home, broker_port=port)
        text = device.config.read_text(encoding="utf-8")
        device.config.write_text(text.replace('id = "gate-1f-east"', f'id = "{gate}"', 1))
        enrol(device.store, range(cards), ["gate-east"])
        config = load_config(device.config)
        factory = MockFactory()
        self.link, connection = build_connection(config, lambda: True)
        self.agent: Agent
        self.agent, startup = build_agent(
            config,
            card_key=KEY,
            pin_factory=factory,
            clock=SystemClock(),
            reader_factory=lambda cfg, ref, keys: SimCardReader(cfg.id, ref, 0),
            connection=connection,
        )
        idle_inputs(factory, config)
        self.cond = threading.Condition()
        # card_ref -> {crossing id: when this loop merged it} (each crossing comes on two zones)
        self.applied: dict[str, dict[str, float]] = {}
        self.merged = 0
        self.done: dict[int, float] = {}
        self.watch: set[int] = set()
        self.agent.when_processed(self._processed)
        self.agent.start(startup)
        assert isinstance(self.link, MqttLink)
        self.link.start()
        self.thread = threading.Thread(target=self.agent.run, daemon=True)
        self.thread.start()

    def _processed(self, event: Item, outputs: list[Output]) -> None:
        now = time.perf_counter()
        with self.cond:
            if isinstance(event, InboundMessage) and "/crossings/" in event.topic:
                body = json.loads(event.payload)
                self.applied.setdefault(body["card_ref"], {}).setdefault(body["id"], now)
                self.merged += 1
            elif id(event) in self.watch:
                self.done[id(event)] = now
            self.cond.notify_all()

    def run(self, event: Event) -> float:
        """Queue an event; return when the loop has committed and performed it."""
        with self.cond:
            self.watch.add(id(event))
        self.agent.emit(event)
        with self.cond:
            if not self.cond.wait_for(lambda: id(event) in self.done, timeout=30):
                raise TimeoutError(f"{event} not processed")
            self.watch.discard(id(event))
            return self.done.pop(id(event))

    def wait_applied(self, card_ref: str, count: int) -> float:
        """Return when the `count`-th crossing of the card was merged here."""
        seen = lambda: len(self.applied.get(card_ref, {})) >= count  # noqa: E731
        with self.cond:
            if not self.cond.wait_for(seen, timeout=30):
                raise TimeoutError(f"crossing {count} of a card never arrived")
            return sorted(self.applied[card_ref].values())[count - 1]

    def close(self) -> None:
        self.agent.stop()
        self.thread.join()
        assert self.link is not None
        self.link.close()
        self.agent.close()


def flood(port: int, rate: float, seconds: float) -> None:
    """Publish peers' crossings on staff-area and lobby at `rate` a second (a subprocess)."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="flood", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    start, sent = time.perf_counter(), 0
    while (elapsed := time.perf_counter() - start) < seconds:
        if sent > elapsed * rate:
            time.sleep(0.001)  # pacing the generator, not waiting for a result
            continue
        sent += 1
        peer = GATES[sent % 3]
        zone = "staff-area" if sent % 2 else "lobby"
        body = {
            "v": 1,
            "id": f"{peer}:{sent}",
            "device": peer,
            "seq": sent,
            "card_ref": f"{sent % 5000:064x}",
            "from_zone": "lobby" if zone == "staff-area" else "staff-area",
            "to_zone": zone,
            "ts": utc_text(datetime.now(UTC)),
            "clock_synced": True,
        }
        client.publish(f"edge/{SITE}/{peer}/crossings/{zone}", json.dumps(body), qos=1)
    client.loop_stop()
    client.disconnect()


def propagation(gates: dict[str, Gate], refs: list[str], crossings: int) -> None:
    a = gates["gate-a"]
    delays: dict[str, list[float]] = {g: [] for g in GATES[1:]}
    counts: dict[str, int] = {}
    for i in range(crossings):
        card = refs[i % len(refs)]
        # Every card in, then every card out, and so on: hard anti-passback never refuses.
        reader = "gate-east-in" if (i // len(refs)) % 2 == 0 else "gate-east-out"
        a.run(CardPresented(reader, card))
        committed = a.run(ContactChanged("gate-east", True))  # the crossing, committed
        a.run(ContactChanged("gate-east", False))
        counts[card] = counts.get(card, 0) + 1
        for gate, samples in delays.items():
            samples.append((gates[gate].wait_applied(card, counts[card]) - committed) * 1000)
    every = [s for samples in delays.values() for s in samples]
    p50, p95, p99 = pct(every)
    print(f"crossing at gate A -> merged at B, C, D ({crossings} crossings x 3 gates)")
    print(f"  p50 {p50:.2f} ms   p95 {p95:.2f} ms   p99 {p99:.2f} ms   max {max(every):.2f} ms")


def decisions(gate: Gate, refs: list[str], taps: int, port: int, rate: float) -> None:
    quiet: list[float] = []
    busy: list[float] = []
    rounds = 4
    per_round = max(1, taps // (2 * rounds))
    for r in range(2 * rounds):
        flooding = r % 2 == 1
        proc = None
        if flooding:
            seconds = per_round * (PACE_S + 0.01) + 10
            proc = subprocess.Popen(  # this script, no shell
                [sys.executable, __file__, "--flood", str(port), str(rate), str(seconds)]
            )
            merged = gate.merged
            with gate.cond:  # the flood is flowing once the first peer crossings are merged
                gate.cond.wait_for(lambda m=merged: gate.merged > m + 10, timeout=30)
        for i in range(per_round):
            card = refs[(r * per_round + i) % len(refs)]
            start = time.perf_counter()
            # Alternate in and out so the hard zone never refuses: a decision either way.
            reader = "gate-east-in" if i % 2 == 0 else "gate-east-out"
            done = gate.run(CardPresented(reader, card))
            (busy if flooding else quiet).append((done - start) * 1000)
            gate.run(Tick())
            time.sleep(PACE_S)  # people arrive apart; the peers' crossings flow meanwhile
        if proc is not None:
            proc.terminate()
            proc.wait(30)
    q50, q95, q99 = pct(quiet)
    b50, b95, b99 = pct(busy)
    print(f"decision at gate D: tap -> decided and committed ({len(quiet)} + {len(busy)} taps)")
    print(f"  no peer traffic       p50 {q50:.2f} ms   p95 {q95:.2f} ms   p99 {q99:.2f} ms")
    print(f"  {rate:.0f} crossings/s     p50 {b50:.2f} ms   p95 {b95:.2f} ms   p99 {b99:.2f} ms")
    print(f"  ratio (no traffic / with traffic): p50 {q50 / b50:.3f}   p99 {q99 / b99:.3f}")
    print(f"  peer crossings merged at D meanwhile: {gate.merged}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crossings", type=int, default=300)
    parser.add_argument("--taps", type=int, default=400)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--flood", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.flood:
        flood(int(args.flood[0]), float(args.flood[1]), float(args.flood[2]))
        return
    print(f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    tmp = Path(tempfile.mkdtemp(prefix="bench-antipassback-"))
    broker = Broker(tmp / "broker")
    broker.start()
    refs = card_references(KEY, [("felica", felica(n)) for n in range(50)])
    gates: dict[str, Gate] = {}
    try:
        for gate in GATES:
            gates[gate] = Gate(tmp / gate, gate, broker.port, 50)
        for gate in gates.values():
            if not gate.link or not gate.link.connected.wait(10):
                raise RuntimeError("a gate did not connect")
        propagation(gates, refs, args.crossings)
        for name in GATES[:3]:
            gates.pop(name).close()
        decisions(gates["gate-d"], refs, args.taps, broker.port, args.rate)
    finally:
        for gate in gates.values():
            gate.close()
        broker.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
