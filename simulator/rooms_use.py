"""People in booths and meeting rooms: the truth, and the raw signals their sensors give.

The world records who is really in each room (`World.enter_room`, `leave_room`); the
sensors say less. A booth's PIR pulses only while the person moves (walking in, settling,
now and then) and stays low through still stretches of 10 to 40 minutes; its door contact
opens as they come and go, and the agent's room latch keeps the booth occupied behind the
closed door. A meeting room's mmWave sensor (an LD2410's OUT pin) stays high while anyone
is there, still or not.
"""

from __future__ import annotations

import random

from simulator.engine import Engine, Process
from simulator.rooms_plan import MIN, Use
from simulator.world import World

PULSE_S = 8.0  # a PIR's output after one movement (its retrigger time)
DOOR_S = 3.0  # a door open while someone walks through
SETTLE_S = 30.0  # coat off, laptop out: the first movement after the door closed


def stay(world: World, zone: str, arrive_s: float, leave_s: float, seed: int) -> Process:
    """Someone walks into a room at `arrive_s` (simulated) and out at `leave_s`."""
    rng = random.Random(seed)
    engine = world.engine
    radar = world.building.zones[zone].kind == "meeting-room"
    yield at_time(engine, arrive_s)
    world.room_door(zone, True)
    world.enter_room(zone)
    world.sense(zone, True)
    yield DOOR_S
    world.room_door(zone, False)
    if not radar:
        yield PULSE_S
        world.sense(zone, False)
        yield SETTLE_S
        yield from _pulse(world, zone)
        while engine.now + 40 * MIN < leave_s:
            yield rng.uniform(10, 40) * MIN  # sitting still: the PIR sees nothing
            yield from _pulse(world, zone)
    yield at_time(engine, leave_s)
    if not radar:
        world.sense(zone, True)  # getting up
    world.room_door(zone, True)
    world.leave_room(zone)
    if radar:
        world.sense(zone, False)  # the radar loses them as they step out
    yield DOOR_S
    world.room_door(zone, False)
    if not radar:
        yield 1.0  # the PIR's output outlasts them by a moment
        world.sense(zone, False)


def at_time(engine: Engine, target: float) -> float:
    """Return the delay until `target` (0 if past)."""
    return max(0.0, target - engine.now)


def _pulse(world: World, zone: str) -> Process:
    world.sense(zone, True)
    yield PULSE_S
    world.sense(zone, False)


def use_room(world: World, use: Use, seed: int) -> Process:
    """Play one booking (or unbooked use) as planned: nobody comes, or someone stays."""
    if use.arrive_s is None or use.leave_s is None:
        return
    yield from stay(world, use.room, use.arrive_s, use.leave_s, seed)


def populate_rooms(world: World, uses: list[Use], seed: int) -> None:
    """Start every planned use of a room on the engine."""
    for n, use in enumerate(uses):
        if use.arrive_s is not None:
            world.engine.spawn(use_room(world, use, seed * 1_009 + n))
