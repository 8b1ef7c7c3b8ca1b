"""A gate cut off from its peers, through the whole agent: mock pins, simulated readers, the
store, a fake clock moved past the grace period, and a link whose connected flag the test sets
and clears (the loop reads it once a turn)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.app import build_agent
from edge.connection import Connection, Offline
from edge.core.cutoff import PEERS_LOST_AFTER_S
from edge.core.events import PeersReachable, Tick
from edge.inbox import Inbox
from firmware_config.loader import load_config
from simulator.clock import FakeClock
from simulator.pins import WatchedFactory, idle_inputs
from simulator.readers import SimCardReader

from .agent_fixtures import enrol, felica, keep_readers, sim_config
from .test_runtime import GATE_CONTACT, GATE_EXIT, outbox


class FakeLink(Offline):
    """An uplink with the MQTT link's `connected` flag and nothing else."""

    def __init__(self) -> None:
        self.connected = threading.Event()


class Gate:
    """The example gate on a fake clock, its staff area's offline fallback as given."""

    def __init__(self, tmp_path: Path, offline: str | None, link: FakeLink | None) -> None:
        device = sim_config(tmp_path)
        text = device.config.read_text(encoding="utf-8")
        if offline is not None:
            text = text.replace(
                'anti_passback = "hard"\n',
                f'anti_passback = "hard"\nanti_passback_offline = "{offline}"\n',
                1,
            )
        text = text.replace('id = "gate-east-in"\n', 'id = "gate-east-in"\ndebounce_s = 0.0\n', 1)
        device.config.write_text(text, encoding="utf-8")
        enrol(device.store, range(3), ["gate-east"])
        self.clock = FakeClock(datetime.now(UTC))
        self.factory = WatchedFactory()
        self.readers: dict[str, SimCardReader] = {}
        config = load_config(device.config)

        reader_factory = keep_readers(self.readers)

        connection = None if link is None else Connection(Inbox(), link, keys=None)
        self.agent, startup = build_agent(
            config,
            card_key=device.key,
            pin_factory=self.factory,
            clock=self.clock,
            reader_factory=reader_factory,
            connection=connection,
        )
        self.store = device.store
        idle_inputs(self.factory, config)
        self._changed = threading.Condition()
        self.handled: list[object] = []
        self.agent.when_processed(self._processed)
        self.agent.start(startup)
        self.thread = threading.Thread(target=self.agent.run, daemon=True)
        self.thread.start()
        self.settle()  # a start after the forgive time forgives at the first tick

    def _processed(self, event: object, outputs: object) -> None:
        with self._changed:
            self.handled.append(event)
            self._changed.notify_all()

    def settle(self) -> None:
        """Wait until everything queued so far is handled (a marker through the queue)."""
        marker = Tick()
        self.agent.emit(marker)
        with self._changed:
            assert self._changed.wait_for(lambda: any(e is marker for e in self.handled), timeout=5)

    def wait_link(self, up: bool) -> None:
        """Wait until the loop has told the core the link is `up`."""
        with self._changed:
            assert self._changed.wait_for(
                lambda: PeersReachable(up) in self.handled[-50:], timeout=5
            )
        self.handled.clear()

    def walk_in(self, card: int) -> dict[str, object]:
        """Tap `card` at the entry reader; walk through if granted; return the decision."""
        self.readers["gate-east-in"].tap("felica", felica(card))
        self.settle()
        decision = [e for e in outbox(self.store) if e["type"] in ("granted", "denied")][-1]
        if decision["type"] == "granted":
            self.factory.pin(GATE_CONTACT).drive_high()
            self.factory.pin(GATE_CONTACT).drive_low()
            self.settle()
        return decision

    def degraded(self) -> list[tuple[object, object]]:
        return [
            (e["zone"], e["state"])
            for e in outbox(self.store)
            if e["type"] == "anti_passback_degraded"
        ]

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(5)
        self.agent.close()


