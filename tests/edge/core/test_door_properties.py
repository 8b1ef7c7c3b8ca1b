"""Hypothesis stateful tests: random sequences of taps, contacts, buttons, fire, lockdown,
holds, resets and time, checked against the safety properties after every step.

The test keeps its own account of why a door may be unlocked (a grant, exit button or
command within unlock_s, a hold, the fire release), independent of the door machine, so a
bug in the machine's bookkeeping shows up as a property violation.
"""

from __future__ import annotations

from copy import copy as shallow_copy
from copy import deepcopy
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from edge.core.clock import Instant
from edge.core.events import (
    CardPresented,
    ContactChanged,
    Event,
    ExitPressed,
    FireInputChanged,
    PresenceChanged,
    ResetAlarms,
    ResetFire,
    ResetOccupancy,
    SetHoldOpen,
    SetLockdown,
    Tick,
    UnlockOnce,
)
from edge.core.outputs import EventKind, Lock, Output, Record, Unlock
from edge.core.policy import AccessPolicy
from edge.core.schedule import WEEKDAYS, Schedule, TimeRange, Window
from edge.core.spec import FailMode
from tests.edge.core.harness import POLICY, SPEC, make_harness, records

LUNCH = Schedule("lunch", (Window(WEEKDAYS, TimeRange(time(12), time(13))),))
PROPERTY_POLICY = replace(
    POLICY,
    schedules={**POLICY.schedules, "lunch": LUNCH},
    door_schedules={"stair": "lunch"},
)
START = datetime(2026, 12, 1, 2, 58, tzinfo=UTC)  # Tuesday 11:58 in Tokyo
DOORS = [d.id for d in SPEC.doors]
SPECS = {d.id: d for d in SPEC.doors}
READERS = {r.id: r for r in SPEC.readers}
CARDS = ["ref-bob", "ref-alice", "ref-guard", "ref-visitor", "ref-lost", "ref-nobody", "ref-old"]
OVERRIDE_CARDS = {"ref-guard"}
STEPS = [0.1, 0.5, 1.0, 4.9, 5.0, 5.1, 10.0, 15.0, 19.9, 20.0, 25.0, 30.0, 60.0, 600.0, 1800.0]


