"""Faults thrown at the running building, from a scenario or injected while it runs.

Each fault is an engine process acting on real parts: mosquitto is stopped and started,
an agent process is killed with SIGKILL and started again on the same store, a reader is
unplugged, a leaf is forced, the fire panel's inputs rise, the console signs a lockdown.
The security line's own faults (a gate cut off, a card handed back) are in line_faults.
"""

from __future__ import annotations

import time

from simulator.behaviour import OPEN_AFTER_S, PASS_S, claim, through
from simulator.engine import Process
from simulator.line_faults import gate_partition, handed_back_card, reconcile, soft_fallback
from simulator.scenario import Fault, ScenarioError
from simulator.stage import Stage


def check_fault(sim: Stage, fault: Fault) -> None:
    """Refuse a fault naming a door, reader, device or gate the building does not have."""
    building = sim.building
    readers = {r for d in building.gates + building.stair_doors for r in d.readers.values()}
    needs = {
        "door_forced": ("door", sim.world.doors),
        "door_held_open": ("door", sim.world.doors),
        "reader_unplugged": ("reader", readers),
        "power_cut": ("device", building.devices),
        "clock_unsynchronised": ("device", building.devices),
        "lost_card_used": ("gate", {g.id for g in building.gates}),
        "cloned_card": ("gate", {g.id for g in building.gates}),
        "duress": ("gate", {g.id for g in building.gates}),
        "handed_back_card": ("gate", {g.id for g in building.gates}),
        "gate_partition": ("gate", {g.id for g in building.gates}),
    }
    if fault.kind in needs:
        field, known = needs[fault.kind]
        value = getattr(fault, field)
        if value not in known:
            raise ScenarioError(
                f"fault {fault.kind} at {fault.at}: {field} {value!r} is not in the building; "
                f"use one of {sorted(known)[:8]}…"
            )
    if fault.kind == "duress":
        keypads = sorted(g.id for g in building.gates if g.readers["in"] in g.keypads)
        if fault.gate not in keypads:
            raise ScenarioError(
                f"fault duress at {fault.at}: gate {fault.gate!r} has no PIN keypad at its "
                f"entrance reader; use one of {keypads}"
            )


def fault_process(sim: Stage, fault: Fault) -> Process:
    """Return the engine process that plays `fault` from now."""
    check_fault(sim, fault)
    seconds = fault.minutes * 60
    match fault.kind:
        case "broker_outage":
            return broker_outage(sim, seconds)
        case "reader_unplugged":
            assert fault.reader is not None
            return reader_unplugged(sim, fault.reader, seconds)
        case "door_forced":
            assert fault.door is not None
            return door_forced(sim, fault.door, fault.open_s)
        case "door_held_open":
            assert fault.door is not None
            return door_held_open(sim, fault.door, seconds)
        case "fire":
            return fire(sim, seconds)
        case "lockdown":
            return lockdown(sim, seconds)
        case "lost_card_used":
            assert fault.gate is not None
            return lost_card_used(sim, fault.gate)
        case "cloned_card":
            assert fault.gate is not None
            return cloned_card(sim, fault.gate)
        case "duress":
            assert fault.gate is not None
            return duress(sim, fault.gate)
        case "power_cut":
            assert fault.device is not None
            return power_cut(sim, fault.device, seconds)
        case "clock_unsynchronised":
            assert fault.device is not None
            return clock_unsynchronised(sim, fault.device, seconds)
        case "handed_back_card":
            assert fault.gate is not None
            return handed_back_card(sim, fault.gate)
        case "gate_partition":
            assert fault.gate is not None
            return gate_partition(sim, fault.gate, seconds)
    raise ScenarioError(f"unknown fault {fault.kind!r}")