@pytest.fixture
def running(tmp_path: Path) -> Iterator[list[Gate]]:
    gates: list[Gate] = []
    yield gates
    for gate in gates:
        gate.stop()


def test_a_soft_zone_grants_while_cut_off_and_alarms_until_the_link_is_back(
    tmp_path: Path, running: list[Gate], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="edge.runtime")
    link = FakeLink()
    gate = Gate(tmp_path, "soft", link)
    running.append(gate)
    gate.wait_link(up=False)  # told at start: not connected yet
    link.connected.set()
    gate.wait_link(up=True)
    assert gate.walk_in(1)["reason"] == "granted"
    assert gate.walk_in(1)["reason"] == "anti_passback"
    link.connected.clear()
    gate.wait_link(up=False)
    gate.clock.advance(PEERS_LOST_AFTER_S - 1)
    gate.settle()
    assert gate.degraded() == []
    assert gate.walk_in(1)["reason"] == "anti_passback"  # within the grace period
    gate.clock.advance(1)
    gate.settle()
    assert gate.degraded() == [("staff-area", "raised")]
    second = gate.walk_in(1)
    assert (second["reason"], second["anti_passback_violation"]) == ("granted", True)
    link.connected.set()
    gate.wait_link(up=True)
    assert gate.degraded() == [("staff-area", "raised"), ("staff-area", "cleared")]
    assert gate.walk_in(1)["reason"] == "anti_passback"
    lines = [r.getMessage() for r in caplog.records if r.name == "edge.runtime"]
    assert lines == [
        "cut off from its peers (no broker for 10 s): anti-passback decides on this device's "
        "positions alone; soft fallback in staff-area",
        "hears its peers again",
    ]


def test_a_hard_zone_keeps_refusing_while_cut_off(tmp_path: Path, running: list[Gate]) -> None:
    link = FakeLink()
    gate = Gate(tmp_path, None, link)  # the default: hard
    running.append(gate)
    gate.wait_link(up=False)
    assert gate.walk_in(1)["reason"] == "granted"
    gate.clock.advance(PEERS_LOST_AFTER_S * 6)
    gate.settle()
    assert gate.walk_in(1)["reason"] == "anti_passback"
    assert gate.degraded() == []


def test_an_agent_alone_is_never_cut_off(tmp_path: Path, running: list[Gate]) -> None:
    gate = Gate(tmp_path, "soft", None)
    running.append(gate)
    assert gate.walk_in(1)["reason"] == "granted"
    gate.clock.advance(PEERS_LOST_AFTER_S * 6)
    gate.settle()
    assert gate.walk_in(1)["reason"] == "anti_passback"
    assert gate.degraded() == []
    assert not [e for e in gate.handled if isinstance(e, PeersReachable)]


def test_an_exit_button_opening_is_counted_and_stored(tmp_path: Path, running: list[Gate]) -> None:
    gate = Gate(tmp_path, None, None)
    running.append(gate)
    for card in (1, 2):
        assert gate.walk_in(card)["reason"] == "granted"
    counts = gate.agent.controller.counts
    assert counts.count("staff-area") == 2
    gate.factory.pin(GATE_EXIT).drive_low()  # pressed
    gate.factory.pin(GATE_EXIT).drive_high()
    gate.settle()
    assert counts.count("staff-area") == 2  # not opened yet: nobody left
    gate.factory.pin(GATE_CONTACT).drive_high()
    gate.factory.pin(GATE_CONTACT).drive_low()
    gate.settle()
    (exit_,) = [e for e in outbox(gate.store) if e["type"] == "button_exit"]
    assert (exit_["kind"], exit_["from_zone"], exit_["to_zone"]) == (
        "access",
        "staff-area",
        "lobby",
    )
    assert "card_ref" not in exit_
    assert counts.count("staff-area") == 1
    occupancy = [e for e in outbox(gate.store) if e["kind"] == "occupancy"]
    assert {(e["zone"], e["count"]) for e in occupancy[-2:]} == {("staff-area", 1), ("lobby", 1)}
