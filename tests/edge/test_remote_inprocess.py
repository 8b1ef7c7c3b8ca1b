"""Malformed or hostile inbound messages are refused and recorded; the loop keeps running."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.cardref import card_reference
from edge.commands import sign
from edge.connection import Connection, Offline, RemoteKeys
from edge.core.clock import utc_text
from edge.core.credentials import Credential, DenyReason
from edge.core.events import FireInputChanged
from edge.core.policy import AccessPolicy, Rule
from edge.inbox import MAX_INBOUND, Inbox
from edge.link.messages import InboundMessage
from edge.snapshot import build
from firmware_config.loader import load_config

from .agent_fixtures import COMMANDS_KEY, CREDENTIALS_KEY, KEY, enrol, felica, sim_config
from .test_runtime import Running, outbox

PREFIX = "edge/kamakura-city-hall/gate-1f-east"


def remote_side(replies: Offline | None = None, worker: bool = False) -> Connection:
    """An agent's network side with the test keys, its replies collected, and no broker."""
    keys = RemoteKeys(commands=COMMANDS_KEY.public_key(), credentials=CREDENTIALS_KEY.public_key())
    return Connection(Inbox(), replies or Offline(), keys, worker=worker)


def test_a_signed_snapshot_with_a_duplicate_card_is_refused_and_the_agent_goes_on(
    tmp_path: Path,
) -> None:
    device = sim_config(tmp_path)
    enrol(device.store, range(3), ["gate-east"])
    running = Running(device, connection=remote_side())
    try:
        ref = card_reference(KEY, "felica", felica(1))
        twice = [Credential(ref, frozenset({"staff"})), Credential(ref, frozenset({"staff"}))]
        data = build(
            CREDENTIALS_KEY,
            site="kamakura-city-hall",
            device="gate-1f-east",
            version=9,
            policy=AccessPolicy(rules=(Rule("staff", frozenset({"gate-east"})),)),
            credentials=twice,
            deny={},
        )
        running.agent.emit(InboundMessage(f"{PREFIX}/credentials", data, retained=True))
        running.settle()
        running.readers["gate-east-in"].tap("felica", felica(2))
        running.settle()
        events = outbox(device.store)
        refused = [e for e in events if e["type"] == "credentials_refused"]
        assert len(refused) == 1
        assert "UNIQUE" in str(refused[0]["detail"])
        assert [e["reason"] for e in events if e["type"] == "granted"] == [
            "granted"
        ]  # old set still works
        assert running.thread.is_alive()
    finally:
        running.stop()


