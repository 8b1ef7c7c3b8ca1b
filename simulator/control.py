"""The simulated hardware of one agent, and the control requests that drive it.

Each request is a JSON object with an `op`; the reply is a JSON object with `ok`. With a
stepped clock (`simulator.agent --start`), a request may carry `at`: seconds since the
simulation's start. The agent's clock is first moved there, ticking the agent at every
timer it has pending (next_deadline) and at every minute (schedules), so a relock or a
held-open alarm happens at its own simulated time however fast the simulation runs.

A reader with a matrix keypad gets a simulated keypad wired to the same pins the agent
scans; a tap may carry `pin`, keyed there (then #) when the reader asks for it.

Every reply carries `relays`: the lock changes read back from the relays (gpiozero's
MockFactory) since the previous reply, as `[at, door, unlocked]`, so whoever drives the
agent keeps the hardware's own history even across a power cut.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from typing import Any

from gpiozero.pins.mock import MockFactory

from edge.core.events import Event, Tick
from edge.core.outputs import EventKind, EventRecord, Indicate, Output, Record, Signal
from edge.link.messages import InboundMessage, SnapshotResult
from edge.ports import CardKeys, CardReader, CardReferencer
from edge.runtime import Agent
from edge.store import outbox
from edge.store.connection import connect
from firmware_config.model import DeviceConfig, ReaderConfig
from firmware_config.readers import MatrixKeypad
from simulator.clock import FakeClock
from simulator.keypad import SimulatedMatrix
from simulator.line_watch import LineWatch
from simulator.pins import assert_input
from simulator.readers import SimCardReader

FINE_STEP_S = 0.5  # how finely time moves while a timer is due but has nothing to do yet
SIM_MONO = 1000.0  # the stepped clock's monotonic reading at the simulation's start
# The longest jump without a tick: the agent's own once-a-minute and once-a-day duties
# (credential age, anti-passback forgiveness) run at most this late.
MAX_STEP_S = 600.0


class Waiter:
    """Lets a control request wait until the agent's loop has handled a given event.

    It keeps the outputs of the last few hundred card taps and of the sync markers it was
    told to expect; the loop's own ticks are not kept.
    """

    KEEP = 500

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._done: OrderedDict[
            int, tuple[Event | InboundMessage | SnapshotResult, list[Output]]
        ] = OrderedDict()
        self._expected: set[int] = set()

    def expect(self, event: Event) -> None:
        """Keep the outputs of `event` (a marker) when it is handled."""
        with self._cond:
            self._expected.add(id(event))

    def processed(
        self, event: Event | InboundMessage | SnapshotResult, outputs: list[Output]
    ) -> None:
        """Called by the agent's loop after each event."""
        if isinstance(event, Tick) and id(event) not in self._expected:
            return
        with self._cond:
            self._expected.discard(id(event))
            # Holding the event keeps its id from being reused while it is here.
            self._done[id(event)] = (event, outputs)
            while len(self._done) > self.KEEP:
                self._done.popitem(last=False)
            self._cond.notify_all()

    def wait(self, event: Event, timeout: float = 10.0) -> list[Output] | None:
        """Return the outputs of `event` once handled, or None after `timeout` seconds."""
        with self._cond:
            self._cond.wait_for(lambda: id(event) in self._done, timeout)
            entry = self._done.pop(id(event), None)
            return None if entry is None else entry[1]


