"""Collector ingest with 1 % hostile messages mixed in, against clean ingest, same broker.

Each round publishes N messages (default 20,000) from 10 provisioned gates into a waiting
collector session, then starts the collector and times it until every message is judged
(stored or refused). Clean rounds carry honest events only; hostile rounds replace every
100th message with poison from a provisioned but compromised gate: a lone surrogate, JSON
nested past the recursion limit, a count past 2^63, a UTF-16 status, a claim on another
gate's door, an unknown device, not JSON. Same broker, same counts, rounds alternating.

Figures are printed, never asserted.  python bench/console_hostile.py [--events 20000]
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.collector import Collector
from console.mqtt import ConsoleClient
from edge.core.clock import utc_text
from edge.link import topics
from simulator.broker import Broker
from tests.console.test_claims import provision
from tests.console.test_log import event

SITE = "bench-hostile"
GATES = tuple(f"gate-{d:02d}" for d in range(10))
HOSTILE = "gate-evil"
WINDOW = 100


def poison(n: int) -> tuple[str, bytes]:
    """Return the n-th hostile message (topic, payload), cycling through the kinds."""
    access = topics.event(topics.DEFAULT_ROOT, SITE, HOSTILE, "access")
    unknown = topics.event(topics.DEFAULT_ROOT, SITE, "gate-unknown", "access")
    kinds: list[tuple[str, str | bytes]] = [
        (access, json.dumps(event(HOSTILE, n + 1, {"reason": "\ud800"}))),
        (access, "[" * 5000 + "]" * 5000),
        (
            topics.occupancy(topics.DEFAULT_ROOT, SITE, HOSTILE, "lobby"),
            '{"count": 9223372036854775808, "occupied": true}',
        ),
        (
            topics.status(topics.DEFAULT_ROOT, SITE, HOSTILE),
            '{"state": "online"}'.encode("utf-16"),
        ),
        (access, json.dumps(event(HOSTILE, n + 1, {"door": "gate-00"}))),
        (unknown, json.dumps(event("gate-unknown", n + 1))),
        (access, "not json {"),
    ]
    topic, payload = kinds[n % len(kinds)]
    return topic, payload if isinstance(payload, bytes) else payload.encode()


def plan(n: int, hostile: bool) -> list[tuple[str, bytes]]:
    """Return n messages: honest events round-robin over the gates, every 100th poison."""
    seqs = dict.fromkeys(GATES, 0)
    ts = utc_text(datetime.now(UTC))
    out: list[tuple[str, bytes]] = []
    for i in range(n):
        if hostile and i % 100 == 99:
            out.append(poison(i // 100))
            continue
        gate = GATES[i % len(GATES)]
        seqs[gate] += 1
        body = event(gate, seqs[gate], {"ts": ts})
        out.append(
            (topics.event(topics.DEFAULT_ROOT, SITE, gate, "access"), json.dumps(body).encode())
        )
    return out


def publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    """Publish QoS 1 with at most WINDOW unacknowledged, then wait for every PUBACK."""
    client = ConsoleClient("127.0.0.1", port, client_id="bench-publisher", persistent=False)
    client.client.max_inflight_messages_set(WINDOW)
    free = threading.Semaphore(WINDOW)
    client.client.on_publish = lambda *_: free.release()
    client.start()
    sent = []
    for topic, payload in messages:
        free.acquire()
        sent.append(client.client.publish(topic, payload, qos=1))
    for info in sent:
        info.wait_for_publish(60)
    client.close()


def one_round(
    broker: Broker, work: Path, site_dir: Path, name: str, n: int, hostile: bool
) -> float:
    """Return the seconds a collector takes to judge n messages waiting in its session."""
    options = {"site_dir": site_dir, "host": "127.0.0.1", "port": broker.port, "site": SITE}
    log_path = work / f"{name}.db"
    first = Collector(log_path, client_id=name, **options)  # type: ignore[arg-type]
    first.start()
    first.wait_for(lambda _: first.received >= 1, 10)  # the retained probe: subscribed
    first.close()
    publish(broker.port, plan(n, hostile))
    second = Collector(log_path, client_id=name, **options)  # type: ignore[arg-type]
    began = time.perf_counter()
    second.start()
    done = second.wait_for(lambda _: second.received + second.over_budget >= n + 1, 600)
    elapsed = time.perf_counter() - began
    stored, rejected = second.stored, second.rejected
    second.close()
    if not done:
        print(f"  {name}: only {second.received} of {n + 1} after 600 s")
    expected = n // 100 if hostile else 0
    if rejected != expected or stored != n - expected:
        print(f"  {name}: stored {stored}, refused {rejected} (expected {expected})")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    site_dir = provision(work / "site", gates=(*GATES, HOSTILE, "probe"), site=SITE)
    broker = Broker(work / "broker")
    broker.start()
    probe = ConsoleClient("127.0.0.1", broker.port, client_id="bench-probe", persistent=False)
    probe.start()
    probe.publish(
        topics.status(topics.DEFAULT_ROOT, SITE, "probe"), b'{"state":"online"}', retain=True
    )
    probe.close()
    times: dict[str, list[float]] = {"clean": [], "hostile": []}
    try:
        for r in range(args.rounds):
            for mode in ("clean", "hostile"):
                elapsed = one_round(
                    broker, work, site_dir, f"{mode}-{r}", args.events, mode == "hostile"
                )
                times[mode].append(elapsed)
    finally:
        broker.stop()
    print(f"# {platform.machine()} Python {sys.version.split()[0]}, mosquitto on loopback")
    print(f"# {args.events:,} messages a round, {args.rounds} rounds each, alternating")
    rates = {}
    for mode, values in times.items():
        ordered = sorted(values)
        p95 = ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)]
        rates[mode] = args.events / statistics.median(ordered)
        print(
            f"{mode:<8} round median {statistics.median(ordered) * 1000:7.0f} ms  "
            f"p95 {p95 * 1000:7.0f} ms  ->  {rates[mode]:7.0f} msg/s median, "
            f"{args.events / p95:7.0f} msg/s at p95"
        )
    print(f"hostile / clean (medians): {rates['hostile'] / rates['clean']:.2f}  (goal >= 0.9)")


if __name__ == "__main__":
    main()
