"""Booth presence through the whole agent: a radar's OUT pin and a room door on mock pins, an
LD2410 on a real pseudo-terminal, the store's outbox, and a restart."""

from __future__ import annotations

import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.app import build_agent
from edge.core.events import PresenceSensorStatus
from edge.core.outputs import Record
from edge.system import SystemClock
from firmware_config.loader import load_config
from simulator.control import Control
from simulator.pins import WatchedFactory

from .agent_fixtures import SimDevice, sim_config
from .test_ld2410 import STILL
from .test_runtime import Running, outbox

PHONE_RADAR_PIN, PHONE_DOOR_PIN = 22, 5  # as in firmware_config/examples/sensor-node.toml


class BoothNode:
    """The example sensor node, its focus booth's LD2410 on a pseudo-terminal."""

    def __init__(self, tmp_path: Path) -> None:
        self.master, slave = os.openpty()
        self._slave = slave
        self.device: SimDevice = sim_config(tmp_path, "sensor-node.toml")
        text = self.device.config.read_text(encoding="utf-8")
        text, replaced = re.subn(
            r'^port = "/dev/serial0"', f'port = "{os.ttyname(slave)}"', text, flags=re.MULTILINE
        )
        assert replaced == 1
        self.device.config.write_text(text, encoding="utf-8")
        self.faults = threading.Condition()
        self.statuses: list[PresenceSensorStatus] = []
        self.running = self.start()

    def start(self) -> Running:
        running = Running(self.device, WatchedFactory())
        running.agent.when_processed(self._processed)
        return running

    def _processed(self, event: object, outputs: object) -> None:
        if isinstance(event, PresenceSensorStatus):
            with self.faults:
                self.statuses.append(event)
                self.faults.notify_all()

    def events(self, kind: str, type_: str | None = None) -> list[dict[str, object]]:
        return [
            e
            for e in outbox(self.device.store)
            if e["kind"] == kind and (type_ is None or e["type"] == type_)
        ]

    def radar_reports_until(self, predicate: object) -> None:
        """Send reports as the radar does (about every 50 ms) until `predicate()` holds."""
        assert callable(predicate)
        stop = threading.Event()
        for _ in range(100):  # 5 s
            os.write(self.master, STILL)
            self.running.settle()
            if predicate():
                self.running.settle()  # its records are committed with the next batch at latest
                return
            stop.wait(0.05)  # the radar's own pace; a pty left unread fills up
        raise AssertionError("the agent never saw the radar's reports")

    def close(self) -> None:
        self.running.stop()
        os.close(self.master)
        os.close(self._slave)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[BoothNode]:
    booth = BoothNode(tmp_path)
    yield booth
    booth.close()


def test_a_latched_phone_booth_stays_occupied_and_survives_a_restart(node: BoothNode) -> None:
    running = node.running
    running.settle()
    closed = node.events("presence", "room_door_closed")
    assert {e["room_door"] for e in closed} == {"phone-booth-3f-door", "focus-3f-1-door"}
    # Someone steps in, shuts the door, and the radar sees them afterwards.
    running.factory.pin(PHONE_DOOR_PIN).drive_high()
    running.settle()
    running.factory.pin(PHONE_DOOR_PIN).drive_low()
    running.settle()
    running.factory.pin(PHONE_RADAR_PIN).drive_high()
    running.settle()
    running.factory.pin(PHONE_RADAR_PIN).drive_low()
    running.settle()
    assert [e["zone"] for e in node.events("presence", "room_latched")] == ["phone-booth-3f"]
    assert running.agent.controller.presence.occupied("phone-booth-3f")
    node.running.stop()

    node.running = node.start()
    node.running.settle()
    # Read at start: the door is shut and the radar sees nothing; the booth stays occupied.
    assert node.running.agent.controller.presence.occupied("phone-booth-3f")
    node.running.factory.pin(PHONE_DOOR_PIN).drive_high()
    node.running.settle()
    assert [e["zone"] for e in node.events("presence", "room_unlatched")] == ["phone-booth-3f"]


