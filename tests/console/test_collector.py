"""The collector against a private mosquitto: two collectors share the load, nothing is lost
across a collector restart or a broker outage, bad payloads are rejected and do no harm."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from console.collector import Collector
from console.log import CentralLog
from console.mqtt import ConsoleClient
from tests.broker import Broker, start_broker
from tests.console.test_claims import provision
from tests.console.test_log import event as event_body

SITE = "test-hall"
DEVICES = ("gate-1", "gate-2", "door-3f", "door-4f")


def event(device: str, seq: int, changes: dict[str, Any] | None = None) -> bytes:
    return json.dumps(event_body(device, seq, changes)).encode()


def topic(device: str, kind: str = "access") -> str:
    return f"edge/{SITE}/{device}/events/{kind}"


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_broker(tmp_path / "broker")
    yield b
    b.stop()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[ConsoleClient]:
    """A device-like publisher; each publish waits for the broker's PUBACK."""
    client = ConsoleClient("127.0.0.1", broker.port, client_id="publisher", persistent=False)
    client.start()
    # Retained probes. A collector subscribes to events, then status, then occupancy, and the
    # broker handles one client's packets in order: one that has both probes has all three
    # subscriptions; a new status_at for the probe says it has subscribed again.
    client.publish(f"edge/{SITE}/probe/status", b'{"state":"online"}', retain=True)
    client.publish(f"edge/{SITE}/probe/occupancy/lobby", b'{"count":0}', retain=True)
    yield client
    client.close()


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """The provisioning site directory: every test device is a provisioned gate."""
    return provision(tmp_path / "site", gates=(*DEVICES, "probe"))


@pytest.fixture
def collectors(broker: Broker, site_dir: Path) -> Iterator[Callable[..., Collector]]:
    """Make collectors on the test's broker; every one is closed at the end."""
    made: list[Collector] = []

    def make(
        log_path: Path,
        client_id: str = "collector-a",
        group: str | None = None,
        **options: Any,
    ) -> Collector:
        collector = Collector(
            log_path,
            site_dir=site_dir,
            host="127.0.0.1",
            port=broker.port,
            site=SITE,
            client_id=client_id,
            group=group,
            **options,
        )
        made.append(collector)
        collector.start()
        return collector

    yield make
    for collector in made:
        collector.close()


def subscribed(collector: Collector) -> None:
    """Wait until a new collector has both retained probes, so its subscriptions are in place."""
    assert collector.wait_for(lambda _: collector.received >= 2, 10), "never subscribed"


def probe_status_at(log: CentralLog) -> str | None:
    probe = log.devices().get("probe")
    return None if probe is None else str(probe["status_at"])


def publish_events(port: int, plan: dict[str, Iterable[int]]) -> None:
    """Publish each device's events from its own connection, the devices in parallel."""

    def one_device(device: str, seqs: Iterable[int]) -> None:
        client = ConsoleClient("127.0.0.1", port, client_id=f"pub-{device}", persistent=False)
        client.start()
        try:
            for seq in seqs:
                client.publish(topic(device), event(device, seq))
        finally:
            client.close()

    with ThreadPoolExecutor(len(plan)) as pool:
        for done in [pool.submit(one_device, d, s) for d, s in plan.items()]:
            done.result()  # a failed publish fails the test here


