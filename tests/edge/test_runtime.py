"""The agent in one process: simulated readers and gpiozero's MockFactory pins, a real store."""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gpiozero import DigitalInputDevice, OutputDevice

from edge.app import build_agent
from edge.connection import Connection
from edge.core.door import DoorMode
from edge.core.events import SetLockdown, Tick
from edge.runtime import Agent
from edge.system import SystemClock
from firmware_config.loader import load_config
from simulator.pins import WatchedFactory, idle_inputs
from simulator.readers import SimCardReader

from .agent_fixtures import SimDevice, enrol, felica, keep_readers, sim_config

GATE_RELAY, GATE_CONTACT, GATE_EXIT = 17, 27, 22
STAIR_RELAY_FIRE = None


class Running:
    """An agent running its loop on a thread, with its mock pins and simulated readers."""

    def __init__(
        self,
        device: SimDevice,
        factory: WatchedFactory | None = None,
        connection: Connection | None = None,
    ) -> None:
        self.factory = factory or WatchedFactory()
        self.readers: dict[str, SimCardReader] = {}
        config = load_config(device.config)

        reader_factory = keep_readers(self.readers)

        self.agent, startup = build_agent(
            config,
            card_key=device.key,
            pin_factory=self.factory,
            clock=SystemClock(),
            reader_factory=reader_factory,
            connection=connection,
        )
        idle_inputs(self.factory, config)
        self.processed = threading.Condition()
        self.seen: set[int] = set()
        self.markers: list[Tick] = []
        self.agent.when_processed(self._processed)
        self.agent.start(startup)
        self.thread = threading.Thread(target=self.agent.run, daemon=True)
        self.thread.start()

    def _processed(self, event: object, outputs: object) -> None:
        if not any(event is m for m in self.markers):
            return
        with self.processed:
            self.seen.add(id(event))
            self.processed.notify_all()

    def settle(self) -> None:
        """Wait until everything queued so far is handled: a marker goes through the FIFO."""
        marker = Tick()
        self.markers.append(marker)  # keeps its id unique while we wait
        self.agent.emit(marker)
        with self.processed:
            assert self.processed.wait_for(lambda: id(marker) in self.seen, timeout=5)

    def stop(self) -> None:
        self.agent.stop()
        self.thread.join(5)
        self.agent.close()


@pytest.fixture
def gate(tmp_path: Path) -> Iterator[Running]:
    device = sim_config(tmp_path)
    enrol(device.store, range(10), ["gate-east"], lost=range(100, 101))
    running = Running(device)
    yield running
    running.stop()


def outbox(db_path: Path) -> list[dict[str, object]]:
    with sqlite3.connect(db_path) as conn:
        return [json.loads(p) for (p,) in conn.execute("SELECT payload FROM outbox ORDER BY seq")]


def test_a_granted_tap_energises_the_strike_and_the_door_relocks(gate: Running) -> None:
    relay = gate.factory.pin(GATE_RELAY)
    assert relay.state is False  # fail-secure strike: de-energised is locked
    gate.readers["gate-east-in"].tap("felica", felica(1))
    gate.settle()
    assert relay.state is True
    gate.factory.pin(GATE_CONTACT).drive_high()  # the door opens
    gate.settle()
    gate.factory.pin(GATE_CONTACT).drive_low()
    gate.settle()
    assert relay.state is False
    types = [(e["kind"], e["type"]) for e in outbox(gate.agent.store.path)]
    assert ("access", "granted") in types
    assert ("access", "crossing") in types
    assert types.index(("door", "opened")) < types.index(("door", "closed"))


