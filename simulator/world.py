"""The simulated building at work: the agents' hardware, the doors' physics, the truth.

The world acts on the agents only through their simulated hardware (a card on a reader, a
leaf opening, a button, a fire input, a presence sensor), at the engine's time. What the
devices report is never used as the truth: the world keeps its own account of who is
inside the security line and of why each lock was released, and reads every lock back
from its relay pin.
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from edge.card_layout import DESFIRE_KEY_NO
from provisioning.card_keys import LITE_S_SLOT
from simulator.building import Building, Door
from simulator.engine import Engine
from simulator.process import AgentExited, AgentProcess
from simulator.staff import Person


@dataclass
class DoorState:
    """A door's leaf as the world knows it: who is using it, who follows."""

    door: Door
    busy_until: float = 0.0
    followers: list[Person] = field(default_factory=list)  # tailgaters waiting


@dataclass
class Truth:
    """What really happened, kept by the world and never read from the devices."""

    inside: dict[str, Person] = field(default_factory=dict)  # entered by card, not yet out
    tailgaters: dict[str, Person] = field(default_factory=dict)  # inside without a card
    causes: dict[str, list[tuple[float, str]]] = field(default_factory=lambda: defaultdict(list))
    relays: dict[str, list[tuple[float, bool]]] = field(default_factory=lambda: defaultdict(list))
    unlocked: dict[str, bool] = field(default_factory=dict)
    taps: Counter[str] = field(default_factory=Counter)  # decision/reason -> count
    tap_ms: list[float] = field(default_factory=list)  # real ms per tap request
    tap_real: dict[tuple[str, float], float] = field(default_factory=dict)  # (door, at) -> wall
    inside_series: list[tuple[float, int]] = field(default_factory=list)
    presence: dict[str, bool] = field(default_factory=dict)
    notes: list[tuple[float, str]] = field(default_factory=list)
    # Each copy of a proving card shown at a reader: (technology, card id, decision, reason).
    clones: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    # Each duress PIN keyed: (technology, card id, decision, reason, lock released after).
    duress: list[tuple[str, str, str | None, str | None, bool]] = field(default_factory=list)
    # Each card crossing of the security line: (at, staff no, gate, "in" | "out").
    line_moves: list[tuple[float, str, str, str]] = field(default_factory=list)
    unseen_entries: int = 0  # people who crossed the line inwards with no record (tailgaters)
    # Each anti_passback refusal the truth does not justify: (at, gate, staff no, direction).
    stale_refusals: list[tuple[float, str, str, str]] = field(default_factory=list)
    handed_back: list[HandedBack] = field(default_factory=list)
    # Who is really in each booth and meeting room: (entered, left) per stay, by zone.
    stays: dict[str, list[list[float]]] = field(default_factory=lambda: defaultdict(list))
    # When each device's clock was off (its events' times cannot be compared), by device.
    unsynced: dict[str, list[tuple[float, float]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # When each device had no power: [off, on] (on = inf while still off), by device.
    unpowered: dict[str, list[list[float]]] = field(default_factory=lambda: defaultdict(list))


@dataclass(frozen=True)
class HandedBack:
    """A card handed back over the line, tried by a second person at a gate."""

    at: float
    gate: str
    holder: str  # the staff number of the card's holder, inside the line
    technology: str
    card_id: str  # raw: stays in the simulation, the report shows its reference
    decision: str | None
    reason: str | None
    violation: bool  # granted, flagged anti_passback_violation (soft)
    soft: bool  # the gate's anti-passback was soft at that moment (its fallback, cut off)
    after: str = ""  # the partition it follows ("" if none)


class World:
    """The building's devices, steered through their simulated hardware."""

    def __init__(
        self,
        building: Building,
        engine: Engine,
        agents: dict[str, AgentProcess],
        start: datetime,
        card_keys: Mapping[str, Mapping[str, bytes]] | None = None,
    ) -> None:
        self.building = building
        self.card_keys = card_keys or {}  # what each proving card holds, by raw card id
        self.engine = engine
        self.agents = agents  # by device; the same dict the simulation stops at the end
        self.start = start
        self.down: set[str] = set()  # devices without power
        self.doors = {d.id: DoorState(d) for d in building.gates + building.stair_doors}
        self.fire = False
        self.truth = Truth()
        self.home_gate: dict[str, str] = {}  # the gate each person entered by today
        self.day_start_h = start.hour + start.minute / 60  # local time the day begins
        # Each device's inputs away from idle (a sensor high, a room door open), by (op, id):
        # the physical state a device powered up again reads at once.
        self.inputs: dict[str, dict[tuple[str, str], bool]] = defaultdict(dict)
        self.occupants: dict[str, int] = defaultdict(int)  # people in each booth and room
        self.input_at: dict[str, float] = {}  # device -> when one of its inputs last changed
        for door in self.doors:
            self.truth.unlocked[door] = False

    def __repr__(self) -> str:
        return f"<World t={self.clock_text()} inside={len(self.truth.inside)} down={self.down}>"

    def clock_text(self, at: float | None = None) -> str:
        """Return the local wall time at `at` (default now), e.g. 08:42:10."""
        moment = self.start + timedelta(seconds=self.engine.now if at is None else at)
        return moment.strftime("%H:%M:%S")

    def note(self, text: str) -> None:
        """Keep a line for the report's timeline."""
        self.truth.notes.append((self.engine.now, text))

    # -- talking to a device --------------------------------------------------------------

    def request(self, device: str, **body: Any) -> dict[str, Any] | None:
        """Send a request at the engine's time; None if the device has no power."""
        if device in self.down:
            return None
        try:
            reply = self.agents[device].request(at=self.engine.now, **body)
        except (AgentExited, OSError) as error:
            raise AgentExited(f"{device} stopped answering: {error}") from None
        for at, door, unlocked in reply.get("relays", []):
            self._relay(door, at, unlocked)
        if not reply.get("ok"):
            shown = {k: v for k, v in body.items() if k not in ("id", "key", "pin")}
            raise AgentExited(f"{device} refused {shown}: {reply.get('error')}")
        return reply

    def is_unlocked(self, door: str) -> bool:
        """Whether the lock is released, as its relay reads back."""
        return self.truth.unlocked[door]

    def _relay(self, door: str, at: float, unlocked: bool) -> None:
        """Note a lock's relay as read back at `at`, if it changed."""
        if self.truth.unlocked.get(door) != unlocked:
            self.truth.unlocked[door] = unlocked
            self.truth.relays[door].append((at, unlocked))

    # -- power ------------------------------------------------------------------------------

    def power_off(self, device: str) -> None:
        """Cut a device's power: SIGKILL its agent; its relays drop (a fail-safe lock opens)."""
        self.agents[device].kill()
        self.down.add(device)
        self.truth.unpowered[device].append([self.engine.now, float("inf")])
        for door in self.building.devices[device].doors:
            released = door.fail == "safe"
            self._relay(door.id, self.engine.now, released)
            if released:
                self.command_cause(door.id, "power_cut")

    def power_on(self, device: str, agent: AgentProcess) -> None:
        """Power a device up again as `agent` (a new process); read its relays back."""
        self.agents[device] = agent
        self.down.discard(device)
        if self.truth.unpowered[device]:
            self.truth.unpowered[device][-1][1] = self.engine.now
        for door in self.building.devices[device].doors:
            reply = self.request(device, op="relay", door=door.id)
            assert reply is not None
            self._relay(door.id, self.engine.now, bool(reply["unlocked"]))
        for (op, input_id), level in sorted(self.inputs[device].items()):
            if level:  # the hardware as it stands: a sensor still high, a door still open
                self._drive(device, op, input_id, level)

    # -- the hardware -----------------------------------------------------------------------

    def _card_key(self, card_id: str, device: str) -> bytes | None:
        keys = self.card_keys.get(card_id)
        if not keys:
            return None
        role = self.building.devices[device].role
        slot = LITE_S_SLOT if LITE_S_SLOT in keys else str(DESFIRE_KEY_NO.get(role, 0))
        return keys.get(slot)

    def tap(
        self,
        door: str,
        direction: str,
        technology: str,
        card_id: str,
        *,
        clone: bool = False,
        pin: str | None = None,
    ) -> dict[str, Any]:
        """Hold a card to a door's reader; return the device's answer (counted False if none).

        A proving card proves itself with the key this kind of door checks; a `clone` shows
        the same id without any key. `pin` is keyed if the reader asks for one.
        """
        state = self.doors[door]
        reader = state.door.readers[direction]
        began = time.perf_counter()
        body: dict[str, Any] = {"reader": reader, "technology": technology, "id": card_id}
        key = None if clone else self._card_key(card_id, state.door.device)
        if key is not None:
            body["key"] = key.hex()
        if pin is not None:
            body["pin"] = pin
        reply = self.request(state.door.device, op="tap", **body)
        if reply is None:
            return {"counted": False, "decision": None, "reason": "no_power"}
        if reply.get("counted"):
            self.truth.tap_ms.append((time.perf_counter() - began) * 1000)
            self.truth.tap_real[(state.door.device, round(self.engine.now, 3))] = time.time()
            self.truth.taps[f"{reply['decision']}/{reply['reason']}"] += 1
            if reply["decision"] == "granted":
                self.truth.causes[door].append((self.engine.now, "grant"))
        else:
            reply.setdefault("reason", "reader_offline")
        return reply

    def leaf(self, door: str, is_open: bool) -> None:
        """Open or close a door's leaf (its contact)."""
        self.request(self.doors[door].door.device, op="door", door=door, open=is_open)

    def exit_button(self, door: str) -> bool:
        """Press the exit button; return True if the lock released."""
        self.truth.causes[door].append((self.engine.now, "exit_button"))
        self.request(self.doors[door].door.device, op="exit", door=door)
        return self.is_unlocked(door)

    def fire_input(self, door: str, on: bool) -> None:
        """The fire panel's relay to one stairway door."""
        if on:
            self.truth.causes[door].append((self.engine.now, "fire"))
        self.request(self.doors[door].door.device, op="fire", door=door, on=on)

    def presence(self, zone: str, on: bool) -> None:
        """Someone is (or no longer is) in an open zone, and its sensor sees them."""
        self.truth.presence[zone] = on
        self.sense(zone, on)

    def sense(self, zone: str, on: bool) -> None:
        """Drive a zone's presence sensor output (a PIR's pulse, an mmWave's OUT pin)."""
        device, sensor = self.building.sensor_for(zone)
        self._drive(device.id, "presence", sensor.id, on)

    def room_door(self, zone: str, is_open: bool) -> None:
        """Open or close a booth's or meeting room's own door (its contact)."""
        door = self.building.door_for(zone)
        if door is None:
            raise KeyError(f"{zone} has no door contact")
        device, _ = self.building.sensor_for(zone)
        self._drive(device.id, "room_door", door.id, is_open)

    def _drive(self, device: str, op: str, input_id: str, level: bool) -> None:
        self.inputs[device][(op, input_id)] = level
        self.input_at[device] = self.engine.now
        if op == "presence":
            self.request(device, op=op, sensor=input_id, on=level)
        else:
            self.request(device, op=op, door=input_id, open=level)

    def enter_room(self, zone: str) -> None:
        """Someone really walks into a booth or meeting room (the truth, not a signal)."""
        self.occupants[zone] += 1
        if self.occupants[zone] == 1:
            self.truth.stays[zone].append([self.engine.now, float("inf")])

    def leave_room(self, zone: str) -> None:
        """Someone really leaves a booth or meeting room."""
        self.occupants[zone] = max(0, self.occupants[zone] - 1)
        if self.occupants[zone] == 0 and self.truth.stays[zone]:
            self.truth.stays[zone][-1][1] = self.engine.now

    def command_cause(self, door: str, cause: str) -> None:
        """Note that an operator's command may release `door` from now on."""
        self.truth.causes[door].append((self.engine.now, cause))

    # -- the truth ------------------------------------------------------------------------

    def entered(self, person: Person, by_card: bool = True, gate: str | None = None) -> None:
        """Someone crossed the line inwards: by card at `gate`, or unseen behind someone."""
        if by_card:
            self.truth.inside[person.staff_no] = person
            if gate is not None:
                self.home_gate[person.staff_no] = gate
                self.truth.line_moves.append((self.engine.now, person.staff_no, gate, "in"))
        else:
            self.truth.tailgaters[person.staff_no] = person
            self.truth.unseen_entries += 1
        self.truth.inside_series.append((self.engine.now, self.inside_count))

    def left(self, person: Person, gate: str | None = None) -> None:
        """Someone crossed the line outwards: by card at `gate`, or by an exit button."""
        if gate is not None:
            self.truth.line_moves.append((self.engine.now, person.staff_no, gate, "out"))
        self.truth.inside.pop(person.staff_no, None)
        self.truth.tailgaters.pop(person.staff_no, None)
        self.truth.inside_series.append((self.engine.now, self.inside_count))

    def refused_passback(self, person: Person, door: str, direction: str) -> bool:
        """Note an anti_passback refusal at a gate; return True if the truth contradicts it.

        It is stale when the person really is on the side the card was refused from.
        """
        if door not in {g.id for g in self.building.gates}:
            return False
        inside = person.staff_no in self.truth.inside
        if inside == (direction == "out"):
            at = self.engine.now
            self.truth.stale_refusals.append((at, door, person.staff_no, direction))
            return True
        return False

    @property
    def inside_count(self) -> int:
        return len(self.truth.inside) + len(self.truth.tailgaters)
