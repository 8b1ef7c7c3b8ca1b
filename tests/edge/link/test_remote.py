"""Commands and credentials over a real mosquitto: every refusal is answered and recorded,
accepted commands drive the door, a revoked card is denied at the next tap."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.cardref import card_reference
from edge.commands import sign
from edge.core.credentials import Credential, DenyReason
from edge.core.policy import AccessPolicy, Rule
from edge.snapshot import build
from tests.broker import Broker, Subscriber
from tests.edge.agent_fixtures import (
    COMMANDS_KEY,
    CREDENTIALS_KEY,
    KEY,
    SimDevice,
    enrol,
    felica,
    sim_config,
)
from tests.edge.sim_process import AgentProcess

PREFIX = "edge/kamakura-city-hall/gate-1f-east"
REPLY = f"{PREFIX}/reply/console-1"


@pytest.fixture
def device(tmp_path: Path, broker: Broker) -> SimDevice:
    d = sim_config(tmp_path, broker_port=broker.port)
    enrol(d.store, range(5), ["gate-east"])
    return d


def wait_online(port: int) -> None:
    """Wait for the agent's retained status to say online (it has subscribed by then)."""
    status = Subscriber(port, f"{PREFIX}/status", client_id="wait-online")
    status.wait_for(
        lambda ms: any(m.payload and json.loads(m.payload)["state"] == "online" for m in ms),
        what="the agent online",
    )
    status.close()


class Console:
    """Publishes commands as the console does, and collects the replies."""

    def __init__(self, port: int) -> None:
        self.replies = Subscriber(port, REPLY, client_id="console-replies")
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="console-1", protocol=mqtt.MQTTv5
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.count = 0

    def send(
        self, name: str, payload: bytes, retain: bool = False, reply: bool = True
    ) -> dict[str, object] | None:
        self.count += 1
        correlation = f"req-{self.count}".encode()
        props = Properties(PacketTypes.PUBLISH)
        if reply:
            props.ResponseTopic = REPLY
            props.CorrelationData = correlation
        self.client.publish(
            f"{PREFIX}/cmd/{name}", payload, qos=1, retain=retain, properties=props
        ).wait_for_publish(5)
        if not reply:
            return None
        self.replies.wait_for(
            lambda ms: any(
                getattr(m.properties, "CorrelationData", None) == correlation for m in ms
            ),
            what=f"the reply to {name}",
        )
        message = next(
            m
            for m in self.replies.messages
            if getattr(m.properties, "CorrelationData", None) == correlation
        )
        return dict(json.loads(message.payload))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
        self.replies.close()


def command(
    name: str,
    args: dict[str, object] | None = None,
    key: Ed25519PrivateKey = COMMANDS_KEY,
    **kw: object,
) -> bytes:
    return sign(
        key,
        device="gate-1f-east",
        name=name,
        args=args if args is not None else {"door": "gate-east"},
        issued_by="console:guard1",
        **kw,
    )  # type: ignore[arg-type]


def test_commands_are_answered_and_every_refusal_is_recorded(
    tmp_path: Path, broker: Broker, device: SimDevice
) -> None:
    agent = AgentProcess(device, tmp_path)
    wait_online(broker.port)
    console = Console(broker.port)
    recorded = Subscriber(broker.port, f"{PREFIX}/events/command", client_id="collector")
    try:
        ok = console.send("unlock", command("unlock"))
        assert ok is not None
        assert (ok["ok"], ok["reason"]) == (True, "accepted")
        assert ok["result"] == {"door": "gate-east", "unlocked": True, "mode": "normal"}
        assert agent.request(op="relay", door="gate-east")["unlocked"] is True
        replayed = command("ping", {})
        pong = console.send("ping", replayed)
        assert pong is not None
        assert pong["reason"] == "accepted"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", pong["result"]["pong"])
        cases = {
            "replayed": ("ping", replayed),
            "unsigned": (
                "unlock",
                json.dumps({**json.loads(command("unlock")), "signature": ""}).encode(),
            ),
            "bad_signature": ("unlock", command("unlock", key=Ed25519PrivateKey.generate())),
            "expired": ("unlock", command("unlock", now=datetime.now(UTC) - timedelta(minutes=2))),
            "unknown_command": ("open-sesame", command("unlock")),
            "malformed": ("unlock", b"{not json"),
            "unknown_door": ("unlock", command("unlock", {"door": "vault"})),
        }
        for reason, (name, payload) in cases.items():
            reply = console.send(name, payload)
            assert reply is not None
            assert (reply["ok"], reply["reason"]) == (False, reason), reply
        assert (
            agent.request(op="tap", reader="gate-east-out", technology="felica", id=felica(2))[
                "decision"
            ]
            == "granted"
        )
        recorded.wait_for(lambda ms: len(ms) >= 2 + len(cases), what="every command event")
    finally:
        console.close()
        assert agent.terminate() == 0
    events = recorded.payloads()
    refused = [e["reason"] for e in events if e["type"] == "refused"]
    assert sorted(refused) == sorted(cases)  # type: ignore[type-var]
    assert [e["command"] for e in events if e["type"] == "accepted"] == ["unlock", "ping"]
    recorded.close()