def test_an_oversized_command_is_refused_without_parsing(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    running = Running(device, connection=remote_side())
    try:
        running.agent.emit(
            InboundMessage(f"{PREFIX}/cmd/unlock", b"{" + b" " * 100_000 + b"}", retained=False)
        )
        running.settle()
        (event,) = [e for e in outbox(device.store) if e["kind"] == "command"]
        assert (event["reason"], len(str(event["detail"])) < 200) == ("malformed", True)
    finally:
        running.stop()


def test_a_flood_of_network_messages_cannot_starve_the_doors(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    enrol(device.store, range(3), ["gate-east"])
    running = Running(device, connection=remote_side())
    try:
        running.agent.stop()  # hold the loop so the messages pile up
        running.thread.join(5)
        for _ in range(MAX_INBOUND + 500):
            running.agent.emit(InboundMessage(f"{PREFIX}/cmd/ping", b"{}", retained=False))
        assert running.agent.inbound_dropped == 500
        assert running.agent.events.qsize() == MAX_INBOUND
        running.readers["gate-east-in"].tap("felica", felica(1))  # a door event still queues
        assert running.agent.events.qsize() == MAX_INBOUND + 1
    finally:
        running.agent.close()


def test_snapshots_are_applied_off_the_loop_and_refusals_still_recorded(tmp_path: Path) -> None:

    device = sim_config(tmp_path)
    enrol(device.store, range(3), ["gate-east"])
    running = Running(device, connection=remote_side(worker=True))
    policy = AccessPolicy(rules=(Rule("staff", frozenset({"gate-east"})),))
    refs = {n: card_reference(KEY, "felica", felica(n)) for n in range(3)}
    try:
        good = build(
            CREDENTIALS_KEY,
            site="kamakura-city-hall",
            device="gate-1f-east",
            version=7,
            policy=policy,
            credentials=[Credential(refs[2], frozenset({"staff"}))],
            deny={refs[1]: DenyReason.LOST},
        )
        dup = build(
            CREDENTIALS_KEY,
            site="kamakura-city-hall",
            device="gate-1f-east",
            version=8,
            policy=policy,
            credentials=[Credential(refs[2], frozenset({"staff"}))] * 2,
            deny={},
        )
        running.agent.emit(InboundMessage(f"{PREFIX}/credentials", good, retained=True))
        deadline = time.monotonic() + 10
        while not any(e["type"] == "credentials_applied" for e in outbox(device.store)):
            assert time.monotonic() < deadline, "the worker never applied the snapshot"
            running.settle()
        running.readers["gate-east-in"].tap("felica", felica(1))
        running.settle()
        assert [e["reason"] for e in outbox(device.store) if e["kind"] == "access"][-1] == "revoked"
        running.agent.emit(InboundMessage(f"{PREFIX}/credentials", dup, retained=True))
        while not any(e["type"] == "credentials_refused" for e in outbox(device.store)):
            assert time.monotonic() < deadline, "the refusal was never recorded"
            running.settle()
    finally:
        running.stop()


class Replies(Offline):
    """Collects what the agent would publish to a response topic."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, dict[str, object]]] = []

    def reply(self, topic: str, correlation: bytes | None, payload: bytes) -> None:
        self.sent.append((topic, correlation, json.loads(payload)))


def signed_unlock() -> bytes:
    return sign(
        COMMANDS_KEY,
        device="gate-1f-east",
        name="unlock",
        args={"door": "gate-east"},
        issued_by="console:guard1",
    )


@pytest.mark.parametrize("level", ["UNLOCK", "ｕｎｌｏｃｋ", "", "unlock-now", "Unlock"])
def test_a_signed_unlock_on_a_level_that_is_not_its_name_is_refused(
    tmp_path: Path, level: str
) -> None:
    device = sim_config(tmp_path)
    replies = Replies()
    running = Running(device, connection=remote_side(replies))
    try:
        running.agent.emit(
            InboundMessage(
                f"{PREFIX}/cmd/{level}",
                signed_unlock(),
                retained=False,
                response_topic=f"{PREFIX}/reply/console-1",
                correlation=b"req-1",
            )
        )
        running.settle()
        assert running.agent.controller.doors["gate-east"].unlocked is False
        (event,) = [e for e in outbox(device.store) if e["kind"] == "command"]
        assert (event["type"], event["reason"]) == ("refused", "unknown_command")
        ((_topic, correlation, body),) = replies.sent
        assert (correlation, body["ok"], body["reason"]) == (b"req-1", False, "unknown_command")
    finally:
        running.stop()


@pytest.mark.parametrize(
    "payload",
    [b"[" * 4000, b'{"name": "unlock", "args": ' + b"[" * 4000 + b"]" * 4000 + b"}"],
    ids=["4000-brackets", "deep-args"],
)
def test_deep_json_is_refused_as_malformed_with_a_reply_and_one_log_line(
    tmp_path: Path, payload: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    device = sim_config(tmp_path)
    replies = Replies()
    running = Running(device, connection=remote_side(replies))
    try:
        with caplog.at_level(logging.INFO):
            running.agent.emit(
                InboundMessage(
                    f"{PREFIX}/cmd/unlock",
                    payload,
                    retained=False,
                    response_topic=f"{PREFIX}/reply/console-1",
                    correlation=b"req-2",
                )
            )
            running.settle()
        events = outbox(device.store)
        assert not [e for e in events if e["type"] == "internal_error"]
        (event,) = [e for e in events if e["kind"] == "command"]
        assert event["reason"] == "malformed"
        ((_, _, body),) = replies.sent
        assert body["reason"] == "malformed"
        lines = [r for r in caplog.records if r.name.startswith("edge.")]
        assert len(lines) == 1, [r.getMessage() for r in lines]
        assert lines[0].exc_info is None
        assert "\n" not in lines[0].getMessage()
    finally:
        running.stop()


def test_a_fire_reset_while_the_fire_input_is_active_is_answered_refused(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    replies = Replies()
    running = Running(device, connection=remote_side(replies))

    def fire_reset(correlation: bytes) -> None:
        envelope = sign(
            COMMANDS_KEY, device="gate-1f-east", name="fire-reset", issued_by="console:boss"
        )
        running.agent.emit(
            InboundMessage(
                f"{PREFIX}/cmd/fire-reset",
                envelope,
                retained=False,
                response_topic=f"{PREFIX}/reply/console-1",
                correlation=correlation,
            )
        )
        running.settle()

    try:
        running.agent.emit(FireInputChanged("gate-east", active=True))
        fire_reset(b"while-active")
        running.agent.emit(FireInputChanged("gate-east", active=False))
        fire_reset(b"after")
        (_, first, refused), (_, second, accepted) = replies.sent
        assert (first, refused["ok"], refused["reason"]) == (b"while-active", False, "refused")
        assert refused["detail"].startswith("the fire input is still active (gate-east)")
        assert (second, accepted["ok"], accepted["reason"]) == (b"after", True, "accepted")
        events = outbox(device.store)
        commands = [(e["type"], e["reason"]) for e in events if e["kind"] == "command"]
        assert commands == [("refused", "refused"), ("accepted", "accepted")]
        assert [e["type"] for e in events if e["type"].startswith("fire_reset")] == [
            "fire_reset_refused",
            "fire_reset",
        ]
    finally:
        running.stop()


def test_a_signed_forgive_lets_a_card_in_again_and_is_recorded_with_its_reply(
    tmp_path: Path,
) -> None:
    device = sim_config(tmp_path)
    replies = Replies()
    running = Running(device, connection=remote_side(replies))
    card = "e" * 64
    zone = "staff-area"  # the example gate's inside zone

    def forgive(correlation: bytes) -> dict[str, object]:
        envelope = sign(
            COMMANDS_KEY,
            device="gate-1f-east",
            name="forgive",
            args={"card_ref": card},
            issued_by="console:boss",
        )
        running.agent.emit(
            InboundMessage(
                f"{PREFIX}/cmd/forgive",
                envelope,
                retained=False,
                response_topic=f"{PREFIX}/reply/console-1",
                correlation=correlation,
            )
        )
        running.settle()
        return replies.sent[-1][2]

    try:
        running.settle()  # the zone's daily forgiveness, if due, happens first
        now = utc_text(datetime.now(UTC))
        assert running.agent.controller.passback.merge(
            card, zone, (now, "a-peer", 1)
        )  # sorts before this device: the forgiveness stamped in the same ms wins
        first = forgive(b"one")
        assert (first["ok"], first["result"]) == (
            True,
            {"had_position": True, "was_in": zone, "forgiven": True},
        )
        assert running.agent.controller.passback.position(card) is None
        second = forgive(b"two")
        assert second["result"] == {"had_position": False, "was_in": None, "forgiven": True}
        events = outbox(device.store)
        forgiven = [e for e in events if e["type"] == "anti_passback_card_forgiven"]
        assert [(e["card_ref"], e["by"], e["was_in"]) for e in forgiven] == [
            (card, "console:boss", zone),
            (card, "console:boss", None),
        ]
        commands = [(e["command"], e["type"]) for e in events if e["kind"] == "command"]
        assert commands == [("forgive", "accepted"), ("forgive", "accepted")]
    finally:
        running.stop()


class ReplyWitness(Replies):
    """Notes, as each reply goes out, whether the relay is energised and the event stored."""

    def __init__(self, running: Running, device_store: Path, relay_pin: int) -> None:
        super().__init__()
        self.running = running
        self.store = device_store
        self.relay_pin = relay_pin
        self.seen: list[tuple[bool, list[str]]] = []

    def reply(self, topic: str, correlation: bytes | None, payload: bytes) -> None:
        super().reply(topic, correlation, payload)
        energised = bool(self.running.factory.pin(self.relay_pin).state)
        stored = [e["type"] for e in outbox(self.store) if e["kind"] == "command"]
        self.seen.append((energised, stored))


def test_a_command_is_answered_only_once_done_and_recorded(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    witness: list[ReplyWitness] = []

    class Late(Offline):
        def reply(self, topic: str, correlation: bytes | None, payload: bytes) -> None:
            witness[0].reply(topic, correlation, payload)

    running = Running(device, connection=remote_side(Late()))
    relay_pin = load_config(device.config).doors[0].relay.pin
    witness.append(ReplyWitness(running, device.store, relay_pin))
    try:
        running.agent.emit(
            InboundMessage(
                f"{PREFIX}/cmd/unlock",
                signed_unlock(),
                retained=False,
                response_topic=f"{PREFIX}/reply/console-1",
                correlation=b"req-1",
            )
        )
        running.settle()
        ((_topic, _correlation, body),) = witness[0].sent
        assert body["result"]["unlocked"] is True
        # When the console hears "unlocked", the relay is energised and the event stored.
        assert witness[0].seen == [(True, ["accepted"])]
    finally:
        running.stop()