def test_events_carry_gap_free_seq_ids_and_no_raw_card_id(gate: Running) -> None:
    for n in (1, 2, 55):
        gate.readers["gate-east-in"].tap("felica", felica(n))
    gate.settle()
    events = outbox(gate.agent.store.path)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e["id"] == f"gate-1f-east:{e['seq']}" and e["v"] == 1 for e in events)
    text = Path(gate.agent.store.path).read_bytes()
    for n in (1, 2, 55):
        assert felica(n).encode() not in text
    reasons = [e["reason"] for e in events if e["kind"] == "access" and e["type"] != "crossing"]
    assert reasons == ["granted", "granted", "unknown_card"]


def test_a_lost_card_raises_an_alarm_and_stays_locked(gate: Running) -> None:
    gate.readers["gate-east-in"].tap("felica", felica(100))
    gate.settle()
    events = outbox(gate.agent.store.path)
    assert any(e["type"] == "lost_card_used" for e in events)
    assert gate.factory.pin(GATE_RELAY).state is False


def test_exit_button_unlocks(gate: Running) -> None:
    gate.factory.pin(GATE_EXIT).drive_low()  # pressed: pulled to ground
    gate.settle()
    assert gate.factory.pin(GATE_RELAY).state is True


def test_doors_keep_working_when_the_store_refuses_writes(gate: Running) -> None:
    gate.agent.store.db.execute("PRAGMA query_only = 1")  # real SQLite refusing every write
    gate.readers["gate-east-in"].tap("felica", felica(3))
    gate.settle()
    assert gate.factory.pin(GATE_RELAY).state is True
    gate.agent.store.db.execute("PRAGMA query_only = 0")


