"""A scripted morning at the city hall's security line and one staff stairway door.

Staff arrive between 07:55 and 08:45 through the east gate; along the way come the cases a
guard meets: a visitor's card, an expired card, a card reported lost, a card passed back,
a new starter's card that is not valid yet, a propped door, a forced door, a lockdown
with a guard passing through it, and a fire alarm that releases the stairway.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from pathlib import Path

from edge.calendar import site_calendar
from edge.core.controller import Controller
from edge.core.credentials import DenyReason
from edge.core.events import (
    CardPresented,
    ContactChanged,
    Event,
    FireInputChanged,
    ResetFire,
    SetLockdown,
)
from edge.core.outputs import EventKind, Output, Record
from edge.core.policy import AccessPolicy, Rule
from edge.core.schedule import WEEKDAYS, Schedule, TimeRange, Window
from edge.core.spec import CardSecurity
from edge.wiring import device_spec
from firmware_config.loader import load_config
from simulator.clock import FakeClock
from simulator.roster import Person, credential_store, make_staff
from simulator.timeline import Timeline

EXAMPLES = Path(__file__).resolve().parent.parent / "firmware_config" / "examples"
START = datetime(2026, 11, 30, 22, 55, tzinfo=UTC)  # Tuesday 1 December 2026, 07:55 in Tokyo
OFFICE = Schedule("office", (Window(WEEKDAYS, TimeRange(time(7), time(22))),))


def demo_policy(gate_door: str, stair_door: str) -> AccessPolicy:
    """Staff pass the gate in office hours; 2F staff use the stairway; security always."""
    return AccessPolicy(
        version=1,
        schedules={"office": OFFICE},
        rules=(
            Rule("staff", frozenset({gate_door}), "office"),
            Rule("floor-2", frozenset({stair_door}), "office"),
            Rule("security", frozenset({gate_door, stair_door}), "always"),
        ),
        override_groups=frozenset({"security"}),
    )


@dataclass
class Morning:
    """The devices, the people, and a record of what the devices did."""

    timeline: Timeline
    staff: list[Person]
    others: dict[str, Person]
    by_ref: dict[str, Person]
    gate: str
    gate_in: str
    gate_out: str
    stair: str
    stair_in: str
    inside: dict[str, Person] = field(default_factory=dict)  # roll call, from crossings
    records: list[tuple[str, Record]] = field(default_factory=list)

    def observe(self, device: str, event: Event, outputs: list[Output]) -> None:
        """Keep every record, and the roll call of who is inside the security line."""
        for output in outputs:
            if not isinstance(output, Record):
                continue
            self.records.append((device, output))
            e = output.event
            if e.kind is EventKind.ACCESS and e.type == "crossing" and e.data["door"] == self.gate:
                person = self.by_ref[e.data["card_ref"]]
                if e.data["direction"] == "in":
                    self.inside[person.name] = person
                else:
                    self.inside.pop(person.name, None)


def build(site_key: bytes, staff_count: int = 24, seed: int = 7) -> Morning:
    """Build the gate and stairway devices from the example configs, and the people."""
    gate_cfg = load_config(EXAMPLES / "security-gate.toml")
    stair_cfg = load_config(EXAMPLES / "stairway-door.toml")
    gate_spec, stair_spec = device_spec(gate_cfg), device_spec(stair_cfg)
    # The example's gate takes proven cards only; this morning's cards are known by their id,
    # as on a site that has not moved to proving cards yet: its gate reads them by their id.
    uid_readers = tuple(replace(r, security=CardSecurity.UID) for r in gate_spec.readers)
    gate_spec = replace(gate_spec, readers=uid_readers)
    gate, stair = gate_spec.doors[0].id, stair_spec.doors[0].id
    staff = make_staff(staff_count, seed)
    template = staff[0]
    others = {
        "visitor": replace(
            template,
            name="来庁者カード",
            department="受付",
            card_id="0114AAAA00000001",
            groups=frozenset({"visitors"}),
        ),
        "retired": replace(
            template,
            name="森 一郎",
            department="退職者",
            card_id="0114AAAA00000002",
            valid_until=datetime(2026, 3, 31, 15, tzinfo=UTC),
        ),
        "lost": replace(
            template,
            name="井上 真理",
            department="市民課",
            card_id="0114AAAA00000003",
            deny=DenyReason.LOST,
        ),
        "starter": replace(
            template,
            name="松本 蓮",
            department="総務課",
            card_id="0114AAAA00000004",
            valid_from=datetime(2027, 3, 31, 15, tzinfo=UTC),
        ),
        "guard": replace(
            template,
            name="警備員 木村",
            department="警備",
            card_id="0114AAAA00000005",
            groups=frozenset({"staff", "security"}),
        ),
    }
    everyone = staff + list(others.values())
    credentials = credential_store(everyone, site_key)
    policy = demo_policy(gate, stair)
    calendar = site_calendar(gate_cfg.site.closure_days)
    clock = FakeClock(START)
    devices = {
        gate_cfg.device.id: Controller(gate_spec, policy, credentials, calendar),
        stair_cfg.device.id: Controller(stair_spec, policy, credentials, calendar),
    }
    timeline = Timeline(clock, devices)
    readers = {str(r.direction): r.id for r in gate_spec.readers}
    morning = Morning(
        timeline,
        staff,
        others,
        {p.ref(site_key): p for p in everyone},
        gate,
        readers["in"],
        readers["out"],
        stair,
        stair_spec.readers[0].id,
    )
    timeline.observe(morning.observe)
    _script(morning, site_key, random.Random(seed), gate_cfg.device.id, stair_cfg.device.id)
    return morning


def _script(m: Morning, key: bytes, rng: random.Random, gate_dev: str, stair_dev: str) -> None:
    tl = m.timeline
    holding: dict[str, int] = {}  # people passing through each leaf right now

    def push(device: str, door: str) -> None:
        holding[door] = holding.get(door, 0) + 1
        if holding[door] == 1:
            tl.send(device, ContactChanged(door, True))

    def let_go(device: str, door: str) -> None:
        holding[door] -= 1
        if holding[door] == 0:
            tl.send(device, ContactChanged(door, False))

    def walk(
        device: str, door: str, reader: str, person: Person, offset: float, open_s: float = 2.0
    ) -> None:
        """Tap; if the door unlocks, open it a second later and close it `open_s` after."""

        def go() -> None:
            out = tl.send(device, CardPresented(reader, person.ref(key)))
            if any(isinstance(o, Record) and o.event.type == "granted" for o in out):
                tl.at(1.0, device, lambda: push(device, door))
                tl.at(1.0 + open_s, device, lambda: let_go(device, door))

        tl.at(offset, device, go)

    def enter(person: Person, offset: float) -> None:
        walk(gate_dev, m.gate, m.gate_in, person, offset)

    def at(offset: float, device: str, event: Event | Callable[[], None]) -> None:
        tl.at(offset, device, event)

    # 07:55-08:45: the morning wave, with the awkward cases in between.
    arrivals = sorted(rng.uniform(0, 50 * 60) for _ in m.staff)
    for person, offset in zip(m.staff, arrivals, strict=True):
        enter(person, offset)
    enter(m.others["visitor"], 6 * 60 + 5)
    enter(m.others["retired"], 9 * 60 + 30)
    enter(m.others["lost"], 12 * 60 + 10)
    enter(m.others["starter"], 14 * 60 + 45)
    enter(m.staff[0], arrivals[0] + 40)  # the first arrival's card, passed back outside
    # 08:16 a member of staff holds the gate for a delivery: 45 s open.
    delivery = m.staff[len(m.staff) // 2]
    walk(gate_dev, m.gate, m.gate_out, delivery, 21 * 60, open_s=45)
    enter(delivery, 23 * 60)
    # 08:22 a finance officer comes back up from the counter by the stairway.
    upstairs = next(p for p in m.staff if "floor-2" in p.groups)
    walk(stair_dev, m.stair, m.stair_in, upstairs, 27 * 60)
    # 08:30 the console locks the site down: staff are refused, the guard passes.
    at(35 * 60, gate_dev, SetLockdown(True, by="console:security-office"))
    at(35 * 60, stair_dev, SetLockdown(True, by="console:security-office"))
    enter(m.staff[-1], 35 * 60 + 20)
    enter(m.others["guard"], 36 * 60)
    at(38 * 60, gate_dev, SetLockdown(False, by="console:security-office"))
    at(38 * 60, stair_dev, SetLockdown(False, by="console:security-office"))
    # 08:40 someone forces the stairway door from the stairs.
    at(45 * 60, stair_dev, lambda: push(stair_dev, m.stair))
    at(45 * 60 + 4, stair_dev, lambda: let_go(stair_dev, m.stair))
    # 08:47 fire alarm: the stairway releases (fail-safe), the gate stays (fail-secure).
    at(52 * 60, stair_dev, FireInputChanged(m.stair, True))
    at(56 * 60, stair_dev, FireInputChanged(m.stair, False))
    at(58 * 60, stair_dev, ResetFire(by="operator:facilities"))
