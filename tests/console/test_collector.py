"""The collector against a private mosquitto: two collectors share the load, nothing is lost
across a collector restart or a broker outage, bad payloads are rejected and do no harm."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from console import alarms, refusals, rollcall
from console.collector import Collector
from console.log import CentralLog
from console.mqtt import ConsoleClient, Message
from edge.core.clock import utc_text
from edge.link import topics
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
    return provision(tmp_path / "site", gates=(*DEVICES, "probe"), sensors=("booth-3f",))


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


def test_a_topic_root_of_several_levels_is_collected(
    tmp_path: Path, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    root = "kamakura/edge"
    # A retained status under the root: once the collector has it, it has subscribed.
    publisher.publish(topics.status(root, SITE, "probe"), b'{"state":"online"}', retain=True)
    collector = collectors(tmp_path / "log.db", root=root)
    assert collector.wait_for(lambda log: probe_status_at(log) is not None, 10), "no status"
    for seq in (1, 2, 3):
        publisher.publish(topics.event(root, SITE, "gate-1", "access"), event("gate-1", seq))
    assert collector.wait_for(holds(3), 30), f"stored {collector.stored}"
    assert collector.rejected == 0


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
        (topic("gate-1"), event("gate-1", 11, {"reason": "\ud800"})),
        (topic("gate-1"), b'{"v": ' + b"[" * 5000 + b"]" * 5000 + b"}"),
        (f"edge/{SITE}/gate-1/occupancy/lobby", b'{"count": 9223372036854775808}'),
        (f"edge/{SITE}/gate-1/status", '{"state": "online"}'.encode("utf-16")),
    ],
    ids=[
        "id-not-matching-seq",
        "occupancy-count-not-a-number",
        "lone-surrogate",
        "nested-past-the-recursion-limit",
        "count-past-2^63",
        "status-not-utf-8",
    ],
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


# -- hostile devices ------------------------------------------------------------------------

UTF16_STATUS = '{"state": "online"}'.encode("utf-16")
HUGE_COUNT = b'{"count": 9223372036854775808, "occupied": true}'


def alarm(device: str, seq: int, type_: str = "door_forced") -> bytes:
    return event(device, seq, {"kind": "alarm", "type": type_, "state": "raised"})


def active_keys(log: CentralLog) -> set[str]:
    return {a.key for a in alarms.active(log)}


def test_retained_poison_is_refused_at_every_reconnect_and_honest_events_still_flow(
    tmp_path: Path, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    publisher.publish(f"edge/{SITE}/gate-2/status", UTF16_STATUS, retain=True)
    publisher.publish(f"edge/{SITE}/gate-2/occupancy/lobby", HUGE_COUNT, retain=True)
    path = tmp_path / "central.db"
    first = collectors(path)
    subscribed(first)
    for seq in range(1, 11):
        publisher.publish(topic("gate-1"), event("gate-1", seq))
    assert first.wait_for(holds(10), 10), f"stored {first.log.count()} of 10"
    assert first.rejected == 2
    first.close()
    for seq in range(11, 21):  # while it is away
        publisher.publish(topic("gate-1"), event("gate-1", seq))

    second = collectors(path)
    assert second.wait_for(holds(20), 10), f"stored {second.log.count()} of 20"
    assert second.wait_for(lambda _: second.rejected == 2, 10), second.rejected
    assert_complete(second.log, 20, devices=["gate-1"])
    assert "bad_messages:gate-2" in active_keys(second.log)
    kept = refusals.recent(second.log, "gate-2")
    assert {r["reason"] for r in kept} == {"not UTF-8 text", "a whole number is outside ±2^53"}
    assert all(len(str(r["digest"])) == 64 and r["size"] for r in kept)  # never the payload


def test_refused_messages_are_kept_aside_bounded_and_the_alarm_can_be_acknowledged(
    tmp_path: Path, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    collector = collectors(tmp_path / "central.db")
    subscribed(collector)
    for n in range(refusals.KEEP + 20):
        publisher.publish(topic("gate-2"), f"not json {n}".encode())
    assert collector.wait_for(lambda _: collector.rejected == refusals.KEEP + 20, 10)
    assert len(refusals.recent(collector.log, "gate-2", 1000)) == refusals.KEEP
    (total,) = refusals.totals(collector.log)
    assert total.total == refusals.KEEP + 20

    assert alarms.acknowledge(collector.log, "bad_messages:gate-2", "guard")
    assert "bad_messages:gate-2" not in active_keys(collector.log)
    publisher.publish(topic("gate-2"), b"[[[")
    assert collector.wait_for(lambda log: "bad_messages:gate-2" in active_keys(log), 10)


def flood(port: int, device: str, payloads: list[tuple[str, bytes]]) -> None:
    """Publish as fast as paho takes them (QoS 1, no wait per message), then wait for all."""
    client = ConsoleClient("127.0.0.1", port, client_id=f"flood-{device}", persistent=False)
    client.start()
    try:
        sent = [client.client.publish(where, payload, qos=1) for where, payload in payloads]
        for info in sent:
            info.wait_for_publish(60)
    finally:
        client.close()


def test_an_honest_alarm_is_stored_while_another_device_floods_with_poison(
    tmp_path: Path, broker: Broker, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    collector = collectors(tmp_path / "central.db", rate_per_s=2000, burst=2000)
    subscribed(collector)
    poison = [
        (topic("gate-2"), event("gate-2", 1, {"reason": "\ud800"})),
        (topic("gate-2"), b"[" * 5000 + b"]" * 5000),
        (topic("gate-2", "alarm"), event("gate-2", 2, {"kind": "alarm", "door": "gate-1"})),
        (f"edge/{SITE}/gate-2/occupancy/lobby", HUGE_COUNT),
        (f"edge/{SITE}/gate-2/status", UTF16_STATUS),
    ]
    payloads = [poison[n % len(poison)] for n in range(10_000)]
    with ThreadPoolExecutor(1) as pool:
        flooding = pool.submit(flood, broker.port, "gate-2", payloads)
        assert collector.wait_for(lambda _: collector.rejected >= 100, 30), "no flood seen"
        publisher.publish(topic("gate-1", "alarm"), alarm("gate-1", 1))
        published = time.monotonic()
        stored = collector.wait_for(lambda log: "gate-1:1" in active_keys(log), 10)
        delay = time.monotonic() - published
        flooding.result()
    assert stored, "the honest alarm never reached the log"
    assert collector.wait_for(lambda _: collector.received + collector.over_budget >= 10_002, 60)
    assert collector.rejected == 10_000, (collector.rejected, collector.over_budget)
    assert collector.log.count() == 1
    keys = active_keys(collector.log)
    assert {"bad_messages:gate-2", "device_claim_refused:gate-2"} <= keys, keys
    print(f"honest alarm stored {delay * 1000:.0f} ms after it was published, during the flood")


def crossing_event(seq: int, ts: str, to_zone: str, device: str = "gate-1") -> bytes:
    other = "lobby" if to_zone == "staff-area" else "staff-area"
    card = {"card_ref": "c" * 64, "type": "crossing", "ts": ts, "door": "gate-1"}
    return event(device, seq, {**card, "from_zone": other, "to_zone": to_zone})


def now_text(seconds: float = 0) -> str:
    return utc_text(datetime.now(UTC) + timedelta(seconds=seconds))


def test_a_booth_sensor_cannot_take_anyone_out_of_the_roll_call(
    tmp_path: Path, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    collector = collectors(tmp_path / "central.db")
    subscribed(collector)
    publisher.publish(topic("gate-1"), crossing_event(1, now_text(-60), "staff-area"))
    out = crossing_event(1, "9999-12-31T23:59:59.000Z", "lobby", device="booth-3f")
    publisher.publish(topic("booth-3f"), out)
    forced = event("booth-3f", 2, {"kind": "alarm", "type": "fire", "door": "gate-1"})
    publisher.publish(topic("booth-3f", "alarm"), forced)
    assert collector.wait_for(lambda _: collector.received >= 5, 10)
    assert [p.card_ref for p in rollcall.inside(collector.log)] == ["c" * 64]
    assert collector.log.count() == 1
    assert "device_claim_refused:booth-3f" in active_keys(collector.log)
    assert not [a for a in alarms.active(collector.log) if a.type == "fire"]


def test_a_device_time_far_ahead_is_ordered_by_the_consoles_receive_time_and_flagged(
    tmp_path: Path, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    collector = collectors(tmp_path / "central.db")
    subscribed(collector)
    year_9999 = "9999-12-31T23:59:59.000Z"
    publisher.publish(topic("gate-1"), crossing_event(1, now_text(-60), "staff-area"))
    publisher.publish(topic("gate-1"), crossing_event(2, year_9999, "lobby"))  # out, "forever"
    assert collector.wait_for(holds(2), 10)
    publisher.publish(topic("gate-1"), crossing_event(3, now_text(1), "staff-area"))  # in again
    assert collector.wait_for(holds(3), 10)

    assert [p.card_ref for p in rollcall.inside(collector.log)] == ["c" * 64]
    rows = collector.log.db.execute(
        "SELECT ts, ts_implausible, json_extract(body, '$.ts') FROM events WHERE seq = 2"
    ).fetchall()
    ((ts, flagged, sent),) = rows
    assert (flagged, sent) == (1, year_9999)  # the body as sent
    assert ts < now_text(1)  # ordered when it arrived
    assert collector.log.verify() == []


def test_a_backlog_with_old_times_keeps_its_own_order(
    tmp_path: Path, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    collector = collectors(tmp_path / "central.db")
    subscribed(collector)
    publisher.publish(topic("gate-1"), crossing_event(2, now_text(-3600), "lobby"))  # late
    publisher.publish(topic("gate-1"), crossing_event(1, now_text(-7200), "staff-area"))
    assert collector.wait_for(holds(2), 10)
    assert rollcall.inside(collector.log) == []
    flags = collector.log.db.execute("SELECT sum(ts_implausible) FROM events").fetchone()[0]
    assert flags == 0


def test_a_failure_of_the_database_itself_leaves_the_batch_unacknowledged(
    tmp_path: Path, site_dir: Path
) -> None:
    collector = Collector(
        tmp_path / "central.db", site_dir=site_dir, host="127.0.0.1", port=1, site=SITE
    )
    try:
        batch = [Message(topic("gate-1"), event("gate-1", 1), False, 1, 1)]
        collector.log.db.execute("PRAGMA query_only = ON")  # every write fails, as on a full disk
        with pytest.raises(sqlite3.OperationalError):
            collector._store(batch, {})  # escapes: the writer leaves the batch unacknowledged
        assert collector.rejected == 0  # and it is not refused as if the message were bad
        collector.log.db.execute("PRAGMA query_only = OFF")
        collector._store(batch, {})
        assert collector.log.count() == 1
    finally:
        collector.close()


def test_only_replies_someone_waits_for_are_kept(broker: Broker) -> None:
    reply_topic = f"edge/{SITE}/gate-1/reply/console"
    requester = ConsoleClient("127.0.0.1", broker.port, client_id="console", persistent=False)
    requester.listen_for_replies(f"edge/{SITE}/+/reply/console")
    requester.start()
    responder = ConsoleClient("127.0.0.1", broker.port, client_id="gate-1", persistent=False)

    def answer(message: Message) -> None:  # on paho's thread: publish without waiting
        for n in range(300):
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.CorrelationData = f"nobody-{n}".encode()
            responder.client.publish(reply_topic, b"x" * 1000, qos=1, properties=props)
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.CorrelationData = message.correlation
        responder.client.publish(reply_topic, b"the answer", qos=1, properties=props)

    responder.subscribe(f"edge/{SITE}/gate-1/cmd/#", handler=answer)
    responder.start()
    try:
        reply = requester.request(
            f"edge/{SITE}/gate-1/cmd/ping", b"{}", reply_topic, b"asked-1", timeout_s=10
        )
        assert reply == b"the answer"
        # The 300 unsolicited ones arrived first (one publisher, in order) and were dropped.
        assert requester._replies == {}
    finally:
        responder.close()
        requester.close()