def broker_outage(sim: Stage, seconds: float) -> Process:
    sim.world.note(f"fault: the broker stops for {seconds / 60:g} min")
    sim.broker.stop()
    began = sim.world.engine.now
    if soft_fallback(sim):  # every gate is cut off from the others
        for gate in sorted({g.device for g in sim.building.gates} - sim.world.down):
            sim.expect_alarm(gate, "anti_passback_degraded")
            sim.allow_alarm(gate, "anti_passback_violation")
    yield seconds
    sim.broker.start()
    sim.outages.append((began, sim.world.engine.now))
    # In real time the devices drain their backlog within seconds of the broker's return:
    # let them (the simulation waits), and measure how long it took.
    recovered = time.perf_counter()
    complete = sim.catch_up(timeout_s=60)
    sim.recovery_s.append(time.perf_counter() - recovered)
    sim.world.note(
        f"the broker is back; the console had every stored event {sim.recovery_s[-1]:.1f} s "
        f"later (real time){'' if complete else ' -- NOT COMPLETE after 60 s'}"
    )
    reconcile(sim, "the broker outage", began)


def reader_unplugged(sim: Stage, reader: str, seconds: float) -> Process:
    door = next(d for d in sim.world.doors.values() if reader in d.door.readers.values())
    sim.world.note(f"fault: reader {reader} unplugged for {seconds / 60:g} min")
    sim.world.request(door.door.device, op="reader", reader=reader, online=False)
    sim.expect_alarm(door.door.device, "reader_offline")
    yield seconds
    sim.world.request(door.door.device, op="reader", reader=reader, online=True)
    sim.world.note(f"reader {reader} plugged back in")


def door_forced(sim: Stage, door: str, open_s: float) -> Process:
    world = sim.world
    state = world.doors[door]
    while state.busy_until > world.engine.now or world.is_unlocked(door):
        yield 5.0
    state.busy_until = world.engine.now + open_s + 4
    world.note(f"fault: {door} forced open (the lock was engaged), open {open_s:g} s")
    sim.expect_alarm(state.door.device, "door_forced")
    if open_s >= state.door.held_open_s - state.door.pre_alarm_s:  # held open too
        sim.expect_alarm(state.door.device, "door_held_open")
    world.leaf(door, True)
    yield open_s
    world.leaf(door, False)


def door_held_open(sim: Stage, door: str, seconds: float) -> Process:
    world = sim.world
    state = world.doors[door]
    world.note(f"fault: {door} propped open for {seconds / 60:g} min")
    yield from claim(world, door, seconds + 10)
    world.exit_button(door)
    yield OPEN_AFTER_S
    world.leaf(door, True)
    sim.expect_alarm(state.door.device, "door_held_open")
    yield seconds
    world.leaf(door, False)


def fire(sim: Stage, seconds: float) -> Process:
    world = sim.world
    doors = [d.id for d in sim.building.stair_doors]
    world.note(f"fault: fire alarm for {seconds / 60:g} min; every stairway door must release")
    world.fire = True
    for door in doors:
        world.fire_input(door, True)
        sim.expect_alarm(world.doors[door].door.device, "fire")
    sim.fire_at = world.engine.now
    sim.roll_call_check("fire")
    sim.sample_head_counts("the fire alarm")
    yield seconds
    for door in doors:
        world.fire_input(door, False)
    world.fire = False
    world.note("the fire alarm clears; the console resets the stairway doors")
    yield 30.0
    for device in sorted({world.doors[d].door.device for d in doors}):
        sim.command(device, "fire-reset", {})


def lockdown(sim: Stage, seconds: float) -> Process:
    world = sim.world
    gates = sorted(g.device for g in sim.building.gates)
    world.note(f"fault: lockdown of every gate from the console for {seconds / 60:g} min")
    for device in gates:
        sim.command(device, "lockdown", {"on": True})
    yield seconds
    for device in gates:
        sim.command(device, "lockdown", {"on": False})
    world.note("lockdown lifted")


