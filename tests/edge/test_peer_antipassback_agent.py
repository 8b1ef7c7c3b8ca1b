"""One security line, two gates: agents as processes on a real mosquitto with the generated ACL.

A card that entered at gate A is refused at gate B (hard) or granted with an alarm (soft)
once A's crossing has reached B; leaving by B lets it in again at A; a stolen gate's
hostile crossings are dropped and the agent keeps deciding.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.cardref import card_references
from edge.core.clock import utc_text
from edge.link.crossings import served_zones
from firmware_config.loader import load_config
from provisioning.broker import acl
from simulator.broker import free_port
from simulator.process import AgentProcess
from tests.broker import Broker, Subscriber, start_broker
from tests.edge.agent_fixtures import KEY, SimDevice, enrol, felica, sim_config

pytestmark = pytest.mark.services  # starts mosquitto and agents

SITE = "kamakura-city-hall"
BASE = f"edge/{SITE}"
GATES = ("gate-a", "gate-b")
HOSTILE = "gate-x"  # a third gate of the same line, its credentials stolen
PASSWORDS = {"gate-a": "a-secret", "gate-b": "b-secret", HOSTILE: "x-secret", "watcher": "w"}
# The test's own eyes: statuses, events and the two honest gates' crossings (not the
# stolen gate's garbage, which the test's subscriber would not survive).
WATCHER = f"""
user watcher
topic read {BASE}/+/status
topic read {BASE}/+/events/#
topic read {BASE}/gate-a/crossings/#
topic read {BASE}/gate-b/crossings/#
"""


def gate_config(tmp: Path, gate: str, port: int, mode: str) -> SimDevice:
    tmp.mkdir()
    device = sim_config(tmp, broker_port=port)
    text = device.config.read_text(encoding="utf-8")
    text = text.replace('id = "gate-1f-east"', f'id = "{gate}"', 1)
    text = text.replace('anti_passback = "hard"', f'anti_passback = "{mode}"', 1)
    for reader in ("gate-east-in", "gate-east-out"):  # the same card again within seconds
        text = text.replace(f'id = "{reader}"\n', f'id = "{reader}"\ndebounce_s = 0.0\n', 1)
    password = tmp / "mqtt-password"
    password.write_text(PASSWORDS[gate])
    text = text.replace(
        "[mqtt]\n", f'[mqtt]\nusername = "{gate}"\npassword_file = "{password}"\n', 1
    )
    device.config.write_text(text, encoding="utf-8")
    enrol(device.store, range(1, 6), ["gate-east"])
    return device


@dataclass
class Line:
    mode: str
    broker: Broker
    watcher: Subscriber
    gates: dict[str, AgentProcess]

    def cross(self, gate: str, reader: str, card: int) -> dict[str, object]:
        """Tap, and walk through if granted; return the tap's reply."""
        agent = self.gates[gate]
        reply = agent.request(op="tap", reader=reader, technology="felica", id=felica(card))
        if reply.get("decision") == "granted":
            agent.request(op="door", door="gate-east", open=True)
            agent.request(op="door", door="gate-east", open=False)
        return reply

    def crossing_ids(self, gate: str) -> list[str]:
        topic = f"{BASE}/{gate}/crossings/staff-area"
        with self.watcher.cond:
            return [json.loads(m.payload)["id"] for m in self.watcher.messages if m.topic == topic]

    def propagate(self, source: str, target: str, count: int) -> None:
        """Wait until `source`'s `count`-th crossing has been applied at `target`."""
        self.watcher.wait_for(
            lambda _: len(self.crossing_ids(source)) >= count, what=f"{source}'s crossing"
        )
        crossing = self.crossing_ids(source)[count - 1]
        text = f"peer crossing {crossing} applied"
        assert self.gates[target].request(op="wait_log", text=text, timeout=20)["ok"], text

    def alarms(self, gate: str, type_: str) -> list[dict[str, object]]:
        return [p for p in self.watcher.payloads(f"/{gate}/events/alarm") if p["type"] == type_]


