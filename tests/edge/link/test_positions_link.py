"""The link keeps this device's positions digests retained and hands the zone's digests (its own
retained one too) to the loop; a digest the broker refuses is named in the log."""

from __future__ import annotations

import json
import logging
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.core.controller import DeviceState
from edge.core.outputs import EventKind, EventRecord
from edge.link.messages import InboundMessage
from edge.link.mqtt import MqttLink
from edge.store import Store, outbox, state
from firmware_config.deployment import MqttConfig
from provisioning.broker import acl
from tests.broker import Broker, Subscriber, start_broker

pytestmark = pytest.mark.services  # starts mosquitto

SITE = "kamakura-city-hall"
BASE = f"edge/{SITE}"
ZONES = frozenset({"lobby", "staff-area"})
CARD = "ab" * 32


@pytest.fixture
def acl_broker(tmp_path: Path) -> Iterator[Broker]:
    """mosquitto with the generated ACL; gate-a's rights name only the lobby (a stale ACL)."""
    workdir = tmp_path / "acl-broker"
    workdir.mkdir()
    passwd = workdir / "passwd"
    passwd.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(passwd), "gate-a", "gate-a-pw"], check=True)
    rules = acl("edge", SITE, {"gate-a": "device"}, {"gate-a": {"lobby"}})
    b = start_broker(workdir, acl=rules, passwords=passwd)
    yield b
    b.stop()


def own_crossing(store: Store, device: str) -> None:
    crossing = EventRecord(
        EventKind.ACCESS,
        "crossing",
        datetime(2026, 12, 1, 0, 0, tzinfo=UTC),
        {"card_ref": CARD, "from_zone": "lobby", "to_zone": "staff-area", "door": "g"},
    )
    with store.transaction() as db:
        outbox.append(db, device, [crossing], True)
        state.apply(db, [crossing], DeviceState(), DeviceState())


class Inbound:
    """The loop's side: what the link hands over."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.messages: list[InboundMessage] = []

    def __call__(self, message: InboundMessage) -> None:
        with self.cond:
            self.messages.append(message)
            self.cond.notify_all()

    def wait(self, topic: str) -> InboundMessage:
        with self.cond:
            assert self.cond.wait_for(lambda: self.on(topic), timeout=15), topic
            return self.on(topic)[-1]

    def on(self, topic: str) -> list[InboundMessage]:
        return [m for m in self.messages if m.topic == topic]


def link(tmp_path: Path, port: int, device: str, inbound: Inbound, **mqtt_: object) -> MqttLink:
    store = Store(tmp_path / f"{device}.db")
    own_crossing(store, device)
    store.close()
    config = MqttConfig(host="127.0.0.1", port=port, **mqtt_)  # type: ignore[arg-type]
    return MqttLink(
        config,
        site=SITE,
        device=device,
        store_path=tmp_path / f"{device}.db",
        status=lambda db, state: {"v": 1, "state": state},
        on_message=inbound,
        crossing_zones=ZONES,
    )


def digests(messages: list[mqtt.MQTTMessage]) -> set[str]:
    """The topics on which a digest of the link's own (JSON) has arrived."""
    return {m.topic for m in messages if m.payload.startswith(b"{")}


def publish(port: int, topic: str, payload: bytes) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="peer", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1, retain=True).wait_for_publish(10)
    finally:
        client.loop_stop()
        client.disconnect()


