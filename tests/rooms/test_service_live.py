"""The rooms service end to end: a real mosquitto, devices' real payloads, a stepped clock.

The calendar is an in-memory BookingAdapter (each real adapter is tested against its own
server or stand-in); everything else is the service as `edge-rooms run` builds it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.link import topics
from rooms.service import Service, build_service
from simulator.clock import FakeClock
from tests.broker import Subscriber, start_broker
from tests.rooms.service_site import (
    BOOTH,
    MEETING,
    NODE,
    ROOT,
    SITE,
    MemoryCalendar,
    occupancy,
    service_config,
    status,
    will,
)

pytestmark = pytest.mark.services

T0 = datetime(2031, 4, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
MIN = timedelta(minutes=1)
STEP_S = 30  # the agent republishes its status every 30 s; the service steps as often


class Node:
    """A sensor node's MQTT side: retained status with a last will, retained occupancy."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.client = self._connect()

    def _connect(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=NODE, protocol=mqtt.MQTTv5)
        client.will_set(topics.status(ROOT, SITE, NODE), will().payload, qos=1, retain=True)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        return client

    def send(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)

    def online(self) -> None:
        message = status()
        self.send(message.topic, message.payload)

    def occupied(self, zone: str, occupied: bool) -> None:
        message = occupancy(zone, occupied)
        self.send(message.topic, message.payload)

    def die(self) -> None:
        """Lose the connection without a goodbye: the broker sends the last will."""
        self.client.loop_stop()
        sock = self.client.socket()
        assert isinstance(sock, socket.socket)
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def revive(self) -> None:
        self.client = self._connect()
        self.online()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Site:
    def __init__(self, service: Service, clock: FakeClock, node: Node, calendar: MemoryCalendar):
        self.service, self.clock, self.node, self.calendar = service, clock, node, calendar

    def now(self) -> datetime:
        return self.clock.now().utc

    def step_until(self, predicate: Callable[[], bool], what: str, timeout_s: float = 10) -> None:
        """Step at the current fake time until `predicate` holds (messages take real time)."""
        done = threading.Event()
        deadline = threading.Timer(timeout_s, done.set)
        deadline.start()
        try:
            while not done.is_set():
                self.service.step(self.now())
                if predicate():
                    return
                self.service.inbox.wait(0.2)
            pytest.fail(f"timed out waiting for {what}")
        finally:
            deadline.cancel()

    def advance_to(self, target: datetime, heartbeat: bool = True) -> None:
        """Move the clock in 30 s steps; the node says it is alive at each, as agents do."""
        while self.now() < target:
            self.clock.advance(min(STEP_S, (target - self.now()).total_seconds()))
            if heartbeat:
                self.node.online()
                at = self.now()
                self.step_until(
                    lambda at=at: self.service.feed.sensing(MEETING).last_status_at == at,  # type: ignore[misc]
                    "the node's status",
                )
            else:
                self.service.step(self.now())

    def room(self, zone: str) -> dict[str, object]:
        return next(r for r in self.service.view().model_dump()["rooms"] if r["zone"] == zone)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    broker = start_broker(tmp_path / "broker")
    config = service_config(tmp_path, port=broker.port, homeassistant={"enabled": True})
    calendar = MemoryCalendar()
    clock = FakeClock(T0 - 10 * MIN)
    node = Node(broker.port)
    service = build_service(config, clock, adapters={"cal": calendar})
    try:
        service.start()
        yield Site(service, clock, node, calendar)
    finally:
        service.close()
        node.close()
        broker.stop()