def test_modes_and_positions_survive_a_restart(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    enrol(device.store, range(5), ["gate-east"])
    first = Running(device)
    # A start after 03:00 local forgives anti-passback positions at the first tick: let it
    # happen before the tap, so the test means the same at any time of day.
    first.settle()
    first.readers["gate-east-in"].tap("felica", felica(1))
    first.settle()
    first.factory.pin(GATE_CONTACT).drive_high()
    first.factory.pin(GATE_CONTACT).drive_low()
    first.agent.emit(SetLockdown(True, by="test"))
    first.settle()
    first.stop()

    second = Running(device)
    try:
        assert second.agent.controller.doors["gate-east"].mode is DoorMode.LOCKDOWN
        assert second.agent.controller.counts.count("staff-area") == 1
        second.agent.emit(SetLockdown(False, by="test"))
        second.readers["gate-east-in"].tap("felica", felica(1))
        second.settle()
        last = [e for e in outbox(device.store) if e["kind"] == "access"][-1]
        assert last["reason"] == "anti_passback"  # still inside from before the restart
        seqs = [e["seq"] for e in outbox(device.store)]
        assert seqs == list(range(1, len(seqs) + 1))
    finally:
        second.stop()


def test_fire_releases_the_stairway_maglock(tmp_path: Path) -> None:
    device = sim_config(tmp_path, "stairway-door.toml")
    enrol(device.store, range(2), ["stair-b-2f"])
    config = load_config(device.config)
    door = config.doors[0]
    assert door.fire_input is not None
    running = Running(device)
    try:
        relay = running.factory.pin(door.relay.pin)
        assert relay.state is True  # fail-safe maglock: held by energising
        fire = running.factory.pin(door.fire_input.pin)
        fire.drive_high() if door.fire_input.alarm_when == "high" else fire.drive_low()
        running.settle()
        assert relay.state is False
    finally:
        running.stop()
    assert relay.state is False  # stopped: de-energised, the maglock's own fail state


def test_a_corrupt_store_is_moved_aside_with_an_alarm(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    device.store.write_bytes(b"this is not a database" * 100)
    running = Running(device)
    running.stop()
    aside = list(tmp_path.glob("agent.db.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes().startswith(b"this is not a database")
    first = outbox(device.store)[0]
    assert (first["type"], first["state"]) == ("store_corrupt", "raised")
    # Ids continue past anything the damaged file can hold: no id is ever reused.
    assert int(first["seq"]) > 1_700_000_000_000


def test_agent_repr_and_close_twice(gate: Running) -> None:
    assert "gate-1f-east" in repr(gate.agent)
    assert isinstance(gate.agent, Agent)


def wait_until(factory: WatchedFactory, predicate: Callable[[], bool]) -> bool:
    """Wait for a pin change that makes `predicate` true (gpiozero blinks on a thread)."""
    return factory.wait_for(predicate, timeout=5.0)


def test_reader_lights_and_buzzer_signal_grant_and_deny(gate: Running) -> None:
    green, red, buzzer = (gate.factory.pin(p) for p in (5, 6, 13))  # gate-east-in's indicator
    gate.readers["gate-east-in"].tap("felica", felica(2))
    gate.settle()
    assert wait_until(gate.factory, lambda: any(s.state for s in green.states))
    assert wait_until(gate.factory, lambda: any(s.state for s in buzzer.states))
    assert not any(s.state for s in red.states)
    gate.readers["gate-east-in"].tap("felica", felica(999))  # not enrolled
    gate.settle()
    assert wait_until(gate.factory, lambda: any(s.state for s in red.states))

    def beeps() -> int:
        states = buzzer.states
        return sum(1 for a, b in itertools.pairwise(states) if b.state and not a.state)

    assert wait_until(gate.factory, lambda: beeps() >= 3)  # one for the grant, two for the denial
    out_green = gate.factory.pin(19)  # the exit reader's lights stay dark
    assert not any(s.state for s in out_green.states)


def test_a_pin_that_cannot_be_claimed_is_an_alarm_and_the_rest_keeps_working(
    tmp_path: Path,
) -> None:
    device = sim_config(tmp_path)
    enrol(device.store, range(5), ["gate-east"])
    factory = WatchedFactory()
    squatters = [
        OutputDevice(GATE_RELAY, pin_factory=factory),
        DigitalInputDevice(GATE_CONTACT, pin_factory=factory),
    ]
    running = Running(device, factory)
    try:
        running.readers["gate-east-in"].tap("felica", felica(1))
        running.settle()
        events = outbox(device.store)
        faults = [e["detail"] for e in events if e["type"] == "hardware_fault"]
        assert len(faults) == 2
        assert any("lock relay on GPIO 17" in f for f in faults)
        assert any("contact of gate-east on GPIO 27" in f for f in faults)
        assert [e["reason"] for e in events if e["type"] == "granted"] == ["granted"]
        assert running.agent.relays["gate-east"].requests == ["unlock"]  # type: ignore[attr-defined]
    finally:
        running.stop()
        for squatter in squatters:
            squatter.close()


def test_a_tap_does_not_silence_an_alarm(gate: Running) -> None:
    buzzer = gate.factory.pin(13)
    gate.factory.pin(GATE_CONTACT).drive_high()  # forced open: the alarm sounds
    gate.settle()
    assert wait_until(gate.factory, lambda: buzzer.state is True)
    sounding_since = len(buzzer.states)
    gate.readers["gate-east-in"].tap("felica", felica(1))
    gate.settle()
    # The buzzer was never switched off by the grant: no low state since the alarm began.
    assert all(s.state for s in buzzer.states[sounding_since - 1 :])
    gate.factory.pin(GATE_CONTACT).drive_low()  # closed: the alarm clears
    gate.settle()
    assert wait_until(gate.factory, lambda: buzzer.state is False)


def test_an_alarm_raised_before_a_restart_is_cleared_then_raised_again_if_it_still_holds(
    tmp_path: Path,
) -> None:
    device = sim_config(tmp_path)
    first = Running(device)
    first.factory.pin(GATE_CONTACT).drive_high()  # forced open
    first.settle()
    first.stop()

    second = Running(device)  # idle_inputs: the door reads closed this time
    second.settle()
    second.stop()
    forced = [
        (e["state"], e.get("cause")) for e in outbox(device.store) if e["type"] == "door_forced"
    ]
    assert forced == [("raised", None), ("cleared", "restart")]
