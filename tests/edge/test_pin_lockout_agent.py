"""PIN lockout through the whole agent: a matrix keypad on mock pins, the PIN worker, the store,
and a fake clock the test moves past the lockout."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.app import build_agent
from edge.cardref import card_references
from edge.core.credentials import Credential
from edge.core.events import CardPresented, PinChecked
from edge.core.policy import AccessPolicy, Rule
from edge.pin_hash import hash_pin
from edge.store import Store
from edge.store.credentials import SqliteCredentials
from firmware_config.loader import load_config
from simulator.clock import FakeClock
from simulator.keypad import SimulatedMatrix
from simulator.pins import WatchedFactory, idle_inputs
from simulator.readers import SimCardReader

from .agent_fixtures import KEY, felica, keep_readers, sim_config, with_keypad
from .test_runtime import GATE_RELAY, outbox

ROWS, COLS = (2, 3, 4, 7), (8, 9, 10)
LOCKOUT_S = 120


class LockoutGate:
    """The gate's agent on a fake clock, its entry reader asking every card for a PIN."""

    def __init__(self, tmp_path: Path) -> None:
        device = sim_config(tmp_path)
        with_keypad(device, ROWS, COLS)
        text = device.config.read_text(encoding="utf-8")
        text = text.replace('pin = "always"\n', f'pin = "always"\npin_lockout_s = {LOCKOUT_S}\n')
        device.config.write_text(text, encoding="utf-8")
        (ref,) = card_references(KEY, [("felica", felica(1))])
        policy = AccessPolicy(version=1, rules=(Rule("staff", frozenset({"gate-east"})),))
        with Store(device.store) as store, store.transaction():
            SqliteCredentials(store.db).replace(
                policy, [Credential(ref, frozenset({"staff"}), pin=hash_pin("2580"))], {}
            )
        self.clock = FakeClock(datetime.now(UTC))
        self.factory = WatchedFactory()
        self.keypad = SimulatedMatrix(self.factory, ROWS, COLS)  # wired before the agent's scan
        self.readers: dict[str, SimCardReader] = {}
        config = load_config(device.config)

        reader_factory = keep_readers(self.readers)

        self.agent, startup = build_agent(
            config,
            card_key=device.key,
            pin_factory=self.factory,
            clock=self.clock,
            reader_factory=reader_factory,
        )
        idle_inputs(self.factory, config)
        self.decided = 0
        self._changed = threading.Condition()
        self.agent.when_processed(self._processed)
        self.agent.start(startup)
        self.thread = threading.Thread(target=self.agent.run, daemon=True)
        self.thread.start()

    def _processed(self, event: object, outputs: object) -> None:
        if isinstance(event, CardPresented | PinChecked):
            with self._changed:
                self.decided += 1
                self._changed.notify_all()

    def _wait(self, before: int, count: int) -> None:
        with self._changed:
            assert self._changed.wait_for(lambda: self.decided >= before + count, timeout=10)

    def tap_and_key(self, digits: str) -> None:
        """Tap the card, key `digits` and #, and wait until the PIN check is answered."""
        before = self.decided
        self.readers["gate-east-in"].tap("felica", felica(1))
        self._wait(before, 1)
        self.keypad.type(digits + "#")
        self._wait(before, 2)

    def tap(self) -> None:
        """Tap the card and wait until the agent has handled the tap."""
        before = self.decided
        self.readers["gate-east-in"].tap("felica", felica(1))
        self._wait(before, 1)

    def access(self) -> list[tuple[object, object]]:
        events = outbox(self.agent.store.path)
        return [(e["type"], e["reason"]) for e in events if e["kind"] == "access"]

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(5)
        self.agent.close()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[LockoutGate]:
    running = LockoutGate(tmp_path)
    yield running
    running.stop()


def test_wrong_pins_lock_the_card_out_until_the_lockout_is_over(gate: LockoutGate) -> None:
    relay = gate.factory.pin(GATE_RELAY)
    for _ in range(3):
        gate.tap_and_key("1111")
    alarms = [e for e in outbox(gate.agent.store.path) if e["type"] == "pin_attempts_exceeded"]
    assert [(a["reader"], a["lockout_s"]) for a in alarms] == [("gate-east-in", LOCKOUT_S)]

    gate.tap()  # the right PIN is not even asked for
    gate.keypad.type("2580#")
    gate.clock.advance(LOCKOUT_S - 1)
    gate.tap()
    assert relay.state is False
    assert gate.access() == [("denied", "wrong_pin")] * 3 + [("denied", "pin_locked_out")] * 2

    gate.clock.advance(1)
    gate.tap_and_key("2580")
    assert gate.factory.wait_for(lambda: relay.state is True)
    assert gate.access()[-1] == ("granted", "granted")
    assert not [e for e in outbox(gate.agent.store.path) if {"digits", "pin"} & set(e)]
