"""The control's `tap` with a PIN: keyed on a simulated keypad the agent itself scans."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.app import build_agent
from edge.cardref import card_references
from edge.core.credentials import Credential
from edge.core.policy import AccessPolicy, Rule
from edge.pin_hash import hash_pin
from edge.store import Store
from edge.store.credentials import SqliteCredentials
from edge.system import SystemClock
from firmware_config.loader import load_config
from simulator.control import Control
from simulator.pins import WatchedFactory, idle_inputs
from tests.edge.agent_fixtures import KEY, felica, sim_config, with_keypad
from tests.edge.test_runtime import outbox

ROWS, COLS = (2, 3, 4, 7), (8, 9, 10)
PIN, DURESS = "2580", "2581"


class Gate:
    """An agent on mock pins driven through a Control, as `simulator.agent` does."""

    def __init__(self, tmp_path: Path) -> None:
        device = sim_config(tmp_path)
        with_keypad(device, ROWS, COLS)
        refs = card_references(KEY, [("felica", felica(1)), ("felica", felica(2))])
        policy = AccessPolicy(version=1, rules=(Rule("staff", frozenset({"gate-east"})),))
        with Store(device.store) as store, store.transaction():
            SqliteCredentials(store.db).replace(
                policy,
                [
                    Credential(refs[0], frozenset({"staff"}), pin=hash_pin(PIN, DURESS)),
                    Credential(refs[1], frozenset({"staff"})),  # no PIN enrolled
                ],
                {},
            )
        config = load_config(device.config)
        factory = WatchedFactory()
        self.control = Control(factory, config)
        self.agent, startup = build_agent(
            config,
            card_key=device.key,
            pin_factory=factory,
            clock=SystemClock(),
            reader_factory=self.control.reader_factory,
        )
        idle_inputs(factory, config)
        self.agent.start(startup)
        self.control.attach(self.agent)
        self.thread = threading.Thread(target=self.agent.run, daemon=True)
        self.thread.start()

    def tap(self, card: int, **extra: Any) -> dict[str, Any]:
        body = {"op": "tap", "reader": "gate-east-in", "technology": "felica", "id": felica(card)}
        return self.control.request({**body, **extra})

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(5)
        self.agent.close()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Gate]:
    running = Gate(tmp_path)
    yield running
    running.stop()


def test_the_right_pin_is_keyed_after_the_card_and_the_door_opens(gate: Gate) -> None:
    assert list(gate.control.keypads) == ["gate-east-in"]
    reply = gate.tap(1, pin=PIN)
    assert (reply["ok"], reply["counted"], reply["decision"], reply["reason"]) == (
        True,
        True,
        "granted",
        "granted",
    )
    assert [door for _, door, unlocked in reply["relays"] if unlocked] == ["gate-east"]


def test_a_duress_pin_opens_as_usual_and_raises_the_silent_alarm(gate: Gate) -> None:
    reply = gate.tap(1, pin=DURESS)
    assert (reply["decision"], reply["reason"]) == ("granted", "granted")
    assert [door for _, door, unlocked in reply["relays"] if unlocked] == ["gate-east"]
    events = outbox(gate.agent.store.path)
    assert [(e["type"], e["reader"]) for e in events if e["type"] == "duress"] == [
        ("duress", "gate-east-in")
    ]
    assert not [e for e in events if {"digits", "pin"} & set(e)]


def test_a_wrong_pin_a_missing_pin_and_a_card_without_one(gate: Gate) -> None:
    reply = gate.tap(1, pin="1111")
    assert (reply["decision"], reply["reason"]) == ("denied", "wrong_pin")
    reply = gate.tap(1)  # asked for a PIN, none given: the agent's timeout decides later
    assert (reply["decision"], reply["reason"]) == (None, "pin_wanted")
    reply = gate.tap(2, pin=PIN)  # decided without asking: nothing is keyed
    assert (reply["decision"], reply["reason"]) == ("denied", "no_pin")
