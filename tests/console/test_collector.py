"""The collector against a private mosquitto: two collectors on one site store each event
once, and nothing is lost across a collector restart or a broker outage."""

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


def test_two_collectors_on_the_same_site_each_receive_every_event_and_store_it_once(
    tmp_path: Path, broker: Broker, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    path = tmp_path / "central.db"
    a = collectors(path, client_id="collector-a")
    b = collectors(path, client_id="collector-b")
    subscribed(a)
    subscribed(b)
    before = a.received, b.received

    publish_events(broker.port, {d: range(1, 501) for d in DEVICES})

    def all_in(collector: Collector) -> Callable[[CentralLog], bool]:
        return lambda log: collector.received - before[0 if collector is a else 1] >= 2000

    assert a.wait_for(all_in(a), 60), (a.received, b.received)
    assert b.wait_for(all_in(b), 60), (a.received, b.received)
    assert wait_any([a, b], holds(2000)), f"stored {a.log.count()} of 2000"
    assert_complete(a.log, 500)
    # Plain subscriptions: each has every event, the log keeps each once, whoever came first.
    assert a.received - before[0] == b.received - before[1] == 2000
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
    # At once, before paho has reconnected: the restored session holds the subscriptions.
    publish_events(broker.port, {d: range(51, 101) for d in DEVICES})
    resubscribed(collector, before)

    assert collector.wait_for(holds(400), 60), f"stored {collector.log.count()} of 400"
    assert_complete(collector.log, 100)


def test_events_published_while_the_collector_is_away_across_a_broker_restart_are_stored(
    tmp_path: Path, broker: Broker, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    path = tmp_path / "central.db"
    first = collectors(path)
    subscribed(first)
    first.close()  # its session, with its subscriptions, stays on the broker

    broker.stop()
    broker.start()
    publish_events(broker.port, {"gate-1": range(1, 11)})
    second = collectors(path)
    subscribed(second)
    publish_events(broker.port, {"gate-1": range(11, 21)})

    assert second.wait_for(lambda log: log.devices()["gate-1"]["max_seq"] == 20, 30)
    assert second.log.gaps() == {}
    assert second.log.count() == 20