class LogWatch(logging.Handler):
    """Keeps the agent's log lines so a control request can wait for one (no polling)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.cond:
            self.lines.append(record.getMessage())
            self.cond.notify_all()

    def wait(self, text: str, timeout: float) -> bool:
        """Wait until a log line contains `text`."""
        with self.cond:
            return self.cond.wait_for(lambda: any(text in line for line in self.lines), timeout)


class Control:
    """The simulated hardware of one agent and the requests that drive it."""

    def __init__(
        self, factory: MockFactory, config: DeviceConfig, clock: FakeClock | None = None
    ) -> None:
        self.factory = factory
        self.config = config
        self.clock = clock  # a stepped clock, or None when the agent runs on real time
        self.synced = True  # what the agent is told about its clock (a fault turns it off)
        self.readers: dict[str, SimCardReader] = {}
        self.agent: Agent | None = None
        self.waiter = Waiter()
        self.ready = threading.Event()
        self.log = LogWatch()
        self.line = LineWatch()
        self._requests = threading.Lock()  # one request at a time moves the clock
        self._relay_lock = threading.Lock()
        self._unlocked: dict[str, bool] = {}
        self._relay_changes: list[tuple[float, str, bool]] = []
        self._doors = {d.id: d for d in config.doors}
        # Wired before the agent's own keypad claims the pins (on this same factory).
        self.keypads = {
            r.id: SimulatedMatrix(factory, r.keypad.rows, r.keypad.cols)
            for r in config.readers
            if isinstance(r.keypad, MatrixKeypad)
        }
        self._decided = threading.Condition()
        self._decisions: dict[str, tuple[int, EventRecord]] = {}  # reader -> (count, last)

    def __repr__(self) -> str:
        at = None if self.clock is None else round(self.now_s(), 3)
        return f"<Control {self.config.device.id} at={at} readers={sorted(self.readers)}>"

    def now_s(self) -> float:
        """Return the stepped clock's seconds since the start (real monotonic otherwise)."""
        if self.clock is None:
            return time.monotonic()
        return self.clock.now().mono - SIM_MONO

    def reader_factory(
        self, config: ReaderConfig, referencer: CardReferencer, card_keys: CardKeys
    ) -> CardReader:
        monotonic = None if self.clock is None else self._mono
        reader = SimCardReader(config.id, referencer, config.debounce_s, monotonic, card_keys)
        self.readers[config.id] = reader
        return reader

    def _mono(self) -> float:
        assert self.clock is not None
        return self.clock.now().mono

    def attach(self, agent: Agent) -> None:
        self.agent = agent
        self._unlocked = {door: relay.is_unlocked for door, relay in agent.relays.items()}
        agent.when_processed(self.waiter.processed)
        agent.when_processed(self._read_back_relays)
        agent.when_processed(self._note_decisions)
        self.line.attach(agent)
        self.ready.set()

    def _note_decisions(
        self, event: Event | InboundMessage | SnapshotResult, outputs: list[Output]
    ) -> None:
        """Keep each reader's latest access decision (on the loop's thread)."""
        for record in _decisions(outputs):
            reader = str(record.data.get("reader"))
            with self._decided:
                count = self._decisions.get(reader, (0, record))[0]
                self._decisions[reader] = (count + 1, record)
                self._decided.notify_all()

    def _read_back_relays(
        self, event: Event | InboundMessage | SnapshotResult, outputs: list[Output]
    ) -> None:
        """Keep every change of a lock as the relay pin reads back (on the loop's thread)."""
        assert self.agent is not None
        at = self.now_s()
        with self._relay_lock:
            for door, relay in self.agent.relays.items():
                unlocked = relay.is_unlocked
                if self._unlocked.get(door) != unlocked:
                    self._unlocked[door] = unlocked
                    self._relay_changes.append((round(at, 3), door, unlocked))

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """Carry out one request; the reply always says `ok`."""
        agent = self.agent
        if agent is None:
            return {"ok": False, "error": "agent not started"}
        with self._requests:
            if "at" in body:
                if self.clock is None:
                    return {"ok": False, "error": "'at' needs a stepped clock: start with --start"}
                self._advance(agent, float(body["at"]))
            reply = self._dispatch(agent, body)
            with self._relay_lock:
                reply["relays"] = self._relay_changes
                self._relay_changes = []
            return reply

    def _dispatch(self, agent: Agent, body: dict[str, Any]) -> dict[str, Any]:
        op = body.get("op")
        doors = self._doors
        match op:
            case "tap":
                return self._tap(agent, body)
            case "pin":
                pin = self.factory.pin(int(body["pin"]))
                pin.drive_high() if body.get("high") else pin.drive_low()
            case "door" | "exit" | "fire" if body.get("door") not in doors:
                return {"ok": False, "error": f"no door {body.get('door')!r}: use {sorted(doors)}"}
            case "door":
                contact = doors[body["door"]].contact
                if contact is None:
                    return {"ok": False, "error": f"door {body['door']} has no contact"}
                assert_input(self.factory, contact.pin, contact.open_when, bool(body["open"]))
            case "exit":
                button = doors[body["door"]].exit_button
                if button is None:
                    return {"ok": False, "error": f"door {body['door']} has no exit button"}
                assert_input(self.factory, button.pin, button.pressed_when, True)
                self._sync(agent)
                assert_input(self.factory, button.pin, button.pressed_when, False)
            case "fire":
                fire = doors[body["door"]].fire_input
                if fire is None:
                    return {"ok": False, "error": f"door {body['door']} has no fire input"}
                assert_input(self.factory, fire.pin, fire.alarm_when, bool(body["on"]))
            case "presence":
                sensors = {p.id: p for p in self.config.presence if p.kind != "ld2410-uart"}
                sensor = sensors.get(body.get("sensor", ""))
                if sensor is None:
                    return {"ok": False, "error": f"no GPIO sensor {body.get('sensor')!r}"}
                assert_input(self.factory, sensor.pin, sensor.occupied_when, bool(body["on"]))
            case "room_door":
                room_doors = {d.id: d for d in self.config.room_doors}
                room_door = room_doors.get(body.get("door", ""))
                if room_door is None:
                    return {"ok": False, "error": f"no room door {body.get('door')!r}"}
                assert_input(self.factory, room_door.pin, room_door.open_when, bool(body["open"]))
            case "reader":
                reader = self.readers.get(body.get("reader", ""))
                if reader is None:
                    return {"ok": False, "error": f"no simulated reader {body.get('reader')!r}"}
                reader.plug() if body.get("online") else reader.unplug()
            case "clock":
                return self._clock_fault(body)
            case "sync":
                pass
            case "stats":
                return self._stats(agent)
            case "positions":
                self._sync(agent)  # what the loop has taken in so far, merged
                return self.line.positions(agent, body)
            case "wait_positions":
                return self.line.wait_positions(agent, body, lambda: self._sync(agent))
            case "wait_link":
                return self.line.wait_link(agent, body)
            case "wait_log":
                timeout = min(float(body.get("timeout", 10)), 60.0)
                return {"ok": self.log.wait(str(body["text"]), timeout)}
            case "relay":
                relay = agent.relays[body["door"]]
                return {
                    "ok": True,
                    "unlocked": relay.is_unlocked,
                    "energised": getattr(relay, "energised", None),
                }
            case _:
                return {
                    "ok": False,
                    "error": f"unknown op {op!r}: use tap, door, exit, fire, presence, reader, "
                    "clock, pin, sync, stats, positions, wait_positions, wait_link, wait_log "
                    "or relay",
                }
        return self._sync(agent)

    def _advance(self, agent: Agent, at: float) -> None:
        """Move the stepped clock to `at`, ticking the agent at each timer it has pending.

        Doors held by a schedule are also ticked on every minute; otherwise time jumps
        straight to the next timer (next_deadline), at most MAX_STEP_S at a time.
        """
        assert self.clock is not None
        target = SIM_MONO + at
        while (now := self.clock.now()).mono < target:
            step = min(target, now.mono + MAX_STEP_S)
            if agent.controller.policy.door_schedules:  # schedules change on the minute
                wall = now.utc
                step = min(step, now.mono + 60.0 - (wall.second + wall.microsecond / 1e6))
            deadline = agent.controller.next_deadline()
            if deadline is not None:
                step = min(step, deadline if deadline > now.mono else now.mono + FINE_STEP_S)
            self.clock.advance(step - now.mono)
            self._sync(agent)

    def _clock_fault(self, body: dict[str, Any]) -> dict[str, Any]:
        """Lose (or regain) time synchronisation, optionally stepping the wall clock."""
        self.synced = bool(body.get("synced", False))
        step = float(body.get("step_s", 0))
        if step and self.clock is not None:
            self.clock.step_wall_clock(step)
        return {"ok": True, "synced": self.synced}

    def _stats(self, agent: Agent) -> dict[str, Any]:
        """Read the outbox through a connection of our own (the loop owns the agent's)."""
        store = connect(agent.store.path, read_only=True)
        try:
            return {
                "ok": True,
                "last_seq": outbox.last_seq(store),
                "backlog": outbox.backlog(store),
            }
        finally:
            store.close()

    def _tap(self, agent: Agent, body: dict[str, Any]) -> dict[str, Any]:
        reader_id = str(body.get("reader", ""))
        reader = self.readers.get(reader_id)
        if reader is None:
            return {"ok": False, "error": f"no simulated reader {body.get('reader')!r}"}
        with self._decided:
            before = self._decisions.get(reader_id, (0, None))[0]
        authenticated = bool(body.get("authenticated"))
        if "ref" in body:
            event = reader.tap_ref(str(body["ref"]), authenticated)
        else:
            key = bytes.fromhex(body["key"]) if body.get("key") else None
            event = reader.tap(body["technology"], body["id"], authenticated, key=key)
        if event is None:
            return {"ok": True, "counted": False}
        outputs = self.waiter.wait(event)
        if outputs is None:
            return {"ok": False, "error": "the agent did not handle the tap in time"}
        decision = next(iter(_decisions(outputs)), None)
        wanted = any(
            isinstance(o, Indicate) and o.signal is Signal.PIN_WANTED and o.reader == reader_id
            for o in outputs
        )
        if decision is None and wanted:
            if not body.get("pin"):
                return {"ok": True, "counted": True, "decision": None, "reason": "pin_wanted"}
            keypad = self.keypads.get(reader_id)
            if keypad is None:
                return {"ok": False, "error": f"reader {reader_id} has no simulated keypad"}
            try:
                keypad.type(f"{body['pin']}#")
            except TimeoutError:  # its message names a key: not for a reply
                return {"ok": False, "error": f"the keypad of {reader_id} was not scanned in time"}
            decision = self._decision_after(reader_id, before)
            if decision is None:
                return {"ok": False, "error": "the agent did not decide on the PIN in time"}
        return {
            "ok": True,
            "counted": True,
            "decision": decision.type if decision else None,
            "reason": decision.data.get("reason") if decision else None,
            # A soft anti-passback grant says it would have been refused.
            "violation": bool(decision and decision.data.get("anti_passback_violation")),
        }

    def _decision_after(self, reader: str, count: int, timeout: float = 10.0) -> EventRecord | None:
        """Wait for the reader's next access decision after its `count`-th one."""
        with self._decided:
            self._decided.wait_for(
                lambda: self._decisions.get(reader, (0, None))[0] > count, timeout
            )
            seen, record = self._decisions.get(reader, (0, None))
            return record if seen > count else None

    def _sync(self, agent: Agent) -> dict[str, Any]:
        marker = Tick()
        self.waiter.expect(marker)
        agent.emit(marker)
        return {"ok": self.waiter.wait(marker) is not None}


def _decisions(outputs: list[Output]) -> list[EventRecord]:
    """Return the access decisions (granted, denied) among a loop step's outputs."""
    return [
        o.event
        for o in outputs
        if isinstance(o, Record)
        and o.event.kind is EventKind.ACCESS
        and o.event.type in ("granted", "denied")
    ]