class DoorSafety(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.h = make_harness(
            policy=AccessPolicy(
                version=PROPERTY_POLICY.version,
                schedules=PROPERTY_POLICY.schedules,
                rules=PROPERTY_POLICY.rules,
                override_groups=PROPERTY_POLICY.override_groups,
                door_schedules=PROPERTY_POLICY.door_schedules,
            ),
            start=START,
        )
        self.unlocked = dict.fromkeys(DOORS, False)  # from the Unlock/Lock outputs
        self.is_open = dict.fromkeys(DOORS, False)
        self.momentary_at: dict[str, float | None] = dict.fromkeys(DOORS, None)
        self.open_since_momentary = dict.fromkeys(DOORS, False)
        self.held_cmd = dict.fromkeys(DOORS, False)
        self.lockdown = False
        self.fire_inputs: set[str] = set()
        self.fire_latched = False
        self.supervised_since: dict[str, float | None] = dict.fromkeys(DOORS, None)
        self.held_alarm_seen = dict.fromkeys(DOORS, False)
        self.step_events: list[Event] = []
        self.last_out: list[Output] = []

    # -- the test's own account --------------------------------------------------------

    @property
    def now(self) -> float:
        return self.h.clock.now().mono

    def fire_release(self) -> bool:
        return bool(self.fire_inputs) or self.fire_latched

    def held(self, door: str) -> bool:
        if self.lockdown:
            return False
        local = self.h.clock.now().utc.astimezone(self.h.controller._tz)
        by_schedule = door == "stair" and LUNCH.is_open(local, self.h.controller.calendar)
        return self.held_cmd[door] or by_schedule

    def free(self, door: str) -> bool:
        fire = self.fire_release() and SPECS[door].fail is FailMode.SAFE
        return fire or self.held(door)

    def momentary_live(self, door: str) -> bool:
        at = self.momentary_at[door]
        if at is None:
            return False
        return self.now - at < SPECS[door].unlock_s or self.open_since_momentary[door]

    def send(self, event: Event) -> list[Output]:
        out = self.h.send(event)
        for o in out:
            if isinstance(o, Unlock | Lock):
                want = isinstance(o, Unlock)
                assert self.unlocked[o.door] != want, f"{o} repeats the lock's state"
                self.unlocked[o.door] = want
        for r in records(out, EventKind.ALARM, "door_held_open"):
            if r["state"] == "raised":
                self.held_alarm_seen[r["door"]] = True
        self.last_out = out
        return out

    def momentary(self, door: str) -> None:
        self.momentary_at[door] = self.now
        self.open_since_momentary[door] = self.is_open[door]

    def update_supervision(self) -> None:
        for door in DOORS:
            supervised = self.is_open[door] and not self.free(door)
            if supervised and self.supervised_since[door] is None:
                self.supervised_since[door] = self.now
                self.held_alarm_seen[door] = False
            elif not supervised:
                self.supervised_since[door] = None

    # -- rules ---------------------------------------------------------------------------

    @rule(
        reader=st.sampled_from(sorted(READERS)),
        card=st.sampled_from(CARDS),
        authenticated=st.booleans(),
    )
    def tap(self, reader: str, card: str, authenticated: bool) -> None:
        out = self.send(CardPresented(reader, card, authenticated))
        granted = records(out, EventKind.ACCESS, "granted")
        if granted:
            assert not self.lockdown or card in OVERRIDE_CARDS, (
                "lockdown granted a non-override card"
            )
            self.momentary(READERS[reader].door)
        if card == "ref-lost":
            assert records(out, EventKind.ALARM, "lost_card_used")

    @rule(door=st.sampled_from(DOORS), is_open=st.booleans())
    def contact(self, door: str, is_open: bool) -> None:
        was_open = self.is_open[door]
        self.send(ContactChanged(door, is_open))
        self.is_open[door] = is_open
        if is_open and not was_open and self.momentary_live(door):
            self.open_since_momentary[door] = True
        if not is_open and was_open and self.open_since_momentary[door]:
            self.momentary_at[door] = None
            self.open_since_momentary[door] = False
        self.update_supervision()

    @rule(door=st.sampled_from(DOORS))
    def exit_button(self, door: str) -> None:
        self.send(ExitPressed(door))
        self.momentary(door)
        self.update_supervision()

    @rule(door=st.sampled_from(DOORS))
    def unlock_once(self, door: str) -> None:
        self.send(UnlockOnce(door))
        self.momentary(door)

    @rule(door=st.sampled_from(DOORS), active=st.booleans())
    def fire_input(self, door: str, active: bool) -> None:
        if active:
            if not self.fire_inputs:
                self.fire_latched = True
            self.fire_inputs.add(door)
        else:
            self.fire_inputs.discard(door)
        self.send(FireInputChanged(door, active))
        self.update_supervision()

    @rule()
    def fire_reset(self) -> None:
        if not self.fire_inputs:
            self.fire_latched = False
        self.send(ResetFire())
        self.update_supervision()

    @rule(on=st.booleans())
    def lockdown_switch(self, on: bool) -> None:
        self.lockdown = on
        self.send(SetLockdown(on))
        if on:
            for door in DOORS:
                if not self.is_open[door]:
                    self.momentary_at[door] = None
        self.update_supervision()

    @rule(door=st.sampled_from(DOORS), on=st.booleans())
    def hold(self, door: str, on: bool) -> None:
        self.held_cmd[door] = on
        self.send(SetHoldOpen(door, on))
        self.update_supervision()

    @rule(door=st.sampled_from(DOORS))
    def reset_alarms(self, door: str) -> None:
        self.send(ResetAlarms(door))
        if self.supervised_since[door] is not None:
            self.supervised_since[door] = self.now
            self.held_alarm_seen[door] = False

    @rule(active=st.booleans())
    def presence(self, active: bool) -> None:
        self.send(PresenceChanged("booth-pir", active))

    @rule(zone=st.sampled_from(["staff", "lobby"]))
    def reset_occupancy(self, zone: str) -> None:
        self.send(ResetOccupancy(zone))

    @rule(seconds=st.sampled_from(STEPS) | st.floats(0.01, 120))
    def advance(self, seconds: float) -> None:
        self.h.clock.advance(seconds)
        self.send(Tick())
        for door in DOORS:
            if self.momentary_at[door] is not None and not self.momentary_live(door):
                self.momentary_at[door] = None
        self.update_supervision()

    @rule(fraction=st.floats(0.0, 0.999))
    def nothing_fires_before_the_next_deadline(self, fraction: float) -> None:
        """The simulator skips time up to next_deadline(): no timer may fire before it."""
        controller = self.h.controller
        deadline = controller.next_deadline()
        horizon = self.now + 3600 if deadline is None else deadline
        if horizon <= self.now:
            return
        copy = shallow_copy(controller)  # the timers' state is copied; rules are shared
        copy.doors = deepcopy(controller.doors)
        copy.presence = deepcopy(controller.presence)
        copy.counts = deepcopy(controller.counts)
        copy.passback = deepcopy(controller.passback)
        now = self.h.clock.now()
        skip = (horizon - now.mono) * fraction
        later = Instant(now.mono + skip, now.utc + timedelta(seconds=skip))
        # Every timer leaves a record; the schedule's holds are read from the wall clock.
        fired = [
            o.event
            for o in copy.handle(Tick(), later)
            if isinstance(o, Record)
            and o.event.data.get("cause") != "schedule"
            and o.event.type != "anti_passback_forgiven"
        ]
        assert fired == [], f"fired {skip:.3f} s on, before the deadline: {fired}"

    @precondition(lambda self: any(self.is_open.values()))
    @rule()
    def tick(self) -> None:
        self.send(Tick())

    # -- properties ----------------------------------------------------------------------

    @invariant()
    def never_unlocked_without_a_reason(self) -> None:
        for door in DOORS:
            if self.unlocked[door]:
                assert self.free(door) or self.momentary_live(door), (
                    f"{door} unlocked with no grant, exit, command, hold or fire: "
                    f"{self.h.controller.doors[door]!r}"
                )

    @invariant()
    def fire_always_releases_fail_safe_doors(self) -> None:
        if self.fire_release():
            for door in DOORS:
                if SPECS[door].fail is FailMode.SAFE:
                    assert self.unlocked[door], f"fire is active but {door} is locked"

    @invariant()
    def held_open_door_raises_an_alarm(self) -> None:
        for door in DOORS:
            since = self.supervised_since[door]
            if since is not None and self.now - since >= SPECS[door].held_open_s:
                assert self.held_alarm_seen[door] or self.h.controller.doors[door].held_alarm, (
                    f"{door} open and supervised for {self.now - since:.1f} s "
                    "without a held-open alarm"
                )

    @invariant()
    def occupancy_never_negative(self) -> None:
        for zone in ("lobby", "staff", "stairs", "floor2"):
            count = self.h.controller.counts.count(zone)
            assert count is not None
            assert count >= 0
        for r in records(self.last_out, EventKind.OCCUPANCY):
            assert r["count"] is None or r["count"] >= 0

    @invariant()
    def the_machine_agrees_on_the_lock(self) -> None:
        for door in DOORS:
            assert self.h.controller.doors[door].unlocked == self.unlocked[door]


DoorSafety.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDoorSafety = DoorSafety.TestCase
