"""Door actions to hostile devices over a real mosquitto: a bad reply never loses the audit.

Real parts: a private mosquitto; the console's Commander and its ConsoleClient; a paho
MQTT 5 client answering as several devices at once, each in its own way (an honest answer,
JSON nested past Python's limit, garbage, silence).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from console.actions import Commander, Outcome, perform
from console.cli import cli
from console.log import CentralLog
from console.mqtt import ConsoleClient
from console.users import add_user
from tests.broker import Broker
from tests.console.test_claims import SITE, provision
from tests.console.web_fixtures import PASSWORDS

pytestmark = pytest.mark.services

DEEP = b"[" * 30_000 + b"]" * 30_000  # under the console's 64 KiB, far past the parser's depth
HOSTILE: dict[str, bytes] = {"door-deep": DEEP, "door-garbage": b"\xff\x00 not json"}
SILENT = "door-silent"  # receives the command, never answers; any other device accepts


class Devices:
    """One paho client answering the commands of every device."""

    def __init__(self, port: int) -> None:
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="devices", protocol=mqtt.MQTTv5
        )
        self.client.on_connect = lambda c, *_: c.subscribe(f"edge/{SITE}/+/cmd/+", qos=1)
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._answer
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the devices could not subscribe"

    def _answer(self, client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        device = message.topic.split("/")[2]
        if device == SILENT:
            return
        honest = {"v": 1, "device": device, "command": "unlock", "ok": True, "reason": "accepted"}
        payload = HOSTILE.get(device) or json.dumps(honest).encode()
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.CorrelationData = message.properties.CorrelationData  # type: ignore[union-attr]
        response = message.properties.ResponseTopic  # type: ignore[union-attr]
        client.publish(response, payload, qos=1, properties=props)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def devices(broker: Broker) -> Iterator[Devices]:
    answering = Devices(broker.port)
    yield answering
    answering.close()


def test_deep_json_and_garbage_are_refused_and_every_outcome_is_audited(
    broker: Broker, devices: Devices, log: CentralLog
) -> None:
    client = ConsoleClient("127.0.0.1", broker.port, client_id="console-doors", persistent=False)
    commander = Commander(
        client, Ed25519PrivateKey.generate(), site=SITE, account="console-doors", timeout_s=2.0
    )
    heard: list[Outcome] = []
    targets = ["door-good-1", "door-deep", "door-garbage", "door-good-2", SILENT]
    try:
        result = perform(
            log,
            commander,
            user="guard1",
            action="door.unlock",
            target="hall",
            devices=targets,
            name="unlock",
            args={"door": "hall"},
            on_outcome=heard.append,
        )
    finally:
        commander.close()
    assert result.outcomes == (
        Outcome("door-good-1", "accepted"),
        Outcome("door-deep", "refused", "malformed reply"),
        Outcome("door-garbage", "refused", "malformed reply"),
        Outcome("door-good-2", "accepted"),
        Outcome(SILENT, "no_answer"),
    )
    assert sorted(heard, key=lambda o: o.device) == sorted(result.outcomes, key=lambda o: o.device)
    rows = [
        str(d)
        for (d,) in log.db.execute(
            "SELECT detail FROM audit WHERE action = 'door.unlock' ORDER BY id"
        )
    ]
    assert rows[0] == f"hall: sending to {', '.join(targets)}"  # before anything went out
    assert sorted(rows[1:]) == sorted(f"hall: {o.text()}" for o in result.outcomes)


def test_a_lockdown_with_an_unusable_configuration_reaches_the_others_and_exits_1(
    broker: Broker, devices: Devices, tmp_path: Path
) -> None:
    site = provision(tmp_path / "site", gates=("gate-1", "gate-2"))
    (site / "devices" / "gate-3.toml").write_text("[device\nid = ")
    log = CentralLog(tmp_path / "log.db")
    add_user(log, "boss", "manager", PASSWORDS["boss"], by="test")
    log.close()
    password = tmp_path / "boss.password"
    password.write_text(PASSWORDS["boss"])
    key = tmp_path / "console.key"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
        )
    )
    key.chmod(0o600)
    args = [
        "lockdown", "on", "--yes", "--site", SITE, "--db", str(tmp_path / "log.db"),
        "--user", "boss", "--password-file", str(password), "--site-dir", str(site),
        "--broker-host", "127.0.0.1", "--broker-port", str(broker.port),
        "--broker-user", "console-cli", "--command-key", str(key), "--timeout-s", "2",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert result.stdout.splitlines() == ["gate-1: accepted", "gate-2: accepted"]
    assert "lockdown: not reached, their configuration is unusable: gate-3" in result.stderr
