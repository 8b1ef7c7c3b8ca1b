"""Faults on the security line's shared anti-passback: a card handed back, a gate cut off.

The gates of the line share card positions through the broker. `gate_partition` cuts one
gate's network path for real (its agent reaches the broker through a NetCut, so its
connection drops and its reconnects are refused) during the morning rush, then heals it.
`handed_back_card` has someone inside the line hand their card back over it to a second
person, who taps it in at another gate than the one the holder came in by.

After a partition (or a broker outage, or a gate's power cut) the devices need a few real
seconds to reconnect and relearn what they missed, while the simulated day runs a hundred
times faster: `reconcile` holds the day until every gate holds the position the truth gives
each card that crossed in the meantime (or a minute of real time has passed), and notes how
long it took.
"""

from __future__ import annotations

import time
from dataclasses import replace

from edge.cardref import card_reference
from simulator.behaviour import OPEN_AFTER_S, PASS_S, claim, out_by_button
from simulator.engine import Process
from simulator.staff import Person
from simulator.stage import Stage
from simulator.world import HandedBack, World

RECONCILE_S = 60.0  # real seconds the day waits, at most, for the gates to agree again
LINK_S = 10.0  # real seconds a gate has, at most, to notice its network path is cut


def soft_fallback(sim: Stage) -> bool:
    """Whether the line's gates grant flagged, rather than refuse, while cut off."""
    return sim.building.spec.anti_passback_offline == "soft"


def gate_partition(sim: Stage, gate: str, seconds: float) -> Process:
    """Cut one gate off the broker for `seconds`, then heal it and wait for reconciliation."""
    world = sim.world
    cut = sim.netcuts[gate]
    world.note(f"fault: {gate}'s network path to the broker is cut for {seconds / 60:g} min")
    began = world.engine.now
    cut.cut()
    sim.cut_began[gate] = began
    # Real time: the gate's agent finds its connection reset; until it has, it may still
    # hear crossings, so what it holds is read only once it knows it is cut.
    reply = world.request(gate, op="wait_link", up=False, timeout=LINK_S)
    if reply is not None and not reply["seen"]:
        world.note(f"{gate} had not noticed its cut after {LINK_S:g} s (real time)")
    sim.cut_held[gate] = _held_inside(sim, gate)
    if soft_fallback(sim):
        sim.expect_alarm(gate, "anti_passback_degraded")
        # While cut off it grants, flagged, a card it wrongly believes inside.
        sim.allow_alarm(gate, "anti_passback_violation")
    yield seconds
    cut.heal()
    del sim.cut_began[gate]
    sim.partitions.append((gate, began, world.engine.now))
    world.note(f"{gate}'s network path is healed")
    reconcile(sim, f"the partition of {gate}", began)


def reconcile(sim: Stage, label: str, since: float, timeout_s: float = RECONCILE_S) -> bool:
    """Hold the day until every powered gate holds the truth's position of each card that
    crossed the line since `since`, is connected and not cut off; note how long it took.

    Each gate's agent waits on its own loop (real time), so nothing here polls. `wrong` in
    the note counts a gate's wrong positions (or None: never checked, e.g. not connected).
    """
    world = sim.world
    people = {p.staff_no: p for p in sim.people}
    last: dict[str, tuple[str, str]] = {}  # staff no -> (gate, direction) of the last crossing
    for at, staff_no, gate, direction in world.truth.line_moves:
        if at >= since and staff_no in people:
            last[staff_no] = (gate, direction)
    want: dict[str, str] = {}
    for staff_no, (gate, direction) in last.items():
        person = people[staff_no]
        door = world.doors[gate].door
        ref = card_reference(sim.card_key, person.technology, person.card_id)
        want[ref] = door.inside if direction == "in" else door.outside
    gates = sorted({g.device for g in sim.building.gates if g.device not in world.down})
    began = time.perf_counter()
    wrong: dict[str, int | None] = {}
    for gate in gates:  # each waits on its agent's loop, within what is left of the time
        left = max(0.0, timeout_s - (time.perf_counter() - began))
        reply = world.request(gate, op="wait_positions", want=want, timeout=left)
        assert reply is not None  # powered: asked only of gates that are
        if not reply["agreed"]:
            wrong[gate] = reply["wrong"]
    real_s = time.perf_counter() - began
    ok = not wrong
    sim.reconciliations.append((label, since, world.engine.now, real_s, ok))
    if ok:
        world.note(
            f"after {label}, every gate held the {len(want)} positions that changed "
            f"during it and heard its peers {real_s:.1f} s later (real time)"
        )
    else:
        world.note(
            f"after {label}, gates still disagreed with the truth after {real_s:.0f} s "
            f"(real time): wrong positions per gate {wrong} (0: right, but not connected "
            "or still cut off)"
        )
    return ok