def lost_card_used(sim: Stage, gate: str) -> Process:
    world = sim.world
    lost = next(p for p in sim.people if p.case == "lost")
    world.note(f"fault: someone tries {lost.staff_no}'s lost card at {gate}")
    sim.expect_alarm(gate, "lost_card_used")
    reply = world.tap(gate, "in", lost.technology, lost.card_id)
    if reply.get("decision") == "granted":  # it must not be: the report says so
        world.note(f"the lost card of {lost.staff_no} was GRANTED at {gate}")
    yield from ()


def cloned_card(sim: Stage, gate: str) -> Process:
    world = sim.world
    guard = next(p for p in sim.people if p.profile != "uid" and p.case == "")
    world.note(f"fault: a copy of {guard.staff_no}'s security card (its id, not its key) at {gate}")
    sim.expect_alarm(gate, "clone_suspected")
    reply = world.tap(gate, "in", guard.technology, guard.card_id, clone=True)
    if reply.get("decision") == "granted":  # it must not be: the report says so
        world.note(f"the copy of {guard.staff_no}'s card was GRANTED at {gate}")
    world.truth.clones.append(
        (guard.technology, guard.card_id, reply.get("decision"), reply.get("reason"))
    )
    yield from ()


def duress(sim: Stage, gate: str) -> Process:
    world = sim.world
    # A guard outside the line is forced at the gate; with every guard inside, one first
    # leaves by that gate (the line's anti-passback is shared by its gates, so a card inside
    # is refused entry at every one of them) and is forced on the way back in.
    guards = [p for p in sim.people if p.duress_pin is not None and p.case == ""]
    outside = [p for p in guards if p.staff_no not in world.truth.inside]
    guard = next(iter(outside or guards), None)
    if guard is None or guard.duress_pin is None:
        raise ScenarioError(f"fault duress at {gate}: no guard with a duress PIN")
    back_in = not outside
    if back_in:
        if (yield from through(world, guard, gate, "out")) != "passed":
            world.note(f"{guard.staff_no} could not leave by {gate} before the duress fault")
        else:
            world.left(guard, gate=gate)
    yield from claim(world, gate, OPEN_AFTER_S + PASS_S + 0.5)
    world.note(f"fault: {guard.staff_no} is forced to open {gate} and keys the duress PIN")
    sim.expect_alarm(gate, "duress")
    reply = world.tap(gate, "in", guard.technology, guard.card_id, pin=guard.duress_pin)
    opened = reply.get("decision") == "granted" and world.is_unlocked(gate)
    if not opened:  # it must open as usual: the report says so
        world.note(f"the duress tap of {guard.staff_no} at {gate} did NOT open the door")
    world.truth.duress.append(
        (guard.technology, guard.card_id, reply.get("decision"), reply.get("reason"), opened)
    )
    if opened and back_in:  # through the forced gate, back where their day left them
        yield OPEN_AFTER_S
        world.leaf(gate, True)
        yield PASS_S
        world.entered(guard, gate=gate)
        world.leaf(gate, False)


def power_cut(sim: Stage, device: str, seconds: float) -> Process:
    world = sim.world
    world.note(f"fault: power cut on {device} (kill -9) for {seconds / 60:g} min")
    began = world.engine.now
    gate = device in {g.device for g in sim.building.gates}
    if gate and soft_fallback(sim):  # cut off from its peers from start until it connects
        sim.allow_alarm(device, "anti_passback_degraded")
    sim.power_off(device)
    yield seconds
    sim.power_on(device)
    world.note(f"{device} powered up again")
    if gate:  # it relearns the line's positions it missed while off
        reconcile(sim, f"the power cut of {device}", began)


def clock_unsynchronised(sim: Stage, device: str, seconds: float) -> Process:
    world = sim.world
    world.note(f"fault: {device} loses time synchronisation for {seconds / 60:g} min")
    world.request(device, op="clock", synced=False, step_s=90)
    began = world.engine.now
    yield seconds
    world.request(device, op="clock", synced=True, step_s=-90)
    world.truth.unsynced[device].append((began, world.engine.now))
    world.note(f"{device} clock synchronised again")
