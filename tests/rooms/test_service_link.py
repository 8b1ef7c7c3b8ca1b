"""The rooms link on a real mosquitto: what it reads, and a callback failure it survives."""

from __future__ import annotations

import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.link import topics
from rooms.inbox import MAX_PAYLOAD_BYTES, Inbound, Inbox, Item, LinkState
from rooms.mqtt import RoomsLink, RoomsLinkError, subscriptions
from simulator.broker import free_port
from simulator.clock import FakeClock
from tests.broker import start_broker
from tests.rooms.service_site import MEETING, NODE, ROOT, SITE, occupancy, service_config

T0 = datetime(2031, 4, 1, 1, 0, tzinfo=UTC)


class FailingOnce(Inbox):
    """An inbox whose first `put` of a message raises, as a bug in a handler would."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def put(self, item: Item) -> None:
        if isinstance(item, Inbound) and not self.failed:
            self.failed = True
            raise RuntimeError("a bug in the handler")
        super().put(item)


def publish(port: int, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="publisher", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.disconnect()
    client.loop_stop()


def wait_for(inbox: Inbox, want: int) -> list[Item]:
    got: list[Item] = []
    done = threading.Event()
    timer = threading.Timer(10, done.set)
    timer.start()
    try:
        while len([i for i in got if isinstance(i, Inbound)]) < want and not done.is_set():
            inbox.wait(0.2)
            got += inbox.drain()
    finally:
        timer.cancel()
    return got


@pytest.mark.services
def test_an_exception_in_a_callback_does_not_stop_the_link(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = start_broker(tmp_path / "broker")
    config = service_config(tmp_path, port=broker.port)
    inbox = FailingOnce()
    link = RoomsLink(config, "secret", inbox, clock=FakeClock(T0))
    try:
        link.start()
        topic = topics.occupancy(ROOT, SITE, NODE, MEETING)
        for _ in range(3):
            publish(broker.port, topic, occupancy(MEETING, True).payload)
        got = wait_for(inbox, 2)
        inbound = [i.topic for i in got if isinstance(i, Inbound)]
        assert len(inbound) >= 2  # QoS 1: at least once
        assert set(inbound) == {topic}
        assert {i.at for i in got if isinstance(i, Inbound)} == {T0}  # stamped on arrival
        assert LinkState(up=True, at=T0) in got
        assert link.callback_errors == 1
        assert link.connected
        assert len([r for r in caplog.records if "on_message failed" in r.getMessage()]) == 1
    finally:
        link.close()
        link.close()
        broker.stop()


@pytest.mark.services
def test_an_oversized_message_is_cut_on_arrival(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "broker")
    config = service_config(tmp_path, port=broker.port)
    inbox = Inbox()
    link = RoomsLink(config, "secret", inbox, clock=FakeClock(T0))
    try:
        link.start()
        topic = topics.occupancy(ROOT, SITE, NODE, MEETING)
        publish(broker.port, topic, b" " * (MAX_PAYLOAD_BYTES + 1))
        found = [i for i in wait_for(inbox, 2) if isinstance(i, Inbound) and i.topic == topic]
        got = found[0]
        assert (got.topic, got.payload, got.oversized) == (topic, b"", True)
    finally:
        link.close()
        broker.stop()


def test_closing_a_link_that_cannot_say_offline_does_not_raise(tmp_path: Path) -> None:
    link = RoomsLink(service_config(tmp_path), "secret", Inbox(), clock=FakeClock(T0))
    link._connected.set()  # it believes it is connected; paho has no connection to send on
    link.close()
    assert not link.connected


def test_no_broker_is_a_clear_error(tmp_path: Path) -> None:
    config = service_config(tmp_path, port=free_port())
    link = RoomsLink(config, "secret", Inbox(), clock=FakeClock(T0))
    with pytest.raises(RoomsLinkError, match="is it running"):
        link.start(timeout_s=2)
    link.close()


def test_it_reads_only_the_devices_topics_it_needs(tmp_path: Path) -> None:
    config = service_config(tmp_path, homeassistant={"enabled": True})
    assert subscriptions(config) == [
        f"{ROOT}/{SITE}/+/status",
        f"{ROOT}/{SITE}/+/occupancy/#",
        f"{ROOT}/{SITE}/+/events/access",
        f"{ROOT}/{SITE}/+/events/door",
        "homeassistant/status",
    ]


@pytest.mark.services
def test_the_link_sends_each_packet_at_once(tmp_path: Path) -> None:
    broker = start_broker(tmp_path / "broker")
    config = service_config(tmp_path, port=broker.port)
    link = RoomsLink(config, "secret", Inbox(), clock=FakeClock(T0))
    try:
        link.start()
        sock = link.client.socket()
        assert sock is not None
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        link.close()
        broker.stop()
