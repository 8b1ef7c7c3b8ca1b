"""What people do over a day: arrive, go down to the counters, meet, lunch, leave.

Each person is an engine process. They act only on hardware (a card on a reader, a leaf,
an exit button, a sensor that sees them) and believe only the lock (the relay, read
back): a person walks through when the lock is released, not when a device says so.
Staff come in by their own gate in the morning; they leave, and come back from lunch, by
any gate of the line (its gates share anti-passback positions).
"""

from __future__ import annotations

import random
from collections.abc import Generator

from simulator.building import Building
from simulator.engine import Process
from simulator.rooms_use import at_time, stay
from simulator.staff import Person
from simulator.world import World

H = 3600.0
WALK_S = 60.0  # down (or up) a few flights of stairs
OPEN_AFTER_S = 1.0  # from the lock releasing to the leaf opening
PASS_S = 2.5  # the leaf open while one person walks through
RETRY_S = 120.0  # wait before trying again (a lockdown, a dead reader)


def claim(world: World, door: str, hold_s: float) -> Generator[float, None, None]:
    """Wait until nobody is using the door, then take it for `hold_s`."""
    state = world.doors[door]
    while state.busy_until > world.engine.now:
        yield state.busy_until - world.engine.now + 0.2
    state.busy_until = world.engine.now + hold_s


def through(
    world: World, person: Person, door: str, direction: str, card: bool = True
) -> Generator[float, None, str]:
    """Walk through a card door: queue, tap, and pass if the lock released. Return why not."""
    state = world.doors[door]
    yield from claim(world, door, OPEN_AFTER_S + PASS_S + 0.5)
    reason = "released"
    if card and not world.fire:  # a released door on fire is walked through without a card
        reply = world.tap(door, direction, person.technology, person.card_id, pin=person.pin)
        reason = str(reply.get("reason"))
        if not reply.get("counted"):
            state.busy_until = world.engine.now
            return reason
    if not world.is_unlocked(door):
        state.busy_until = world.engine.now
        return reason
    yield OPEN_AFTER_S
    world.leaf(door, True)
    followers, state.followers = state.followers, []
    hold = PASS_S + 1.5 * len(followers)
    state.busy_until = max(state.busy_until, world.engine.now + hold + 0.5)
    yield hold
    for follower in followers:  # in with someone else's card: no record of them
        world.entered(follower, by_card=False)
    world.leaf(door, False)
    return "passed"


def out_by_button(world: World, door: str) -> Generator[float, None, bool]:
    """Leave through a door by its exit button (the stairway from a floor, a gate inside)."""
    yield from claim(world, door, OPEN_AFTER_S + PASS_S + 0.5)
    if not world.exit_button(door):
        return False
    yield OPEN_AFTER_S
    world.leaf(door, True)
    yield PASS_S
    world.leaf(door, False)
    return True


def any_gate(world: World, rng: random.Random, but: str | None = None) -> str:
    """Return a gate of the line, drawn by the share of staff who use each (not `but`)."""
    gates = [g for g in world.building.spec.gates if g.id != but] or world.building.spec.gates
    return rng.choices(gates, [g.share for g in gates])[0].id


def gate_in(
    world: World, person: Person, rng: random.Random, gate: str | None = None
) -> Generator[float, None, bool]:
    """Cross the security line inwards at `gate` (the person's own by default).

    A dead gate, or one refusing the card as already inside, sends them to another gate.
    """
    gate = gate or person.gate
    for _attempt in range(12):
        result = yield from through(world, person, gate, "in")
        if result == "passed":
            world.entered(person, gate=gate)
            return True
        if result in ("no_power", "reader_offline", "anti_passback"):
            if result == "anti_passback":
                world.refused_passback(person, gate, "in")
            gate = any_gate(world, rng, but=gate)  # walk to another gate
            yield 90.0
        elif result == "lockdown":
            yield RETRY_S
        else:
            return False  # denied for good: to the security desk
    return False


def gate_out(world: World, person: Person, rng: random.Random) -> Generator[float, None, None]:
    """Cross the security line outwards by card (the roll call needs it), by any gate.

    Half leave by the gate they came in by, the others by whichever suits them.
    """
    gate = world.home_gate.get(person.staff_no, person.gate)
    if rng.random() < 0.5:
        gate = any_gate(world, rng)
    for _attempt in range(12):
        result = yield from through(world, person, gate, "out")
        if result == "passed":
            world.left(person, gate=gate)
            return
        if result in ("no_power", "reader_offline", "anti_passback"):
            if result == "anti_passback":
                world.refused_passback(person, gate, "out")
            gate = any_gate(world, rng, but=gate)
            yield 90.0
        else:
            yield RETRY_S
    world.note(f"{person.staff_no} could not leave by card; a guard let them out")
    yield from out_by_button(world, gate)
    world.left(person)