def test_a_retained_command_is_never_executed(
    tmp_path: Path, broker: Broker, device: SimDevice
) -> None:
    console = Console(broker.port)
    console.send("unlock", command("unlock"), retain=True, reply=False)
    # Listen before the agent starts: on a busy machine it refuses the retained command and
    # reports it before a subscriber that came later would be there to hear it.
    sub = Subscriber(broker.port, f"{PREFIX}/events/command", client_id="watch")
    agent = AgentProcess(device, tmp_path)
    try:
        sub.wait_for(lambda ms: len(ms) >= 1, what="the command event")
        event = json.loads(sub.messages[0].payload)
        assert (event["type"], event["reason"]) == ("refused", "retained")
        assert agent.request(op="relay", door="gate-east")["unlocked"] is False
        sub.close()
    finally:
        console.close()
        agent.terminate()


def test_a_command_published_retained_while_the_agent_is_connected_is_refused(
    tmp_path: Path, broker: Broker, device: SimDevice
) -> None:
    # MQTT 5 clears the retain flag on delivery to an existing subscription unless it asked
    # for retain-as-published: the agent must still see that the command was retained.
    agent = AgentProcess(device, tmp_path)
    wait_online(broker.port)
    console = Console(broker.port)
    try:
        reply = console.send("unlock", command("unlock"), retain=True)
        assert reply is not None
        assert (reply["ok"], reply["reason"]) == (False, "retained")
        assert agent.request(op="relay", door="gate-east")["unlocked"] is False
        live = console.send("unlock", command("unlock"))  # the same command, not retained
        assert live is not None
        assert (live["ok"], live["reason"]) == (True, "accepted")
    finally:
        console.close()
        assert agent.terminate() == 0


def test_huge_or_deep_commands_are_refused_as_malformed_and_the_agent_goes_on(
    tmp_path: Path, broker: Broker, device: SimDevice
) -> None:
    agent = AgentProcess(device, tmp_path)
    wait_online(broker.port)
    console = Console(broker.port)
    try:
        for payload in (
            b"{" + b" " * 4_000_000 + b"}",
            b"[" * 4000,
            b'{"name": "unlock"' + b"}" * 9,
        ):
            reply = console.send("unlock", payload)
            assert reply is not None
            assert (reply["ok"], reply["reason"]) == (False, "malformed"), reply
            assert len(str(reply["detail"])) <= 200
        ok = console.send("unlock", command("unlock"))
        assert ok is not None
        assert ok["reason"] == "accepted"
    finally:
        console.close()
        assert agent.terminate() == 0
    log = agent.log()
    assert "Traceback" not in log
    assert "internal_error" not in log
    assert log.count("refused: malformed") == 3  # one line each


def snapshot(version: int, cards: range, lost: range = range(0)) -> bytes:
    refs = {n: card_reference(KEY, "felica", felica(n)) for n in [*cards, *lost]}
    return build(
        CREDENTIALS_KEY,
        site="kamakura-city-hall",
        device="gate-1f-east",
        version=version,
        policy=AccessPolicy(rules=(Rule("staff", frozenset({"gate-east"})),)),
        credentials=[Credential(refs[n], frozenset({"staff"})) for n in cards],
        deny={refs[n]: DenyReason.LOST for n in lost},
    )


def test_credentials_over_mqtt_revoke_a_card_at_the_next_tap(
    tmp_path: Path, broker: Broker, device: SimDevice
) -> None:
    # Taps 0.2 s apart must each count: a short debounce window for this test's readers.
    text = device.config.read_text().replace('kind = "sim"', 'kind = "sim"\ndebounce_s = 0.1')
    device.config.write_text(text)
    publisher = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="provisioning", protocol=mqtt.MQTTv5
    )
    publisher.connect("127.0.0.1", broker.port)
    publisher.loop_start()
    publisher.publish(
        f"{PREFIX}/credentials", snapshot(10, range(3)), qos=1, retain=True
    ).wait_for_publish(5)
    status = Subscriber(broker.port, f"{PREFIX}/status", client_id="status")
    agent = AgentProcess(device, tmp_path)
    try:
        status.wait_for(
            lambda ms: any(
                json.loads(m.payload).get("credentials", {}).get("version") == 10
                for m in ms
                if m.payload
            ),
            timeout_s=40,
            what="v10 in the status",
        )
        assert (
            agent.request(op="tap", reader="gate-east-in", technology="felica", id=felica(1))[
                "decision"
            ]
            == "granted"
        )
        publisher.publish(
            f"{PREFIX}/credentials", snapshot(11, range(2, 3), lost=range(1, 2)), qos=1, retain=True
        ).wait_for_publish(5)
        # The device says in its retained status when it runs v11; the next tap is then denied.
        status.wait_for(
            lambda ms: any(
                m.payload and json.loads(m.payload).get("credentials", {}).get("version") == 11
                for m in ms
            ),
            what="v11 in the status",
        )
        reply = agent.request(op="tap", reader="gate-east-out", technology="felica", id=felica(1))
        assert reply["reason"] == "revoked"
        older = snapshot(9, range(5))
        sub = Subscriber(broker.port, f"{PREFIX}/events/system", client_id="sys")  # before
        publisher.publish(f"{PREFIX}/credentials", older, qos=1, retain=True).wait_for_publish(5)
        sub.wait_for(
            lambda ms: any(b"credentials_refused" in m.payload for m in ms),
            what="the older snapshot refused",
        )
        assert b"older than v11" in next(
            m.payload for m in sub.messages if b"credentials_refused" in m.payload
        )
        sub.close()
    finally:
        publisher.loop_stop()
        status.close()
        agent.terminate()
