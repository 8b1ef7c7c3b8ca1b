"""A gate cut off from its peers: each zone's offline fallback, the degraded alarm, the grace
period; conflicts found after a partition; the daily forgiveness dated at its scheduled
instant; and exit-button openings counted as people leaving."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.core.antipassback import AntiPassbackTracker
from edge.core.controller import DeviceState
from edge.core.cutoff import PEERS_LOST_AFTER_S
from edge.core.decision import Reason
from edge.core.events import CardPresented, ContactChanged, ExitPressed, PeersReachable
from edge.core.outputs import EventKind
from edge.core.policy import AccessPolicy
from edge.core.spec import AntiPassback, DeviceSpec, OfflineFallback
from tests.edge.core.harness import POLICY, SPEC, Harness, make_harness, records
from tests.edge.core.test_zones import cross


def spec_with(offline: OfflineFallback, mode: AntiPassback = AntiPassback.HARD) -> DeviceSpec:
    zones = tuple(
        replace(z, anti_passback=mode, offline=offline) if z.id == "staff" else z
        for z in SPEC.zones
    )
    return replace(SPEC, zones=zones)


def degraded(h: Harness) -> list[tuple[str, str]]:
    return [
        (r["zone"], r["state"]) for r in records(h.log, EventKind.ALARM, "anti_passback_degraded")
    ]


def test_cut_off_soft_grants_flags_and_raises_degraded_once_then_clears() -> None:
    h = make_harness(spec_with(OfflineFallback.SOFT))
    h.send(PeersReachable(up=True))
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    down_at = h.clock.now().utc
    h.send(PeersReachable(up=False))
    h.advance(PEERS_LOST_AFTER_S + 5)
    assert degraded(h) == [("staff", "raised")]
    (alarm,) = records(h.log, EventKind.ALARM, "anti_passback_degraded")
    assert alarm["since"] == down_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    # The second entry anti-passback would refuse: granted, flagged, alarmed.
    decision = cross(h, "gate-in", "ref-bob")
    assert decision["reason"] == Reason.GRANTED
    assert decision["anti_passback_violation"] is True
    assert len(records(h.log, EventKind.ALARM, "anti_passback_violation")) == 1
    h.advance(120)
    assert degraded(h) == [("staff", "raised")]  # raised once, not per tick
    h.send(PeersReachable(up=True))
    assert degraded(h) == [("staff", "raised"), ("staff", "cleared")]
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.ANTI_PASSBACK


def test_cut_off_hard_keeps_refusing_and_raises_nothing() -> None:
    h = make_harness(spec_with(OfflineFallback.HARD))
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    h.send(PeersReachable(up=False))
    h.advance(PEERS_LOST_AFTER_S * 6)
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.ANTI_PASSBACK
    assert degraded(h) == []
    # Once the cut-off has come and gone unnoticed, no timer is left pending (a stepped
    # clock would otherwise crawl in small steps through a long outage).
    assert h.controller.next_deadline() is None


def test_a_short_outage_is_no_cut_off() -> None:
    h = make_harness(spec_with(OfflineFallback.SOFT))
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    h.send(PeersReachable(up=False))
    h.advance(PEERS_LOST_AFTER_S - 1)
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.ANTI_PASSBACK
    h.send(PeersReachable(up=True))
    h.advance(60)
    assert degraded(h) == []
    # Down again: the grace period starts afresh.
    h.send(PeersReachable(up=False))
    h.advance(PEERS_LOST_AFTER_S - 1)
    assert degraded(h) == []
    h.advance(1)
    assert degraded(h) == [("staff", "raised")]


def test_the_grace_period_counts_from_start_until_the_first_connection() -> None:
    h = make_harness(spec_with(OfflineFallback.SOFT))
    h.send(PeersReachable(up=False))  # what the agent sends at start, link not yet up
    assert h.controller.next_deadline() == pytest.approx(h.clock.now().mono + PEERS_LOST_AFTER_S)
    h.advance(PEERS_LOST_AFTER_S)
    assert degraded(h) == [("staff", "raised")]


def test_without_a_link_a_device_is_never_cut_off() -> None:
    h = make_harness(spec_with(OfflineFallback.SOFT))
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    h.advance(3600, step=60)
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.ANTI_PASSBACK
    assert degraded(h) == []


def test_the_policy_sets_the_offline_fallback() -> None:
    policy = AccessPolicy(
        version=2,
        schedules=POLICY.schedules,
        rules=POLICY.rules,
        override_groups=POLICY.override_groups,
        anti_passback={"staff": ("hard", "03:00")},
        anti_passback_offline={"staff": "soft"},
    )
    h = make_harness(spec_with(OfflineFallback.HARD), policy)
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    h.send(PeersReachable(up=False))
    h.advance(PEERS_LOST_AFTER_S)
    assert degraded(h) == [("staff", "raised")]
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    # The policy switching anti-passback off ends the zone's degraded state.
    h.controller.policy = replace(policy, anti_passback={"staff": ("off", None)})
    h.advance(1)
    assert degraded(h) == [("staff", "raised"), ("staff", "cleared")]


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(
        st.one_of(st.booleans(), st.floats(min_value=0.5, max_value=30)), min_size=1, max_size=30
    )
)
def test_degraded_alarms_alternate_and_follow_the_link(steps: list[bool | float]) -> None:
    """Whatever the link does, raised and cleared alternate, and the alarm is up exactly when
    the link has been down for the grace period."""
    h = make_harness(spec_with(OfflineFallback.SOFT))
    down_since: float | None = None
    for step in steps:
        if isinstance(step, bool):
            h.send(PeersReachable(up=step))
            if step:
                down_since = None
            elif down_since is None:
                down_since = h.clock.now().mono
        else:
            h.advance(step)
        states = [s for _, s in degraded(h)]
        assert states == ["raised", "cleared"] * (len(states) // 2) + (
            ["raised"] if len(states) % 2 else []
        )
        cut = down_since is not None and h.clock.now().mono - down_since >= PEERS_LOST_AFTER_S
        assert (states[-1:] == ["raised"]) == cut


# -- conflicts ------------------------------------------------------------------------------


STAMP_OWN = ("2026-12-01T00:00:00.000Z", "gate-a", 0)
LATER = ("2026-12-01T00:05:00.000Z", "gate-b", 7)
EARLIER = ("2026-11-30T23:55:00.000Z", "gate-b", 7)


def tracker_with_own_entry() -> AntiPassbackTracker:
    tracker = AntiPassbackTracker(SPEC.zones)
    tracker.crossed("ref-bob", "staff", STAMP_OWN)
    return tracker


@pytest.mark.parametrize(
    ("from_zone", "to_zone", "stamp", "me", "expected"),
    [
        # The card I let into staff entered staff again elsewhere, later: conflict.
        ("lobby", "staff", LATER, "gate-a", ("staff", STAMP_OWN)),
        # ...or moved on from another zone than staff.
        ("floor2", "stairs", LATER, "gate-a", ("staff", STAMP_OWN)),
        # It left staff at the other gate: consistent.
        ("staff", "lobby", LATER, "gate-a", None),
        # Older than my crossing: it does not move the card, nothing to report.
        ("lobby", "staff", EARLIER, "gate-a", None),
        # Not my crossing: only the device whose crossing is contradicted reports.
        ("lobby", "staff", LATER, "gate-c", None),
    ],
)
def test_a_conflict_is_found_only_by_the_contradicted_device(
    from_zone: str,
    to_zone: str,
    stamp: tuple[str, str, int],
    me: str,
    expected: object,
) -> None:
    tracker = tracker_with_own_entry()
    assert tracker.contradicted("ref-bob", from_zone, to_zone, stamp, me) == expected


def test_no_conflict_where_anti_passback_is_off() -> None:
    # floor2 has anti-passback off: leaving it without a crossing (a free stairway door) is
    # normal, so coming back in by another door contradicts nothing worth an alarm.
    tracker = AntiPassbackTracker(SPEC.zones)
    tracker.crossed("ref-bob", "floor2", STAMP_OWN)
    assert tracker.contradicted("ref-bob", "stairs", "floor2", LATER, "gate-a") is None


def test_no_conflict_for_an_unknown_or_forgiven_card() -> None:
    tracker = tracker_with_own_entry()
    assert tracker.contradicted("ref-eve", "lobby", "staff", LATER, "gate-a") is None
    tracker.forgive("ref-bob", None, ("2026-12-01T00:01:00.000Z", "gate-a", 0))
    assert tracker.position("ref-bob") is None  # nowhere, stamped by gate-a itself
    assert tracker.contradicted("ref-bob", "lobby", "staff", LATER, "gate-a") is None


# -- the forgiveness instant ------------------------------------------------------------------


def test_a_device_started_after_the_forgive_time_keeps_later_crossings() -> None:
    # 10:00 Tokyo on Tuesday 1 December; the zone is forgiven at 03:00 (18:00 UTC the day before).
    start = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
    h = make_harness(start=start)
    h.controller.restore(
        h.clock.now(),
        DeviceState(),
        positions=[
            ("ref-bob", "staff", ("2026-11-30T17:00:00.000Z", "gate-b", 1)),  # 02:00: before
            ("ref-alice", "staff", ("2026-11-30T20:00:00.000Z", "gate-b", 2)),  # 05:00: after
        ],
    )
    (forgiven,) = records(h.advance(1), EventKind.SYSTEM, "anti_passback_forgiven")
    assert forgiven["forgiven_at"] == "2026-11-30T18:00:00.000Z"
    passback = h.controller.passback
    assert passback.position("ref-bob") is None
    assert passback.position("ref-alice") == "staff"
    # A peer's crossing from 09:00 Tokyo arrives late: after the forgiveness, so it counts.
    assert passback.merge("ref-guard", "staff", ("2026-12-01T00:00:00.000Z", "gate-b", 3))
    # One from 02:59 does not.
    assert not passback.merge("ref-lost", "staff", ("2026-11-30T17:59:00.000Z", "gate-b", 4))


def test_the_forgiveness_instant_is_restored_after_a_restart() -> None:
    start = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)  # 10:00 Tokyo
    first = make_harness(start=start)
    assert records(first.advance(1), EventKind.SYSTEM, "anti_passback_forgiven")
    saved = first.controller.snapshot()
    again = make_harness(start=start.replace(hour=2))
    again.controller.restore(again.clock.now(), saved)
    assert not records(again.advance(1), EventKind.SYSTEM, "anti_passback_forgiven")
    passback = again.controller.passback
    assert passback.forgiven_at("staff") == "2026-11-30T18:00:00.000Z"
    assert passback.forgotten("staff", ("2026-11-30T17:59:59.999Z", "gate-b", 1))
    assert not passback.forgotten("staff", ("2026-11-30T18:00:00.000Z", "gate-b", 1))


def test_every_device_forgives_at_the_same_instant_whenever_it_ticks() -> None:
    early = make_harness(start=datetime(2026, 11, 30, 18, 0, 1, tzinfo=UTC))  # 03:00:01
    late = make_harness(start=datetime(2026, 11, 30, 23, 0, tzinfo=UTC))  # 08:00
    at = [
        records(h.advance(1), EventKind.SYSTEM, "anti_passback_forgiven")[0]["forgiven_at"]
        for h in (early, late)
    ]
    assert at == ["2026-11-30T18:00:00.000Z"] * 2


# -- exit buttons -----------------------------------------------------------------------------


def counts(h: Harness) -> dict[str, int | None]:
    return {z: h.controller.counts.count(z) for z in ("lobby", "staff")}


def test_an_exit_button_opening_counts_one_person_leaving(h: Harness) -> None:
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    assert cross(h, "gate-in", "ref-alice")["reason"] == Reason.GRANTED
    assert counts(h) == {"lobby": 0, "staff": 2}
    h.send(ExitPressed("gate"))
    h.send(ContactChanged("gate", True))
    h.send(ContactChanged("gate", False))
    (exit_,) = records(h.log, EventKind.ACCESS, "button_exit")
    assert (exit_["door"], exit_["from_zone"], exit_["to_zone"]) == ("gate", "staff", "lobby")
    assert "card_ref" not in exit_
    assert counts(h) == {"lobby": 1, "staff": 1}
    # Positions are untouched: no card.
    assert h.controller.passback.position("ref-bob") == "staff"


def test_an_exit_button_without_the_door_opening_counts_nobody(h: Harness) -> None:
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    h.send(ExitPressed("gate"))
    h.advance(10)
    assert records(h.log, EventKind.ACCESS, "button_exit") == []
    assert counts(h) == {"lobby": 0, "staff": 1}


def test_one_count_per_exit_button_unlock_however_often_the_leaf_moves(h: Harness) -> None:
    h.send(ContactChanged("gate", True))  # propped open when the button is pressed
    h.send(ExitPressed("gate"))
    h.send(ContactChanged("gate", False))  # ends the unlock
    h.send(ContactChanged("gate", True))  # forced now: no unlock, no count
    h.send(ContactChanged("gate", False))
    assert records(h.log, EventKind.ACCESS, "button_exit") == []
    h.send(ExitPressed("gate"))
    h.send(ExitPressed("gate"))  # pressed twice: one unlock
    h.send(ContactChanged("gate", True))
    h.send(ContactChanged("gate", False))
    assert len(records(h.log, EventKind.ACCESS, "button_exit")) == 1


def test_a_card_crossing_during_an_exit_unlock_is_the_card_s(h: Harness) -> None:
    h.send(CardPresented("gate-in", "ref-bob"))
    h.send(ExitPressed("gate"))
    h.send(ContactChanged("gate", True))
    h.send(ContactChanged("gate", False))
    assert records(h.log, EventKind.ACCESS, "button_exit") == []
    assert len(records(h.log, EventKind.ACCESS, "crossing")) == 1
    assert counts(h) == {"lobby": 0, "staff": 1}