def test_digests_go_out_retained_and_the_zone_s_digests_come_in(
    tmp_path: Path, broker: Broker
) -> None:
    mine = f"{BASE}/gate-b/positions/lobby"
    publish(broker.port, mine, b"kept before the store was lost")
    publish(broker.port, f"{BASE}/gate-c/positions/staff-area", b"a peer's")
    publish(broker.port, f"{BASE}/gate-c/positions/vault", b"not a zone served here")
    inbound = Inbound()
    gate = link(tmp_path, broker.port, "gate-b", inbound)
    gate.start()
    try:
        assert inbound.wait(mine).payload == b"kept before the store was lost"
        assert inbound.wait(mine).retained
        assert inbound.wait(f"{BASE}/gate-c/positions/staff-area").payload == b"a peer's"
        # Once the link's digests have gone out, a newcomer gets them as the broker kept them.
        topic = f"{BASE}/gate-b/positions/#"
        live = Subscriber(broker.port, topic, client_id="live")
        try:
            live.wait_for(lambda ms: len(digests(ms)) == 2, what="both digests")
        finally:
            live.close()
        watcher = Subscriber(broker.port, topic, client_id="watcher")
        try:
            watcher.wait_for(lambda ms: len(digests(ms)) == 2, what="both digests, retained")
            for message in watcher.messages:
                body = json.loads(message.payload)
                assert message.retain
                assert (body["device"], body["entries"]) == (
                    "gate-b",
                    [[CARD, "lobby", "staff-area", "2026-12-01T00:00:00.000Z", 1]],
                )
        finally:
            watcher.close()
        assert not inbound.on(f"{BASE}/gate-c/positions/vault")
        assert gate.digests.published == 2
    finally:
        gate.close()


class Said(logging.Handler):
    """Sets `heard` once a log line contains `text`."""

    def __init__(self, text: str) -> None:
        super().__init__(logging.ERROR)
        self.text = text
        self.heard = threading.Event()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        if self.text in record.getMessage():
            self.heard.set()


def test_a_digest_the_broker_refuses_is_named(tmp_path: Path, acl_broker: Broker) -> None:
    said = Said("broker refused the positions digest of staff-area")
    logger = logging.getLogger("edge.link.positions")
    logger.addHandler(said)
    password = tmp_path / "gate-a.pw"
    password.write_text("gate-a-pw")
    gate = link(
        tmp_path, acl_broker.port, "gate-a", Inbound(), username="gate-a", password_file=password
    )
    gate.start()
    try:
        # gate-a's rights name only the lobby: its staff-area digest is refused (0x87).
        assert said.heard.wait(15), said.lines
        assert not [line for line in said.lines if "of lobby" in line]
    finally:
        gate.close()
        logger.removeHandler(said)


def test_a_peer_back_on_the_broker_gets_what_changed_at_once(
    tmp_path: Path, broker: Broker
) -> None:
    """A device's first digests after a connect say hello; its peers then send what changed
    since their last digest early instead of at their next period."""
    watcher = Subscriber(broker.port, f"{BASE}/+/positions/staff-area", client_id="watcher")
    gate_a = link(tmp_path, broker.port, "gate-a", Inbound())
    gate_a.start()
    gate_b: MqttLink | None = None
    try:
        topic_a = f"{BASE}/gate-a/positions/staff-area"
        watcher.wait_for(lambda ms: any(m.topic == topic_a for m in ms), what="gate-a's digest")
        # A crossing at gate-a after its digest went out: not due again for 30 s.
        late = EventRecord(
            EventKind.ACCESS,
            "crossing",
            datetime(2026, 12, 1, 0, 1, tzinfo=UTC),
            {"card_ref": "cd" * 32, "from_zone": "lobby", "to_zone": "staff-area", "door": "g"},
        )
        with Store(tmp_path / "gate-a.db") as store, store.transaction() as db:
            outbox.append(db, "gate-a", [late], True)
            state.apply(db, [late], DeviceState(), DeviceState())
        gate_b = link(tmp_path, broker.port, "gate-b", Inbound())
        gate_b.start()

        def hello(m: mqtt.MQTTMessage) -> bool:
            return ("edge", "hello") in (getattr(m.properties, "UserProperty", None) or ())

        watcher.wait_for(
            lambda ms: any(
                m.topic == f"{BASE}/gate-b/positions/staff-area" and hello(m) for m in ms
            ),
            what="gate-b's hello",
        )
        watcher.wait_for(
            lambda ms: any(m.topic == topic_a and b"cd" * 32 in m.payload for m in ms),
            timeout_s=10,  # well before gate-a's next period (30 s)
            what="gate-a's changed digest, early",
        )
        first_a = next(m for m in watcher.messages if m.topic == topic_a)
        assert hello(first_a)  # gate-a's own first digest said hello too
    finally:
        gate_a.close()
        if gate_b is not None:
            gate_b.close()
        watcher.close()
