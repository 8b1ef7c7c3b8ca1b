"""Least privilege at the broker: mosquitto with passwords and the generated ACL (MQTT 5 makes
a denied publish visible as PUBACK 0x87). A device cannot speak for another device or read its
commands; an agent with a wrong password keeps deciding locally. The full matrix of accounts
is tests/provisioning/test_broker_matrix.py."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from provisioning.broker import acl
from tests.broker import Broker, Subscriber, start_broker
from tests.edge.agent_fixtures import enrol, felica, sim_config
from tests.edge.sim_process import AgentProcess

pytestmark = pytest.mark.services  # starts mosquitto, pcscd, an emulated card or a building

SITE = "edge/kamakura-city-hall"
# The ACL edge-provision generates: one block per account, no patterns.
ACL = acl(
    "edge",
    "kamakura-city-hall",
    {"gate-1f-east": "device", "stair-b-2f": "device", "console": "console"},
)
PASSWORDS = {
    "gate-1f-east": "gate-secret",
    "stair-b-2f": "stair-secret",
    "console": "console-secret",
}


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    workdir = tmp_path / "broker"
    workdir.mkdir()
    passwd = workdir / "passwd"
    passwd.touch()
    for user, password in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    b = start_broker(workdir, acl=ACL, passwords=passwd)
    yield b
    b.stop()


class Client:
    def __init__(self, port: int, user: str, password: str) -> None:
        self.acks: dict[int, object] = {}
        self.got: list[str] = []
        self.cond = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-{user}", protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(user, password)
        self.client.on_publish = self._on_publish
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_publish(
        self, client: object, userdata: object, mid: int, reason: object, props: object
    ) -> None:
        with self.cond:
            self.acks[mid] = reason
            self.cond.notify_all()

    def _on_message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.got.append(message.topic)
            self.cond.notify_all()

    def publish(self, topic: str) -> int:
        info = self.client.publish(topic, b"{}", qos=1)
        with self.cond:
            assert self.cond.wait_for(lambda: info.mid in self.acks, 10), "no PUBACK"
            return int(self.acks[info.mid].value)  # type: ignore[attr-defined]

    def wait_message(self, topic: str) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: topic in self.got, 10), f"no message on {topic}"

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_a_device_cannot_speak_for_another_or_read_its_commands(broker: Broker) -> None:
    gate = Client(broker.port, "gate-1f-east", PASSWORDS["gate-1f-east"])
    console = Client(broker.port, "console", PASSWORDS["console"])
    try:
        # 0x10 "no matching subscribers" is a success too; failures are 0x80 and above.
        assert gate.publish(f"{SITE}/gate-1f-east/events/access") < 0x80
        assert gate.publish(f"{SITE}/stair-b-2f/events/access") == 0x87  # Not authorized
        assert (
            gate.publish(f"{SITE}/gate-1f-east/cmd/unlock") == 0x87
        )  # devices never send commands
        assert gate.publish(f"{SITE}/gate-1f-east/credentials") == 0x87  # nor their own credentials
        gate.client.subscribe(f"{SITE}/stair-b-2f/cmd/#", qos=1)
        gate.client.subscribe(f"{SITE}/gate-1f-east/cmd/#", qos=1)
        assert console.publish(f"{SITE}/stair-b-2f/cmd/unlock") < 0x80
        assert console.publish(f"{SITE}/gate-1f-east/cmd/ping") < 0x80
        gate.wait_message(f"{SITE}/gate-1f-east/cmd/ping")  # its own arrive...
        assert f"{SITE}/stair-b-2f/cmd/unlock" not in gate.got  # ...another device's never
    finally:
        gate.close()
        console.close()


def test_agent_with_its_password_connects_and_with_a_wrong_one_keeps_deciding(
    tmp_path: Path, broker: Broker
) -> None:
    device = sim_config(tmp_path, broker_port=broker.port)
    enrol(device.store, range(3), ["gate-east"])
    password_file = tmp_path / "mqtt-password"
    password_file.write_text("wrong")
    text = (
        device.config.read_text()
        + f'username = "gate-1f-east"\npassword_file = "{password_file}"\n'
    )
    device.config.write_text(text)
    watch = Subscriber(
        broker.port,
        f"{SITE}/gate-1f-east/status",
        client_id="watch",
        username="console",
        password=PASSWORDS["console"],
    )
    agent = AgentProcess(device, tmp_path)
    try:
        assert (
            agent.request(op="tap", reader="gate-east-in", technology="felica", id=felica(1))[
                "decision"
            ]
            == "granted"
        )
        assert agent.request(op="wait_log", text="broker refused the connection")["ok"], agent.log()
        # Refused by the broker, and still deciding locally:
        assert (
            agent.request(op="tap", reader="gate-east-out", technology="felica", id=felica(2))[
                "decision"
            ]
            == "granted"
        )
    finally:
        agent.terminate()
    assert "gate-secret" not in agent.log()
    password_file.write_text(PASSWORDS["gate-1f-east"])
    agent = AgentProcess(device, tmp_path)
    try:
        watch.wait_for(
            lambda ms: any(m.payload and b'"online"' in m.payload for m in ms),
            what="online with the right password",
        )
    finally:
        agent.terminate()
        watch.close()
    assert PASSWORDS["gate-1f-east"] not in agent.log()