def handed_back_card(sim: Stage, gate: str) -> Process:
    """Someone inside hands their card back over the line; another person taps it at `gate`.

    The holder is one who came in by another gate: while `gate` is cut off, one whose entry
    it held once it knew it was cut (what it cannot have heard of, it cannot refuse);
    otherwise, if possible, one who came in during the latest partition (so the gate tried
    must have learned it since).
    """
    world = sim.world
    after = ""
    entered_at: dict[str, float] = {}
    for at, staff_no, g, direction in world.truth.line_moves:
        if direction == "in" and g != gate:
            entered_at[staff_no] = at
        elif staff_no in entered_at:
            entered_at.pop(staff_no)  # left since, or came in by this gate
    candidates = [
        p
        for p in sim.people
        if p.staff_no in world.truth.inside
        and p.staff_no in entered_at
        and p.case == ""
        and p.profile == "uid"
    ]
    if gate in sim.cut_began:  # only those whose entry it held once it knew it was cut
        candidates = [p for p in candidates if p.staff_no in sim.cut_held[gate]]
    elif sim.partitions:
        cut_gate, began, ended = sim.partitions[-1]
        during = [p for p in candidates if began <= entered_at[p.staff_no] <= ended]
        if during:
            candidates, after = during, f"the partition of {cut_gate}"
    if not candidates:
        world.note(f"fault handed_back_card at {gate}: nobody inside came in by another gate")
        return
    holder = candidates[0]
    yield from claim(world, gate, OPEN_AFTER_S + PASS_S + 0.5)
    soft = soft_fallback(sim) and (sim.netcuts[gate].is_cut or not sim.broker.running)
    world.note(
        f"fault: {holder.staff_no}, inside the line, hands their card back over it; someone "
        f"else taps it in at {gate}" + (f" (the holder came in during {after})" if after else "")
    )
    reply = world.tap(gate, "in", holder.technology, holder.card_id)
    if not reply.get("counted"):  # a dead gate or reader: nothing was tried
        world.note(f"the handed-back card could not be tried at {gate} ({reply.get('reason')})")
        return
    tried = HandedBack(
        world.engine.now,
        gate,
        holder.staff_no,
        holder.technology,
        holder.card_id,
        reply.get("decision"),
        reply.get("reason"),
        bool(reply.get("violation")),
        soft,
        after,
    )
    world.truth.handed_back.append(tried)
    if tried.decision != "granted":
        return
    world.note(f"the card handed back by {holder.staff_no} was GRANTED at {gate}")
    if tried.violation:
        sim.expect_alarm(gate, "anti_passback_violation")
    # The card entered twice without leaving: the gate that let the holder in says so once
    # it hears of this crossing (at once, or when a partition heals).
    holder_gate = world.home_gate[holder.staff_no]
    if tried.soft:
        sim.expect_alarm(holder_gate, "anti_passback_conflict")
    else:
        sim.allow_alarm(holder_gate, "anti_passback_conflict")
    if world.is_unlocked(gate):  # in they go; a guard walks them out later
        second = replace(holder, staff_no=f"{holder.staff_no}-handed", case="handed_back")
        yield OPEN_AFTER_S
        world.leaf(gate, True)
        yield PASS_S
        world.entered(second, gate=gate)
        world.leaf(gate, False)
        world.engine.spawn(_escorted_out(world, second, gate))


def _held_inside(sim: Stage, gate: str) -> set[str]:
    """Return the staff numbers of those inside whom `gate` holds inside its door."""
    world = sim.world
    zone = world.doors[gate].door.inside
    refs = {
        card_reference(sim.card_key, p.technology, p.card_id): p.staff_no
        for p in sim.people
        if p.staff_no in world.truth.inside
    }
    reply = world.request(gate, op="positions", refs=sorted(refs))
    if reply is None:  # no power: it holds nothing anyone can ask of
        return set()
    return {refs[ref] for ref, held in reply["positions"].items() if held == zone}


def _escorted_out(world: World, second: Person, gate: str) -> Process:
    """A guard finds the second person and lets them out by the exit button."""
    yield 600.0
    yield from out_by_button(world, gate)
    world.left(second)
    world.note(f"a guard let the person with a handed-back card out at {gate}")