def test_the_focus_booth_radar_reports_and_its_silence_is_a_fault(node: BoothNode) -> None:
    presence = node.running.agent.controller.presence
    node.radar_reports_until(lambda: presence.occupied("focus-3f-1"))
    (seen,) = node.events("presence", "occupied")
    assert (seen["sensor"], seen["zone"]) == ("focus-3f-1-radar", "focus-3f-1")
    # The radar falls silent: after 5 s the fault, and the booth keeps its state.
    with node.faults:
        assert node.faults.wait_for(lambda: node.statuses, timeout=10)
    node.running.settle()
    (alarm,) = node.events("alarm", "presence_sensor_fault")
    assert (alarm["sensor"], alarm["zone"], alarm["state"]) == (
        "focus-3f-1-radar",
        "focus-3f-1",
        "raised",
    )
    occupancy = [e for e in node.events("occupancy") if e["zone"] == "focus-3f-1"][-1]
    assert (occupancy["occupied"], occupancy["sensor_ok"]) == (True, False)
    assert presence.occupied("focus-3f-1")
    # Reports again: the alarm clears.
    node.radar_reports_until(lambda: presence.sensor_ok("focus-3f-1"))
    states = [e["state"] for e in node.events("alarm", "presence_sensor_fault")]
    assert states == ["raised", "cleared"]


def test_the_simulator_control_opens_and_shuts_a_booth_door(node: BoothNode) -> None:
    control = Control(node.running.factory, load_config(node.device.config))
    control.attach(node.running.agent)
    door = "phone-booth-3f-door"
    assert control.request({"op": "room_door", "door": door, "open": True})["ok"]
    assert control.request({"op": "room_door", "door": door, "open": False})["ok"]
    node.running.settle()
    moves = [(e["type"], e["room_door"]) for e in node.events("presence") if e.get("room_door")]
    assert moves[-2:] == [("room_door_opened", door), ("room_door_closed", door)]
    refused = control.request({"op": "room_door", "door": "gate-east", "open": True})
    assert refused["ok"] is False
    assert "no room door" in refused["error"]


def test_without_pyserial_the_radar_is_a_hardware_fault_and_the_rest_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "serial", None)  # import serial raises ImportError
    monkeypatch.delitem(sys.modules, "edge.sensors.ld2410_serial", raising=False)
    device = sim_config(tmp_path, "sensor-node.toml")
    agent, startup = build_agent(
        load_config(device.config), card_key=None, pin_factory=WatchedFactory(), clock=SystemClock()
    )
    try:
        records = [o.event.payload() for o in startup if isinstance(o, Record)]
        (fault,) = [r for r in records if r["type"] == "hardware_fault"]
        assert "focus-3f-1-radar" in str(fault["detail"])
        assert "pyserial" in str(fault["detail"])
        assert len(agent.inputs) == 5 + 2  # the GPIO sensors and the room doors
        # The radar is in fault from the start: the rooms service must not release its booth.
        (alarm,) = [r for r in records if r["type"] == "presence_sensor_fault"]
        assert (alarm["sensor"], alarm["zone"], alarm["state"]) == (
            "focus-3f-1-radar",
            "focus-3f-1",
            "raised",
        )
        assert "pyserial" in str(alarm["detail"])
        focus = [r for r in records if r["kind"] == "occupancy" and r["zone"] == "focus-3f-1"]
        assert focus
        assert (focus[-1]["occupied"], focus[-1]["sensor_ok"]) == (False, False)
        assert agent.controller.presence.sensor_ok("focus-3f-1") is False
        assert agent.controller.presence.sensor_ok("phone-booth-3f") is True
    finally:
        agent.close()


def test_a_pir_whose_pin_is_taken_is_in_fault_from_the_start(tmp_path: Path) -> None:
    device = sim_config(tmp_path, "sensor-node.toml")
    factory = WatchedFactory()
    factory.reserve_pins(factory, "GPIO17")  # booth-3f-1-pir's pin, held by another program
    agent, startup = build_agent(
        load_config(device.config), card_key=None, pin_factory=factory, clock=SystemClock()
    )
    try:
        records = [o.event.payload() for o in startup if isinstance(o, Record)]
        (alarm,) = [r for r in records if r["type"] == "presence_sensor_fault"]
        assert (alarm["sensor"], alarm["zone"], alarm["state"]) == (
            "booth-3f-1-pir",
            "booth-3f-1",
            "raised",
        )
        assert "GPIO 17" in str(alarm["detail"])
        booth = [r for r in records if r["kind"] == "occupancy" and r["zone"] == "booth-3f-1"]
        assert booth[-1]["sensor_ok"] is False
        assert agent.controller.presence.sensor_ok("booth-3f-2") is True
    finally:
        agent.close()