def test_no_show_released_present_checked_in_offline_held_unbooked_use_booked(
    site: Site, tmp_path: Path
) -> None:
    views = Subscriber(site.service.link.port, "#", client_id="watcher")  # type: ignore[attr-defined]
    calendar, node = site.calendar, site.node
    calendar.add(MEETING, T0, T0 + 60 * MIN, "no-show")
    calendar.add(BOOTH, T0, T0 + 30 * MIN, "present", organiser="tanaka@city.example")
    node.online()
    node.occupied(MEETING, False)
    node.occupied(BOOTH, True)
    site.step_until(
        lambda: site.service.feed.sensing(MEETING).known and site.service.feed.sensing(BOOTH).known,
        "both rooms known",
    )
    assert site.room(MEETING)["status"] == "free"

    # The booth's window opens at start - 5 min with someone inside: checked in.
    site.advance_to(T0 - 5 * MIN)
    assert calendar.checked_in == [(BOOTH, "present")]
    assert site.room(BOOTH)["status"] == "in-use"
    assert site.room(MEETING)["status"] == "booked"

    # Nobody in the meeting room by start + grace: released then, not a step earlier.
    site.advance_to(T0 + 10 * MIN - timedelta(seconds=STEP_S))
    assert calendar.released == []
    site.advance_to(T0 + 10 * MIN)
    assert [(room, uid) for room, uid, _ in calendar.released] == [(MEETING, "no-show")]
    assert site.room(MEETING)["status"] == "released"

    # A second no-show whose sensor node dies in the window: held, shown unknown.
    calendar.add(MEETING, T0 + 30 * MIN, T0 + 45 * MIN, "while-offline")
    site.advance_to(T0 + 32 * MIN)
    node.die()
    site.step_until(lambda: site.room(MEETING)["status"] == "unknown", "the last will")
    assert "sensors-2f offline since" in str(site.room(MEETING)["reason"])
    site.advance_to(T0 + 41 * MIN, heartbeat=False)
    assert [uid for _, uid, _ in calendar.released] == ["no-show"]
    assert site.room(MEETING)["occupied"] is None
    journal = site.service.journal.entries(kind="held")
    assert [(e.room, e.uid) for e in journal] == [(MEETING, "while-offline")]

    # The node comes back; the room is used with no booking: booked ad hoc after 10 min.
    site.clock.advance(9 * 60)
    node.revive()
    node.occupied(MEETING, True)
    site.step_until(lambda: site.room(MEETING)["occupied"] is True, "the node back")
    site.advance_to(site.now() + 9 * MIN)
    assert calendar.booked == []
    assert site.room(MEETING)["status"] == "free"  # present, not for long enough yet
    site.advance_to(site.now() + MIN + timedelta(seconds=STEP_S))
    assert len(calendar.booked) == 1
    assert calendar.booked[0].end - calendar.booked[0].start == 30 * MIN
    assert site.room(MEETING)["status"] == "in-use"

    # What went out on the broker: the view, HA discovery and states, no personal data.
    view_topic = topics.rooms_view(ROOT, SITE)

    def meeting(payload: bytes) -> str:
        return str({r["zone"]: r["status"] for r in json.loads(payload)["rooms"]}[MEETING])

    views.wait_for(
        lambda ms: any(m.topic == view_topic and meeting(m.payload) == "in-use" for m in ms),
        what="the view with the meeting room in use",
    )
    sent = views.messages
    assert any(m.topic.startswith("homeassistant/binary_sensor/") for m in sent)
    assert any(m.topic == topics.rooms_status(ROOT, SITE) and m.payload == b"online" for m in sent)
    ours = [m for m in sent if m.topic.startswith((f"{ROOT}/{SITE}/rooms/", "homeassistant/"))]
    assert not [m.topic for m in ours if b"tanaka" in m.payload]
    statuses = [meeting(m.payload) for m in sent if m.topic == view_topic]
    assert {"booked", "released", "unknown", "free", "in-use"} <= set(statuses)
    views.close()


def test_the_service_s_last_word_is_offline(site: Site) -> None:
    watcher = Subscriber(site.service.link.port, topics.rooms_status(ROOT, SITE), client_id="w2")  # type: ignore[attr-defined]
    watcher.wait_for(lambda ms: any(m.payload == b"online" for m in ms), what="online")
    site.service.close()
    site.service.close()  # idempotent
    watcher.wait_for(lambda ms: ms[-1].payload == b"offline", what="offline")
    with pytest.raises(RuntimeError, match="closed"):
        site.service.step(site.now())
    watcher.close()
