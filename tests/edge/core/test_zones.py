"""Anti-passback, zone occupancy from crossings, and presence debouncing."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta

from edge.core.decision import Reason
from edge.core.events import CardPresented, ContactChanged, PresenceChanged, ResetOccupancy
from edge.core.outputs import EventKind
from edge.core.policy import AccessPolicy
from edge.core.spec import AntiPassback
from tests.edge.core.harness import POLICY, SPEC, Harness, make_harness, records


def cross(h: Harness, reader: str, ref: str) -> dict[str, object]:
    (decision,) = records(h.send(CardPresented(reader, ref)), EventKind.ACCESS)
    door = "gate" if reader.startswith("gate") else "stair"
    if decision["type"] == "granted":
        h.send(ContactChanged(door, True))
        h.send(ContactChanged(door, False))
    return decision


def test_hard_anti_passback_refuses_a_second_entry(h: Harness) -> None:
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.ANTI_PASSBACK
    assert cross(h, "gate-out", "ref-bob")["reason"] == Reason.GRANTED
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED


def test_granted_but_unused_entry_does_not_move_the_card(h: Harness) -> None:
    h.send(CardPresented("gate-in", "ref-bob"))
    h.advance(6)
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED


def test_soft_anti_passback_grants_and_flags() -> None:
    zones = tuple(
        replace(z, anti_passback=AntiPassback.SOFT) if z.id == "staff" else z for z in SPEC.zones
    )
    h = make_harness(spec=replace(SPEC, zones=zones))
    cross(h, "gate-in", "ref-bob")
    second = cross(h, "gate-in", "ref-bob")
    assert second["reason"] == Reason.GRANTED
    assert second["anti_passback_violation"] is True
    (alarm,) = records(h.log, EventKind.ALARM, "anti_passback_violation")
    assert alarm["card_ref"] == "ref-bob"


def test_positions_are_forgiven_at_the_zone_time() -> None:
    # 02:00 Tokyo on Wednesday 2 December; forgiveness at 03:00.
    h = make_harness(start=datetime(2026, 12, 1, 17, 0, tzinfo=UTC))

    h.controller.policy = AccessPolicy(
        rules=h.controller.policy.rules, schedules=h.controller.policy.schedules
    )
    assert cross(h, "gate-in", "ref-guard")["reason"] == Reason.GRANTED
    assert not records(h.advance(3599, step=60), EventKind.SYSTEM, "anti_passback_forgiven")
    out = h.advance(2, step=1)
    assert records(out, EventKind.SYSTEM, "anti_passback_forgiven")[0]["zone"] == "staff"
    assert not records(h.advance(600, step=60), EventKind.SYSTEM, "anti_passback_forgiven")
    assert cross(h, "gate-in", "ref-guard")["reason"] == Reason.GRANTED


def test_occupancy_counts_crossings_and_never_goes_negative(h: Harness) -> None:
    cross(h, "gate-in", "ref-bob")
    cross(h, "gate-in", "ref-alice")
    occupancy = {r["zone"]: r for r in records(h.log, EventKind.OCCUPANCY)}
    assert occupancy["staff"]["count"] == 2
    assert occupancy["staff"]["occupied"] is True
    assert h.controller.counts.count("lobby") == 0
    cross(h, "gate-out", "ref-bob")
    assert h.controller.counts.count("staff") == 1
    assert h.controller.counts.count("lobby") == 1
    out = h.send(ResetOccupancy("staff", by="guard"))
    assert records(out, EventKind.OCCUPANCY)[0]["count"] == 0
    cross(h, "gate-out", "ref-alice")
    assert h.controller.counts.count("staff") == 0


def test_presence_is_occupied_at_once_and_vacant_after_hold(h: Harness) -> None:
    out = h.send(PresenceChanged("booth-pir", True))
    assert records(out, EventKind.PRESENCE)[0]["type"] == "occupied"
    occupancy = records(out, EventKind.OCCUPANCY)[0]
    assert (occupancy["zone"], occupancy["occupied"], occupancy["capacity"]) == ("booth", True, 1)
    assert h.send(PresenceChanged("booth-pir", False)) == []
    assert records(h.advance(59), EventKind.PRESENCE) == []
    h.send(PresenceChanged("booth-pir", True))  # someone moves: the hold starts again
    h.send(PresenceChanged("booth-pir", False))
    assert records(h.advance(59), EventKind.PRESENCE) == []
    out = h.advance(1)
    assert records(out, EventKind.PRESENCE)[0]["type"] == "vacant"
    assert records(out, EventKind.OCCUPANCY)[0]["occupied"] is False


def test_presence_chatter_is_one_occupied_event(h: Harness) -> None:
    for _ in range(20):
        h.send(PresenceChanged("booth-pir", True))
        h.advance(2)
        h.send(PresenceChanged("booth-pir", False))
        h.advance(3)
    assert [r["type"] for r in records(h.log, EventKind.PRESENCE)] == ["occupied"]


def test_forgive_time_uses_local_time() -> None:
    h = make_harness(start=datetime(2026, 12, 1, 18, 0, 1, tzinfo=UTC))  # 03:00:01 Tokyo
    local = h.clock.now().utc.astimezone(h.controller._tz)
    assert local.time() >= time(3)
    assert local.utcoffset() == timedelta(hours=9)
    assert records(h.advance(1), EventKind.SYSTEM, "anti_passback_forgiven")


def test_a_restart_after_the_forgive_time_does_not_forgive_twice() -> None:
    start = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)  # 03:30 Tokyo, after forgiveness time
    first = make_harness(start=start)
    assert records(first.advance(1), EventKind.SYSTEM, "anti_passback_forgiven")
    assert cross(first, "gate-in", "ref-guard")["reason"] == Reason.GRANTED
    state = first.controller.snapshot()
    positions = [("ref-guard", "staff")]

    second = make_harness(start=start + timedelta(minutes=5))
    second.controller.restore(second.clock.now(), state, positions)
    assert not records(second.advance(1), EventKind.SYSTEM, "anti_passback_forgiven")
    assert cross(second, "gate-in", "ref-guard")["reason"] == Reason.ANTI_PASSBACK


def test_the_access_policy_overrides_anti_passback_and_adds_closure_days() -> None:
    h = make_harness()
    # The device configuration says hard for "staff"; the site's rules say off.
    h.controller.policy = AccessPolicy(
        rules=POLICY.rules, schedules=POLICY.schedules, anti_passback={"staff": ("off", None)}
    )
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED  # no anti-passback now
    # 1 December becomes a closure day: office hours do not apply on it.
    h.controller.policy = AccessPolicy(
        rules=POLICY.rules, schedules=POLICY.schedules, closure_days=("12-01",)
    )
    assert cross(h, "gate-out", "ref-bob")["reason"] == Reason.OUT_OF_SCHEDULE
    h.controller.policy = POLICY  # back to the configuration's own settings
    assert cross(h, "gate-out", "ref-bob")["reason"] == Reason.GRANTED
    assert cross(h, "gate-out", "ref-bob")["reason"] == Reason.ANTI_PASSBACK