def start_line(tmp_path: Path, mode: str) -> Iterator[Line]:
    workdir = tmp_path / "broker"
    workdir.mkdir()
    passwd = workdir / "passwd"
    passwd.touch()
    for user, password in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    port = free_port()
    devices = {g: gate_config(tmp_path / g, g, port, mode) for g in (*GATES, HOSTILE)}
    # The ACL is written from the gates' own configurations, as edge-provision does.
    zones = {g: served_zones(load_config(d.config)) for g, d in devices.items()}
    rules = acl("edge", SITE, dict.fromkeys(devices, "device"), zones) + WATCHER
    broker = start_broker(workdir, acl=rules, passwords=passwd, port=port)
    watcher = Subscriber(port, f"{BASE}/#", client_id="watcher", username="watcher", password="w")
    gates: dict[str, AgentProcess] = {}
    try:
        for gate in GATES:
            gates[gate] = AgentProcess(devices[gate].config, tmp_path / gate, log_level="debug")
        # A gate's status follows its subscriptions on the same connection: once both are
        # online, each hears the other's crossings.
        watcher.wait_for(
            lambda _: {p.get("device") for p in watcher.payloads("/status")} >= {*GATES},
            what="both gates online",
        )
        yield Line(mode, broker, watcher, gates)
    finally:
        for agent in gates.values():
            agent.terminate()
        watcher.close()
        broker.stop()


@pytest.fixture(params=["hard", "soft"])
def line(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Line]:
    yield from start_line(tmp_path, request.param)


@pytest.fixture
def hard_line(tmp_path: Path) -> Iterator[Line]:
    yield from start_line(tmp_path, "hard")


def test_a_card_that_entered_at_one_gate_is_held_at_the_other(line: Line) -> None:
    hard = line.mode == "hard"
    assert line.cross("gate-a", "gate-east-in", 1)["reason"] == "granted"
    line.propagate("gate-a", "gate-b", 1)
    second = line.cross("gate-b", "gate-east-in", 1)
    if hard:
        assert (second["decision"], second["reason"]) == ("denied", "anti_passback")
    else:
        assert (second["decision"], second["reason"]) == ("granted", "granted")
        line.watcher.wait_for(
            lambda _: line.alarms("gate-b", "anti_passback_violation"), what="the soft alarm"
        )
        line.propagate("gate-b", "gate-a", 1)
    # Out by B, back in by A: B's exit reaches A first.
    exits = len(line.crossing_ids("gate-b")) + 1
    assert line.cross("gate-b", "gate-east-out", 1)["reason"] == "granted"
    line.propagate("gate-b", "gate-a", exits)
    assert line.cross("gate-a", "gate-east-in", 1)["reason"] == "granted"
    alarms = line.alarms("gate-a", "anti_passback_violation")
    assert not alarms, alarms


def test_a_stolen_gate_s_hostile_crossings_do_not_stop_the_agent(hard_line: Line) -> None:
    line = hard_line
    hostile = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=HOSTILE, protocol=mqtt.MQTTv5)
    hostile.username_pw_set(HOSTILE, PASSWORDS[HOSTILE])
    hostile.connect("127.0.0.1", line.broker.port)
    hostile.loop_start()
    try:
        topic = f"{BASE}/{HOSTILE}/crossings/staff-area"
        for payload in (b"not json", b"[" * 5000, b"{}", json.dumps({"v": 1}).encode()):
            hostile.publish(topic, payload, qos=1).wait_for_publish(10)
        assert line.gates["gate-b"].request(op="wait_log", text="dropped", timeout=20)["ok"]
        # The agent decides on: an unknown card in, out, and in again.
        assert line.cross("gate-b", "gate-east-in", 3)["reason"] == "granted"
        assert line.cross("gate-b", "gate-east-out", 3)["reason"] == "granted"
        assert line.cross("gate-b", "gate-east-in", 3)["reason"] == "granted"
        assert line.gates["gate-b"].proc.poll() is None
        # What a stolen gate can do (docs/threat-model.md): claim a card is inside a zone it
        # serves, so that card is refused there until it leaves or is forgiven.
        forged = {
            "v": 1,
            "id": f"{HOSTILE}:1",
            "device": HOSTILE,
            "seq": 1,
            "card_ref": card_references(KEY, [("felica", felica(4))])[0],
            "from_zone": "lobby",
            "to_zone": "staff-area",
            "ts": utc_text(datetime.now(UTC)),
            "clock_synced": True,
        }
        hostile.publish(topic, json.dumps(forged).encode(), qos=1).wait_for_publish(10)
        text = f"peer crossing {HOSTILE}:1 applied"
        assert line.gates["gate-b"].request(op="wait_log", text=text, timeout=20)["ok"]
        assert line.cross("gate-b", "gate-east-in", 4)["reason"] == "anti_passback"
    finally:
        hostile.loop_stop()
        hostile.disconnect()