def wait_any(collectors: Iterable[Collector], predicate: Callable[[CentralLog], bool]) -> bool:
    """Wait up to 60 s until `predicate` holds on the log the collectors share.

    A collector's `wait_for` wakes on its own batches only, and the last batch may be the
    other's: take turns, each turn a condition wait with a short timeout.
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(c.wait_for(predicate, 0.05) for c in collectors):
            return True
    return False


def resubscribed(collector: Collector, before: str | None) -> None:
    """Wait until the collector has subscribed again: the broker resent the retained status."""
    ok = collector.wait_for(lambda log: probe_status_at(log) not in (None, before), 30)
    assert ok, "the collector never came back"


def holds(n: int) -> Callable[[CentralLog], bool]:
    return lambda log: log.count() >= n


def assert_complete(log: CentralLog, per_device: int, devices: Iterable[str] = DEVICES) -> None:
    assert log.count() == per_device * len(tuple(devices))
    assert log.gaps() == {}
    known = log.devices()
    for device in devices:
        assert known[device]["contiguous"] == known[device]["max_seq"] == per_device, device
    ids = [e.id for e in log.entries()]
    assert len(ids) == len(set(ids))
    assert log.verify() == []


def test_two_collectors_share_the_load_and_store_each_event_once(
    tmp_path: Path, broker: Broker, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    path = tmp_path / "central.db"
    a = collectors(path, client_id="collector-a", group="console")
    b = collectors(path, client_id="collector-b", group="console")
    subscribed(a)
    subscribed(b)
    before = a.received, b.received

    publish_events(broker.port, {d: range(1, 501) for d in DEVICES})

    def all_stored(log: CentralLog) -> bool:
        return log.count() >= 2000 and a.stored + b.stored >= 2000

    assert wait_any([a, b], all_stored), f"stored {a.log.count()} of 2000"
    assert_complete(a.log, 500)
    share_a, share_b = a.received - before[0], b.received - before[1]
    assert share_a > 0, "collector-a received no event: the subscription is not shared"
    assert share_b > 0, "collector-b received no event: the subscription is not shared"
    # Not shared, each would receive all 2,000; on a steady connection nothing is resent.
    assert share_a + share_b == 2000, (share_a, share_b)
    assert a.stored + b.stored == 2000
    assert a.rejected == b.rejected == 0


def test_a_restarted_collector_gets_what_was_published_while_it_was_down(
    tmp_path: Path, broker: Broker, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    path = tmp_path / "central.db"
    first = collectors(path, client_id="collector-a")
    subscribed(first)
    first.close()

    publish_events(broker.port, {d: range(1, 126) for d in DEVICES})  # 500 while it is down

    second = collectors(path, client_id="collector-a")
    assert second.wait_for(holds(500), 60), f"stored {second.log.count()} of 500"
    assert_complete(second.log, 125)
    assert first.received == 2  # only the probes: the 500 waited in the session


def test_events_published_after_a_broker_outage_are_stored(
    tmp_path: Path, broker: Broker, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    collector = collectors(tmp_path / "central.db")
    subscribed(collector)
    publish_events(broker.port, {d: range(1, 51) for d in DEVICES})
    assert collector.wait_for(holds(200), 30), f"stored {collector.log.count()} of 200"
    before = probe_status_at(collector.log)

    broker.stop()  # SIGTERM: mosquitto saves the collector's persistent session
    broker.start()  # same port; paho reconnects the collector on its own (1-5 s backoff)
    resubscribed(collector, before)  # not earlier: see the xfail test below
    publish_events(broker.port, {d: range(51, 101) for d in DEVICES})

    assert collector.wait_for(holds(400), 60), f"stored {collector.log.count()} of 400"
    assert_complete(collector.log, 100)


def test_events_published_while_the_collector_is_away_across_a_broker_restart_are_stored(
    tmp_path: Path, broker: Broker, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    path = tmp_path / "central.db"
    first = collectors(path)
    subscribed(first)
    first.close()  # its session, with the shared subscription, stays on the broker

    broker.stop()
    broker.start()
    publish_events(broker.port, {"gate-1": range(1, 11)})
    second = collectors(path)
    subscribed(second)
    publish_events(broker.port, {"gate-1": range(11, 21)})

    assert second.wait_for(lambda log: log.devices()["gate-1"]["max_seq"] == 20, 30)
    assert second.log.gaps() == {}
    assert second.log.count() == 20


def test_bad_payloads_are_rejected_and_later_events_still_stored(
    tmp_path: Path, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    collector = collectors(tmp_path / "central.db")
    subscribed(collector)
    bad = [
        (topic("gate-1"), b"not json {"),
        (topic("gate-1"), b"\xff\xfe\x00garbage"),
        (topic("gate-1"), b"[1, 2, 3]"),  # JSON, but not an event object
        (topic("gate-1"), event("gate-2", 1)),  # names another device than the topic
        (topic("gate-1"), event("gate-1", 0)),  # seq must be positive
    ]
    for where, payload in bad:
        publisher.publish(where, payload)
    for seq in range(1, 11):
        publisher.publish(topic("gate-1"), event("gate-1", seq))

    # One publisher, one collector: the bad ones, published first, were handled first.
    assert collector.wait_for(holds(10), 30), f"stored {collector.log.count()} of 10"
    assert collector.rejected == len(bad)
    assert_complete(collector.log, 10, devices=["gate-1"])
    assert "gate-2" not in collector.log.devices()


@pytest.mark.parametrize(
    ("where", "poison"),
    [
        (topic("gate-1"), event("gate-1", 7, {"id": "gate-1:6"})),
        (f"edge/{SITE}/gate-1/occupancy/lobby", b'{"count": "many", "occupied": true}'),
    ],
    ids=["id-not-matching-seq", "occupancy-count-not-a-number"],
)
def test_one_bad_payload_does_not_take_its_batch_with_it(
    tmp_path: Path,
    broker: Broker,
    publisher: ConsoleClient,
    collectors: Callable[..., Collector],
    where: str,
    poison: bytes,
) -> None:
    path = tmp_path / "central.db"
    first = collectors(path)
    subscribed(first)
    first.close()
    # While it is down, so that all of them reach the restarted collector in one batch.
    for seq in range(1, 6):
        publisher.publish(topic("gate-1"), event("gate-1", seq))
    publisher.publish(where, poison)
    for seq in range(6, 11):
        publisher.publish(topic("gate-1"), event("gate-1", seq))

    second = collectors(path)

    # Once fixed this takes milliseconds; today the batch is lost and this times out.
    assert second.wait_for(holds(10), 5), f"stored {second.log.count()} of 10"
    assert second.rejected == 1
