"""Card + PIN through the whole agent: simulated reader, a matrix keypad on mock pins, the
PIN worker, the store's outbox."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.cardref import card_references
from edge.core.credentials import Credential
from edge.core.events import PinChecked
from edge.core.policy import AccessPolicy, Rule
from edge.pin_hash import hash_pin
from edge.store import Store
from edge.store.credentials import SqliteCredentials
from simulator.keypad import SimulatedMatrix
from simulator.pins import WatchedFactory

from .agent_fixtures import KEY, felica, sim_config, with_keypad
from .test_runtime import GATE_RELAY, Running, outbox

ROWS, COLS = (2, 3, 4, 7), (8, 9, 10)
PIN = hash_pin("2580", "2581")


class PinAgent:
    """The agent, its keypad wiring, and a wait for PIN answers."""

    def __init__(self, tmp_path: Path) -> None:
        device = sim_config(tmp_path)
        with_keypad(device, ROWS, COLS)
        (ref,) = card_references(KEY, [("felica", felica(1))])
        policy = AccessPolicy(version=1, rules=(Rule("staff", frozenset({"gate-east"})),))
        with Store(device.store) as store, store.transaction():
            SqliteCredentials(store.db).replace(
                policy, [Credential(ref, frozenset({"staff"}), pin=PIN)], {}
            )
        factory = WatchedFactory()
        self.keypad = SimulatedMatrix(factory, ROWS, COLS)
        self.running = Running(device, factory)
        self.answers = 0
        self._answered = threading.Condition()
        self.running.agent.when_processed(self._processed)

    def _processed(self, event: object, outputs: object) -> None:
        if isinstance(event, PinChecked):
            with self._answered:
                self.answers += 1
                self._answered.notify_all()

    def tap_and_key(self, digits: str) -> None:
        before = self.answers
        self.running.readers["gate-east-in"].tap("felica", felica(1))
        self.running.settle()
        self.keypad.type(digits + "#")
        with self._answered:
            assert self._answered.wait_for(lambda: self.answers > before, timeout=10)

    def events(self) -> list[dict[str, object]]:
        return outbox(self.running.agent.store.path)


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[PinAgent]:
    agent = PinAgent(tmp_path)
    yield agent
    agent.running.stop()


def test_right_pin_opens_the_door(gate: PinAgent) -> None:
    relay = gate.running.factory.pin(GATE_RELAY)
    gate.tap_and_key("2580")
    assert gate.running.factory.wait_for(lambda: relay.state is True)
    (access,) = [e for e in gate.events() if e["kind"] == "access"]
    assert access["type"] == "granted"


def test_wrong_then_duress(gate: PinAgent) -> None:
    relay = gate.running.factory.pin(GATE_RELAY)
    gate.tap_and_key("1111")
    assert relay.state is False
    gate.tap_and_key("2581")
    assert gate.running.factory.wait_for(lambda: relay.state is True)
    events = gate.events()
    access = [(e["type"], e["reason"]) for e in events if e["kind"] == "access"]
    assert access == [("denied", "wrong_pin"), ("granted", "granted")]
    alarms = [e for e in events if e["kind"] == "alarm" and e["type"] != "credentials_stale"]
    assert [(e["type"], e["reader"]) for e in alarms] == [("duress", "gate-east-in")]
    assert not [e for e in events if {"digits", "pin"} & set(e)]
