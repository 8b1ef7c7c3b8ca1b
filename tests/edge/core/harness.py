"""A small device for core tests: a security-line gate and a fail-safe stairway door."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

from edge.core.controller import Controller
from edge.core.credentials import CardProfile, Credential, DenyReason, InMemoryCredentials
from edge.core.events import Event, Tick
from edge.core.outputs import EventKind, Lock, Output, Record, Unlock
from edge.core.policy import AccessPolicy, Rule
from edge.core.schedule import WEEKDAYS, ClosureDays, Schedule, TimeRange, Window
from edge.core.spec import (
    AntiPassback,
    CardSecurity,
    DeviceSpec,
    Direction,
    DoorSpec,
    FailMode,
    PresenceSpec,
    ReaderSpec,
    ZoneSpec,
)
from simulator.clock import FakeClock

# Tuesday 2026-12-01, 08:30 in Tokyo.
MORNING = datetime(2026, 11, 30, 23, 30, tzinfo=UTC)

GATE = DoorSpec(
    "gate", "lobby", "staff", FailMode.SECURE, unlock_s=5, held_open_s=30, pre_alarm_s=10
)
STAIR = DoorSpec(
    "stair",
    "stairs",
    "floor2",
    FailMode.SAFE,
    unlock_s=5,
    held_open_s=20,
    pre_alarm_s=5,
    has_fire_input=True,
)

SPEC = DeviceSpec(
    id="test-device",
    zones=(
        ZoneSpec("lobby"),
        ZoneSpec("staff", anti_passback=AntiPassback.HARD, forgive_at=time(3, 0)),
        ZoneSpec("stairs", kind="stairway"),
        ZoneSpec("floor2"),
        ZoneSpec("booth", kind="booth", capacity=1),
    ),
    doors=(GATE, STAIR),
    readers=(
        ReaderSpec("gate-in", "gate", Direction.IN),
        ReaderSpec("gate-out", "gate", Direction.OUT),
        ReaderSpec("stair-in", "stair", Direction.IN, CardSecurity.AUTHENTICATED),
    ),
    presence=(PresenceSpec("booth-pir", "booth", hold_s=60),),
)

OFFICE_HOURS = Schedule("office", (Window(WEEKDAYS, TimeRange(time(7), time(20))),))
POLICY = AccessPolicy(
    version=1,
    schedules={"office": OFFICE_HOURS},
    rules=(
        Rule("staff", frozenset({"gate"}), "office"),
        Rule("finance", frozenset({"stair"}), "office"),
        Rule("security", frozenset({"gate", "stair"}), "always"),
    ),
    override_groups=frozenset({"security"}),
)


def credentials() -> InMemoryCredentials:
    return InMemoryCredentials(
        [
            Credential("ref-alice", frozenset({"staff", "finance"})),
            Credential("ref-bob", frozenset({"staff"})),
            Credential("ref-guard", frozenset({"security"})),
            Credential(
                "ref-new", frozenset({"staff"}), valid_from=datetime(2027, 4, 1, tzinfo=UTC)
            ),
            Credential(
                "ref-old", frozenset({"staff"}), valid_until=datetime(2026, 3, 31, tzinfo=UTC)
            ),
            Credential("ref-visitor", frozenset({"visitors"})),
            Credential("ref-lost", frozenset({"staff"})),
            # Enrolled as able to prove itself: its id alone is never enough.
            Credential("ref-lite", frozenset({"staff"}), profile=CardProfile.LITE_S),
            Credential("ref-desfire", frozenset({"staff"}), profile=CardProfile.DESFIRE),
        ],
        deny={"ref-lost": DenyReason.LOST, "ref-gone": DenyReason.REVOKED},
    )


@dataclass
class Harness:
    """Drives a controller with a fake clock and keeps every output."""

    controller: Controller
    clock: FakeClock
    log: list[Output] = field(default_factory=list)

    def send(self, event: Event) -> list[Output]:
        out = self.controller.handle(event, self.clock.now())
        self.log += out
        return out

    def advance(self, seconds: float, step: float = 1.0) -> list[Output]:
        """Move time forward, ticking every `step` seconds as the agent's loop would."""
        out: list[Output] = []
        remaining = seconds
        while remaining > 0:
            delta = min(step, remaining)
            self.clock.advance(delta)
            remaining -= delta
            out += self.send(Tick())
        return out


def records(
    outputs: Iterable[Output], kind: EventKind | None = None, type_: str | None = None
) -> list[dict[str, Any]]:
    """Return the payloads of the records among `outputs`, filtered by kind and type."""
    return [
        o.event.payload()
        for o in outputs
        if isinstance(o, Record)
        and (kind is None or o.event.kind is kind)
        and (type_ is None or o.event.type == type_)
    ]


def relay(outputs: Iterable[Output], door: str) -> list[str]:
    """Return the lock actions on `door`, in order: "unlock" / "lock"."""
    return [
        "unlock" if isinstance(o, Unlock) else "lock"
        for o in outputs
        if isinstance(o, Unlock | Lock) and o.door == door
    ]


def make_harness(
    spec: DeviceSpec = SPEC,
    policy: AccessPolicy = POLICY,
    start: datetime = MORNING,
    fire_reset_manual: bool | None = None,
) -> Harness:
    if fire_reset_manual is not None:
        spec = DeviceSpec(
            spec.id,
            spec.timezone,
            fire_reset_manual,
            spec.zones,
            spec.doors,
            spec.readers,
            spec.presence,
        )
    controller = Controller(
        spec,
        policy,
        credentials(),
        ClosureDays.parse(["12-29", "12-30", "12-31", "01-01", "01-02", "01-03"]),
    )
    return Harness(controller, FakeClock(start))
