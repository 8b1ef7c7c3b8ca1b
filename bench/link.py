"""The MQTT link against a private mosquitto: drain rate, replay, revocation and alarm latency.

* drain: a 100k-event backlog published by the link (QoS 1, PUBACK-gated deletes from
  SQLite), against a bare paho QoS 1 publisher loop with the same window, same run.
* replay: time to deliver a large buffered backlog (default 1M events) after an outage.
* revocation: publish a signed snapshot revoking a card -> the next tap is denied (p50/p95).
* alarm: a door forced open (GPIO edge) -> a subscriber receives door_forced (p50/p95).

Figures are printed, never asserted.  python bench/link.py [--drain 100000] [--replay 1000000]
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import platform
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.core.outputs import EventKind, EventRecord
from edge.link import topics
from edge.link.mqtt import MqttLink
from edge.store import Store, outbox
from firmware_config.model import MqttConfig
from tests.broker import Broker, Subscriber
from tests.edge.agent_fixtures import enrol, felica, sim_config
from tests.edge.link.test_remote import snapshot
from tests.edge.sim_process import AgentProcess

SITE, DEVICE = "kamakura-city-hall", "gate-1f-east"
WINDOW = 100


def pct(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"p50 {statistics.median(ordered):7.1f} ms  p95 {p95:7.1f} ms  max {ordered[-1]:7.1f} ms  (n={len(ordered)})"


def fill(store_path: Path, n: int) -> None:
    records = [
        EventRecord(
            EventKind.ACCESS,
            "granted",
            datetime.now(UTC),
            {
                "card_ref": "a" * 64,
                "door": "gate-east",
                "reader": "gate-east-in",
                "reason": "granted",
            },
        )
        for _ in range(10_000)
    ]
    with Store(store_path) as store:
        for start in range(0, n, 10_000):
            with store.transaction() as db:
                outbox.append(db, "gate-1f-east", records[: min(10_000, n - start)], True)


def link_drain(broker: Broker, n: int) -> float:
    tmp = Path(tempfile.mkdtemp(prefix="bench-link-"))
    store_path = tmp / "agent.db"
    Store(store_path).close()
    fill(store_path, n)
    link = MqttLink(
        MqttConfig(host="127.0.0.1", port=broker.port),
        site="kamakura-city-hall",
        device="gate-1f-east",
        store_path=store_path,
        status=lambda conn, state: {"state": state},
        on_message=lambda m: None,
        window=WINDOW,
    )
    start = time.perf_counter()
    link.start()
    while link.acknowledged < n:
        time.sleep(0.01)  # measuring: poll the counter
    elapsed = time.perf_counter() - start
    link.close()
    with sqlite3.connect(store_path) as conn:
        assert conn.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0
    return n / elapsed


def bare_paho(broker: Broker, n: int) -> float:
    done = threading.Event()
    window = threading.Semaphore(WINDOW)  # at most WINDOW in flight, like the link (and
    acked = 0  # paho's 16-bit message ids must not wrap while still queued)

    def on_publish(
        client: object, userdata: object, mid: int, reason: object, props: object
    ) -> None:
        nonlocal acked
        acked += 1
        window.release()
        if acked == n:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bare", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(WINDOW)
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    payload = json.dumps(
        {"v": 1, "id": "gate-1f-east:1", "card_ref": "a" * 64, "kind": "access", "type": "granted"}
    )
    topic = topics.event(topics.DEFAULT_ROOT, SITE, DEVICE, "access")
    start = time.perf_counter()
    for _ in range(n):
        window.acquire()
        client.publish(topic, payload, qos=1)
    done.wait(600)
    elapsed = time.perf_counter() - start
    client.loop_stop()
    client.disconnect()
    return n / elapsed


def latencies(broker: Broker, rounds: int) -> tuple[list[float], list[float]]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    device = sim_config(tmp, broker_port=broker.port)
    device.config.write_text(
        device.config.read_text().replace('kind = "sim"', 'kind = "sim"\ndebounce_s = 0.0')
    )
    enrol(device.store, range(rounds + 2), ["gate-east"])
    publisher = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="provisioning", protocol=mqtt.MQTTv5
    )
    publisher.connect("127.0.0.1", broker.port)
    publisher.loop_start()
    alarms = Subscriber(
        broker.port, topics.event(topics.DEFAULT_ROOT, SITE, DEVICE, "alarm"), client_id="alarms"
    )
    agent = AgentProcess(device, tmp)
    online = Subscriber(
        broker.port, topics.status(topics.DEFAULT_ROOT, SITE, DEVICE), client_id="online"
    )
    online.wait_for(lambda ms: any(b'"online"' in m.payload for m in ms), what="online")
    revocation, alarm = [], []
    for r in range(rounds):
        data = snapshot(100 + r, range(r + 1, rounds + 2), lost=range(r, r + 1))
        start = time.perf_counter()
        publisher.publish(
            topics.credentials(topics.DEFAULT_ROOT, SITE, DEVICE), data, qos=1, retain=True
        )
        while (
            agent.request(op="tap", reader="gate-east-out", technology="felica", id=felica(r))[
                "reason"
            ]
            != "revoked"
        ):
            pass
        revocation.append((time.perf_counter() - start) * 1000)
    while agent.request(op="relay", door="gate-east")["unlocked"]:
        time.sleep(0.1)  # the taps before each revocation unlocked the gate: wait for the relock
    for _ in range(rounds):
        before = len(alarms.messages)
        start = time.perf_counter()
        agent.request(op="pin", pin=27, high=True)  # the gate is forced open
        alarms.wait_for(
            lambda ms, b=before: any(
                b"door_forced" in m.payload and b"raised" in m.payload for m in ms[b:]
            ),
            what="door_forced",
        )
        alarm.append((time.perf_counter() - start) * 1000)
        agent.request(op="pin", pin=27, high=False)
    agent.terminate()
    publisher.loop_stop()
    alarms.close()
    online.close()
    return revocation, alarm


def main() -> None:
    faulthandler.dump_traceback_later(1200, exit=True)  # a hung run says where, then exits
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drain", type=int, default=100_000)
    parser.add_argument("--replay", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-broker-"))
    broker = Broker(work)
    broker.start()
    print(
        f"# {platform.machine()} Python {sys.version.split()[0]}, mosquitto on loopback, window {WINDOW}"
    )
    try:
        bare = bare_paho(broker, args.drain)
        ours = link_drain(broker, args.drain)
        print(
            f"drain {args.drain:,} events: link {ours:8.0f} events/s | bare paho QoS 1 {bare:8.0f} events/s | ratio {ours / bare:.2f}"
        )
        if args.replay:
            rate = link_drain(broker, args.replay)
            print(
                f"replay {args.replay:,} buffered events: {args.replay / rate:6.1f} s ({rate:.0f} events/s)"
            )
        revocation, alarm = latencies(broker, args.rounds)
        print(f"revocation: snapshot published -> next tap denied   {pct(revocation)}")
        print(f"door forced -> subscriber has the alarm             {pct(alarm)}")
    finally:
        broker.stop()


if __name__ == "__main__":
    main()
