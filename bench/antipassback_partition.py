"""Reconciliation after a busy gate of the security line was cut off from its peers.

A private mosquitto on loopback and four gates (the agent's own code: store, loop, MQTT
link, simulated pins) serving lobby and staff-area; gate D reaches the broker through a
`NetCut`, a TCP forwarder that really drops its connection. While D is cut off, a morning
rush crosses the line: `--at-d` people enter by D and `--elsewhere` by A, B and C (a
10-minute partition of the busiest gate at the default building's rush is about 600 at D
and 600 at the others; the crossings are replayed as fast as the gates decide, since only
their number matters once the path heals). Then the path heals, and the clock runs:

* reconnect: heal -> D's link is up again (paho's reconnect backoff, up to 30 s);
* D's backlog: reconnect -> every crossing D made while cut off merged at A, B and C;
* D relearns: reconnect -> every crossing of A, B and C that D missed merged at D (from
  their retained positions digests).

Figures are printed, never asserted.

    python bench/antipassback_partition.py [--at-d 600] [--elsewhere 600] [--runs 3]
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from antipassback_peers import GATES, Gate

from edge.cardref import card_references
from edge.core.events import CardPresented, ContactChanged
from edge.core.outputs import Output
from edge.inbox import Item
from edge.link.messages import InboundMessage
from simulator.broker import Broker
from simulator.netcut import NetCut
from tests.edge.agent_fixtures import KEY, felica


class Learned:
    """Watches gate D's loop: when has it merged a position for every card in `refs`?"""

    def __init__(self, gate: Gate, refs: list[str]) -> None:
        self.gate = gate
        self.refs = refs
        self.done_at: float | None = None
        self.cond = threading.Condition()
        self.remove = gate.agent.when_processed(self._processed)

    def _processed(self, event: Item, outputs: list[Output]) -> None:
        if self.done_at is not None or not isinstance(event, InboundMessage):
            return
        passback = self.gate.agent.controller.passback  # on the loop's own thread
        if all(passback.position(r) == "staff-area" for r in self.refs):
            with self.cond:
                self.done_at = time.perf_counter()
                self.cond.notify_all()

    def wait(self, timeout: float) -> float:
        with self.cond:
            if not self.cond.wait_for(lambda: self.done_at is not None, timeout):
                raise TimeoutError("gate D never learned every crossing it missed")
            assert self.done_at is not None
            return self.done_at


def cross_in(gate: Gate, card: str) -> None:
    gate.run(CardPresented("gate-east-in", card))
    gate.run(ContactChanged("gate-east", True))
    gate.run(ContactChanged("gate-east", False))


def one_run(tmp: Path, at_d: int, elsewhere: int) -> tuple[float, float, float]:
    broker = Broker(tmp / "broker")
    broker.start()
    refs = card_references(KEY, [("felica", felica(n)) for n in range(at_d + elsewhere)])
    gates: dict[str, Gate] = {}
    cut = NetCut(broker.port)
    try:
        for name in GATES:
            port = cut.port if name == "gate-d" else broker.port
            gates[name] = Gate(tmp / name, name, port, at_d + elsewhere)
        for gate in gates.values():
            if not gate.link or not gate.link.connected.wait(10):
                raise RuntimeError("a gate did not connect")
        d = gates["gate-d"]
        assert d.link is not None
        cut.cut()
        deadline = time.monotonic() + 10
        while d.link.connected.is_set() and time.monotonic() < deadline:
            d.link.connected.wait(0)  # paho notices the reset within its network loop
            time.sleep(0.01)  # polling a flag set by paho's thread, in a benchmark
        mine, theirs = refs[:at_d], refs[at_d:]
        for card in mine:
            cross_in(d, card)
        for i, card in enumerate(theirs):
            cross_in(gates[GATES[i % 3]], card)
        learned = Learned(d, theirs)
        healed = time.perf_counter()
        cut.heal()
        if not d.link.connected.wait(60):
            raise RuntimeError("gate D did not reconnect")
        up = time.perf_counter()
        backlog = max(gates[g].wait_applied(card, 1) for g in GATES[:3] for card in mine)
        relearned = learned.wait(120)
        learned.remove()
        return up - healed, backlog - up, relearned - up
    finally:
        for gate in gates.values():
            gate.close()
        cut.close()
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--at-d", type=int, default=600)
    parser.add_argument("--elsewhere", type=int, default=600)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}, {platform.machine()}")
    results = []
    for run in range(args.runs):
        tmp = Path(tempfile.mkdtemp(prefix="bench-partition-"))
        try:
            results.append(one_run(tmp, args.at_d, args.elsewhere))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        up, backlog, relearned = results[-1]
        print(
            f"run {run + 1}: reconnect {up:.2f} s   D's backlog at A, B, C {backlog:.2f} s   "
            f"D relearns {relearned:.2f} s"
        )
    for name, index in (("reconnect", 0), ("D's backlog", 1), ("D relearns", 2)):
        values = [r[index] for r in results]
        print(
            f"{name:>12}: median {statistics.median(values):.2f} s  (min {min(values):.2f}, max {max(values):.2f})"
        )
    print(f"({args.at_d} crossings at D and {args.elsewhere} at A, B, C while D was cut off)")


if __name__ == "__main__":
    main()
