"""The collector against a private mosquitto: two collectors share the load, and nothing is
lost across a collector restart or a broker outage."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from console.collector import Collector
from console.log import CentralLog
from console.mqtt import ConsoleClient
from edge.link import topics
from tests.broker import Broker
from tests.console.collector_fixtures import (
    DEVICES,
    SITE,
    assert_complete,
    event,
    holds,
    probe_status_at,
    publish_events,
    resubscribed,
    subscribed,
    wait_any,
)


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