def stair_trip(
    world: World, person: Person, rng: random.Random, stay_s: float
) -> Generator[float, None, None]:
    """Down the staff stairway to the counters, and back up with the card."""
    building: Building = world.building
    stairway = rng.choice(building.spec.stairways.ids)
    own = building.stair_door(stairway, person.floor).id
    ground = building.stair_door(stairway, 1).id
    if not (yield from out_by_button(world, own)):
        return
    yield WALK_S
    result = yield from through(world, person, ground, "in")
    if result != "passed":
        world.note(f"{person.staff_no} could not enter at {ground} ({result}); went back up")
        yield WALK_S
        yield from through(world, person, own, "in")
        return
    yield stay_s
    yield from out_by_button(world, ground)
    yield WALK_S
    for _attempt in range(6):
        if (yield from through(world, person, own, "in")) == "passed":
            return
        yield RETRY_S


def staff_day(world: World, person: Person, seed: int) -> Process:
    """One member of staff's day."""
    rng = random.Random(seed)
    engine = world.engine
    late = rng.random() < 0.08
    arrive = rng.uniform(9.5, 11.0) * H if late else min(max(rng.gauss(8.45, 0.3), 7.6), 9.4) * H
    arrive -= world.day_start_h * H
    yield at_time(engine, arrive)
    if person.case == "lost":  # reported lost: a temporary pass from the security desk
        return
    if person.case == "no_card":
        world.doors[person.gate].followers.append(person)
        while person.staff_no not in world.truth.tailgaters:
            yield 30.0
        world.note(f"{person.staff_no} forgot their card and followed a colleague in")
        yield at_time(engine, 17.5 * H - world.day_start_h * H)
        yield from out_by_button(world, person.gate)
        world.left(person)
        return
    if not (yield from gate_in(world, person, rng)):
        return
    if "security" in person.groups:
        yield from patrol(world, person, rng)
    elif rng.random() < 0.45:
        start = rng.uniform(9.5, 11.5) * H - world.day_start_h * H
        yield at_time(engine, start)
        yield from stair_trip(world, person, rng, rng.uniform(600, 1800))
    if rng.random() < 0.25:
        yield at_time(engine, rng.uniform(12.0, 12.4) * H - world.day_start_h * H)
        yield from gate_out(world, person, rng)
        yield rng.uniform(1800, 3000)
        if not (yield from gate_in(world, person, rng, any_gate(world, rng))):
            return
    if rng.random() < 0.35:
        start = rng.uniform(13.5, 16.5) * H - world.day_start_h * H
        yield at_time(engine, start)
        yield from stair_trip(world, person, rng, rng.uniform(600, 1500))
    leave = rng.uniform(17.25, 18.5) if rng.random() < 0.8 else rng.uniform(18.5, 20.8)
    yield at_time(engine, leave * H - world.day_start_h * H)
    yield from gate_out(world, person, rng)


def patrol(world: World, guard: Person, rng: random.Random) -> Generator[float, None, None]:
    """A guard walks up stairway A through every landing's door, then comes back down."""
    building = world.building
    yield rng.uniform(600, 3600)
    for level in building.spec.stairways.floors[1:]:
        door = building.stair_door("a", level).id
        yield WALK_S
        yield from through(world, guard, door, "in")
        yield 120.0
        yield from out_by_button(world, door)


def visitor(world: World, n: int, seed: int) -> Process:
    """A citizen at the counters: never crosses the line; may use a consultation booth."""
    rng = random.Random(seed)
    engine = world.engine
    yield at_time(engine, rng.uniform(8.5, 16.5) * H - world.day_start_h * H)
    booths = [z.id for z in world.building.rooms(1, "booth")]
    free = [b for b in booths if not world.occupants[b]]
    if free and rng.random() < 0.4:
        now = engine.now
        yield from stay(world, rng.choice(free), now, now + rng.uniform(900, 2700), seed)
    if n % 80 == 0:  # a transport IC card held to a gate out of habit: denied, unknown
        gate = rng.choice(world.building.gates).id
        world.tap(gate, "in", "felica", f"0101{rng.getrandbits(48):012X}")


def refresh_use(world: World, zone: str) -> Process:
    """Breaks in the refresh area (booths and meeting rooms: simulator.rooms_use)."""
    engine = world.engine
    slots = [(3600.0, 0.0), (1200.0, 2 * H)]
    t = 12.0 * H
    for length, gap in slots:
        t += gap
        if t + length > 19 * H:
            return
        yield at_time(engine, t - world.day_start_h * H)
        world.presence(zone, True)
        yield length
        world.presence(zone, False)
        t += length


def area_use(world: World, zone: str, seed: int) -> Process:
    """A desk island of a department's area: occupied from its first arrival to its last leave."""
    rng = random.Random(seed)
    yield at_time(world.engine, rng.uniform(7.7, 8.2) * H - world.day_start_h * H)
    world.presence(zone, True)
    yield at_time(world.engine, rng.uniform(19.0, 20.5) * H - world.day_start_h * H)
    world.presence(zone, False)


def populate(world: World, people: list[Person], seed: int) -> None:
    """Start everyone's day on the engine (booked rooms: simulator.rooms_use)."""
    for i, person in enumerate(people):
        world.engine.spawn(staff_day(world, person, seed * 100_003 + i))
    for n in range(world.building.spec.visitors):
        world.engine.spawn(visitor(world, n, seed * 7919 + n))
    for i, zone in enumerate(world.building.zones.values()):
        if zone.id.startswith("refresh"):
            world.engine.spawn(refresh_use(world, zone.id))
        elif zone.id.startswith("area-"):
            world.engine.spawn(area_use(world, zone.id, seed * 37 + i))
