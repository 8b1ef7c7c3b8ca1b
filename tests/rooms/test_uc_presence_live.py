"""UC presence end to end: a real mosquitto, a real Synapse, the rooms service as it is built.

A gate publishes granted crossings of the security line as an agent does; a sensor node keeps
its status and the meeting room's occupancy; the calendar is an in-memory adapter (each real
one is tested against its own server). S001 opted in, S002 did not: S001's presence at Synapse
follows the line, the meeting and their phone-booth booking; S002's never changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from rooms.config import ServiceConfig
from rooms.service import Service, build_service
from rooms.uc.states import UcState
from rooms.uc.tracker import PresenceTracker
from simulator.clock import FakeClock
from tests.broker import start_broker
from tests.rooms.service_site import MEETING, NODE, MemoryCalendar, event, occupancy, status
from tests.rooms.service_site import service_config as base_config
from tests.rooms.synapse_server import SynapseServer, synapse  # noqa: F401 (the fixture)
from tests.rooms.uc_site import PHONE_BOOTH, Site, make_site, phone_booth_room

pytestmark = pytest.mark.services

T0 = datetime(2031, 4, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo: the meeting starts
CALL = T0 + timedelta(minutes=90)  # 11:30: S001's phone-booth booking, half an hour
GATE = "gate-1f-east"
LINE = "staff-area"


class Devices:
    """The gate's and the sensor node's MQTT side (each its own client, as on the Pis)."""

    def __init__(self, port: int) -> None:
        self.clients = {name: self._connect(port, name) for name in (GATE, NODE)}
        self.seq = 0

    @staticmethod
    def _connect(port: int, name: str) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        client.connect("127.0.0.1", port)
        client.loop_start()
        return client

    def _send(self, device: str, topic: str, payload: bytes, retain: bool) -> None:
        self.clients[device].publish(topic, payload, qos=1, retain=retain).wait_for_publish(10)

    def node_online(self, meeting_occupied: bool, booth_occupied: bool = False) -> None:
        messages = (
            status(NODE),
            occupancy(MEETING, meeting_occupied),
            occupancy(PHONE_BOOTH, booth_occupied),
        )
        for message in messages:
            self._send(NODE, message.topic, message.payload, True)

    def cross(self, card_ref: str, inside: bool) -> None:
        self.seq += 1
        sides = ("lobby", LINE) if inside else (LINE, "lobby")
        message = event(
            GATE, "access", "crossing", self.seq, door="gate-1f", reader="gate-1f-in",
            direction="in" if inside else "out", card_ref=card_ref,
            from_zone=sides[0], to_zone=sides[1],
        )  # fmt: skip
        self._send(GATE, message.topic, message.payload, False)

    def close(self) -> None:
        for client in self.clients.values():
            client.disconnect()
            client.loop_stop()


@dataclass
class Building:
    service: Service
    tracker: PresenceTracker
    clock: FakeClock
    devices: Devices
    site: Site
    synapse: SynapseServer
    users: dict[str, str]  # staff_no -> Matrix user id

    def step_until(self, predicate: Callable[[], bool], what: str, timeout_s: float = 15) -> None:
        """Step at the current fake time until `predicate` holds (messages take real time)."""
        done = threading.Event()
        timer = threading.Timer(timeout_s, done.set)
        timer.start()
        try:
            while not done.is_set():
                self.service.step(self.clock.now().utc)
                if predicate():
                    return
                self.service.inbox.wait(0.2)
            pytest.fail(f"timed out waiting for {what}")
        finally:
            timer.cancel()

    def go_to(self, at: datetime) -> None:
        """Move the fake clock forward to `at`."""
        self.clock.advance((at - self.clock.now().utc).total_seconds())

    def state(self, staff_no: str) -> UcState:
        return self.tracker.state_of(staff_no)

    def presence(self, staff_no: str, want: tuple[str, str]) -> None:
        self.synapse.wait_presence(self.users[staff_no], want)

    def untouched(self) -> None:
        """S002 never opted in: Synapse shows what it did before; nothing of theirs is held."""
        assert self.synapse.presence(self.users["S002"]) == ("offline", "")
        assert self.tracker.couriers[0].state_of(self.users["S002"]) is None


@pytest.fixture
def building(tmp_path: Path, synapse: SynapseServer) -> Iterator[Building]:  # noqa: F811
    site = make_site(tmp_path)
    users = {staff_no: synapse.register(staff_no.lower())[0] for staff_no in ("S001", "S002")}
    site.provision(
        "people", "uc-presence", "S001", "--on", "--uc-id", users["S001"],
        "--mail", "s001@city.example",
    )  # fmt: skip
    broker = start_broker(tmp_path / "broker")
    config = base_config(
        tmp_path,
        port=broker.port,
        registry=str(site.registry),
        line_zone=LINE,
        presence=[
            {
                "kind": "matrix",
                "base_url": synapse.url,
                "admin_token_file": str(synapse.admin_token_file),
            }
        ],
    )
    rooms = [r.model_dump(mode="json") for r in config.rooms]
    data = config.model_dump(mode="json") | {"rooms": [*rooms, phone_booth_room(NODE, "cal")]}
    config = ServiceConfig.model_validate(data)
    calendar = MemoryCalendar()
    calendar.add(
        MEETING, T0, T0 + timedelta(hours=1), "budget-review",
        organiser="mailto:s001@city.example", attendees=("s002@city.example",), title="Budget",
    )  # fmt: skip
    calendar.add(
        PHONE_BOOTH, CALL, CALL + timedelta(minutes=30), "call-s001",
        organiser="mailto:S001@city.example", title="Call with the prefecture",
    )  # fmt: skip
    clock = FakeClock(T0 - timedelta(minutes=10))
    devices = Devices(broker.port)
    service = build_service(config, clock, adapters={"cal": calendar})
    assert isinstance(service.tracker, PresenceTracker)
    try:
        service.start()
        yield Building(service, service.tracker, clock, devices, site, synapse, users)
    finally:
        service.close()
        devices.close()
        broker.stop()


def test_presence_follows_the_line_and_the_meeting_for_the_opted_in_only(
    building: Building,
) -> None:
    b = building
    s1, s2 = b.site.refs["S001"], b.site.refs["S002"]
    b.devices.node_online(meeting_occupied=False)
    b.devices.cross(s1, inside=True)
    b.devices.cross(s2, inside=True)
    b.step_until(lambda: b.state("S001") is UcState.AVAILABLE, "S001 in the building")
    b.presence("S001", ("online", "in the building"))
    b.untouched()

    b.clock.advance(360)  # 09:56: the room fills within early_min of the start: checked in
    b.devices.node_online(meeting_occupied=True)
    b.step_until(lambda: b.service.view().rooms[0].next[0].checked_in, "the meeting checked in")
    assert b.state("S001") is UcState.AVAILABLE  # checked in, but not yet begun
    b.clock.advance(300)  # 10:01: the meeting is in progress
    b.devices.node_online(meeting_occupied=True)
    b.step_until(lambda: b.state("S001") is UcState.MEETING, "S001 in the meeting")
    b.presence("S001", ("online", "in a meeting"))
    b.untouched()  # an attendee of the meeting, but never opted in

    b.clock.advance(30)
    b.devices.node_online(meeting_occupied=True)
    b.devices.cross(s1, inside=False)
    b.step_until(lambda: b.state("S001") is UcState.AWAY, "S001 out of the building")
    b.presence("S001", ("offline", ""))
    b.untouched()


def test_presence_says_on_the_phone_while_their_phone_booth_booking_runs(
    building: Building,
) -> None:
    b = building
    s1 = b.site.refs["S001"]
    b.devices.node_online(meeting_occupied=False)
    b.devices.cross(s1, inside=True)
    b.devices.cross(b.site.refs["S002"], inside=True)
    b.step_until(lambda: b.state("S001") is UcState.AVAILABLE, "S001 in the building")
    b.presence("S001", ("online", "in the building"))

    b.go_to(CALL - timedelta(minutes=4))  # 11:26: in the booth within early_min
    b.devices.node_online(meeting_occupied=False, booth_occupied=True)
    b.step_until(lambda: booth_checked_in(b), "the phone-booth booking checked in")
    assert b.state("S001") is UcState.AVAILABLE  # checked in, but the call has not begun
    b.go_to(CALL + timedelta(minutes=1))
    b.devices.node_online(meeting_occupied=False, booth_occupied=True)
    b.step_until(lambda: b.state("S001") is UcState.PHONE, "S001 on the phone")
    b.presence("S001", ("online", "on the phone"))
    b.untouched()

    b.go_to(CALL + timedelta(minutes=30))  # the booth empties and the booking has ended
    b.devices.node_online(meeting_occupied=False, booth_occupied=False)
    b.step_until(lambda: b.state("S001") is UcState.AVAILABLE, "S001 off the phone")
    b.presence("S001", ("online", "in the building"))

    b.clock.advance(30)
    b.devices.node_online(meeting_occupied=False)
    b.devices.cross(s1, inside=False)
    b.step_until(lambda: b.state("S001") is UcState.AWAY, "S001 out of the building")
    b.presence("S001", ("offline", ""))
    b.untouched()


def booth_checked_in(b: Building) -> bool:
    """Return whether the floor view shows the phone booth's next booking checked in."""
    booth = next(r for r in b.service.view().rooms if r.zone == PHONE_BOOTH)
    return bool(booth.next) and booth.next[0].checked_in


def test_opting_out_clears_the_status_at_the_next_reload(building: Building) -> None:
    b = building
    b.devices.node_online(meeting_occupied=False)
    b.devices.cross(b.site.refs["S001"], inside=True)
    b.step_until(lambda: b.state("S001") is UcState.AVAILABLE, "S001 in the building")
    b.presence("S001", ("online", "in the building"))
    b.site.provision("people", "uc-presence", "S001", "--off")
    courier = b.tracker.couriers[0]
    b.step_until(lambda: courier.held() == 0, "S001's status cleared and forgotten")
    b.presence("S001", ("offline", ""))
