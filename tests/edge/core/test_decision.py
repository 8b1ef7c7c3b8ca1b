"""Every reason code, each from a card at a reader, and the order in which they apply."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from edge.calendar import site_calendar
from edge.core.credentials import CardProfile, Credential, DenyReason, InMemoryCredentials
from edge.core.decision import Reason
from edge.core.events import CardPresented, SetLockdown
from edge.core.outputs import EventKind
from tests.edge.core.harness import MORNING, POLICY, Harness, make_harness, records

SATURDAY = datetime(2026, 12, 5, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
NEW_YEAR = datetime(2026, 12, 30, 1, 0, tzinfo=UTC)  # Wednesday, a closure day
NIGHT = datetime(2026, 11, 30, 13, 0, tzinfo=UTC)  # Monday 22:00 in Tokyo
HOLIDAY = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)  # Labour Thanksgiving Day, a Monday


def tap(h: Harness, reader: str, ref: str, authenticated: bool = False) -> dict[str, object]:
    (decision,) = records(h.send(CardPresented(reader, ref, authenticated)), EventKind.ACCESS)
    return decision


@pytest.mark.parametrize(
    ("start", "reader", "ref", "authenticated", "reason"),
    [
        (MORNING, "gate-in", "ref-bob", False, Reason.GRANTED),
        (MORNING, "gate-in", "ref-gone", False, Reason.REVOKED),
        (MORNING, "gate-in", "ref-lost", False, Reason.REVOKED),
        (MORNING, "gate-in", "ref-nobody", False, Reason.UNKNOWN_CARD),
        (MORNING, "stair-in", "ref-alice", False, Reason.CARD_NOT_AUTHENTICATED),
        (MORNING, "stair-in", "ref-alice", True, Reason.GRANTED),
        (MORNING, "gate-in", "ref-new", False, Reason.NOT_YET_VALID),
        (MORNING, "gate-in", "ref-old", False, Reason.EXPIRED),
        (MORNING, "gate-in", "ref-visitor", False, Reason.NO_RULE),
        (MORNING, "stair-in", "ref-bob", True, Reason.NO_RULE),
        (SATURDAY, "gate-in", "ref-bob", False, Reason.OUT_OF_SCHEDULE),
        (NIGHT, "gate-in", "ref-bob", False, Reason.OUT_OF_SCHEDULE),
        (NEW_YEAR, "gate-in", "ref-bob", False, Reason.OUT_OF_SCHEDULE),
        (NEW_YEAR, "gate-in", "ref-guard", False, Reason.GRANTED),
        (SATURDAY, "stair-in", "ref-guard", True, Reason.GRANTED),
    ],
)
def test_reason(
    start: datetime, reader: str, ref: str, authenticated: bool, reason: Reason
) -> None:
    h = make_harness(start=start)
    decision = tap(h, reader, ref, authenticated)
    assert decision["reason"] == reason
    assert decision["type"] == ("granted" if reason is Reason.GRANTED else "denied")
    assert decision["card_ref"] == ref


def test_japanese_public_holiday_closes_office_hours() -> None:
    h = make_harness(start=HOLIDAY)
    h.controller.calendar = site_calendar(closure_days=())
    assert tap(h, "gate-in", "ref-bob")["reason"] == Reason.OUT_OF_SCHEDULE
    h.controller.calendar = site_calendar(closure_days=(), country=None)
    assert tap(h, "gate-out", "ref-bob")["reason"] == Reason.GRANTED


def test_lockdown_denies_ordinary_cards_and_admits_override_groups(h: Harness) -> None:
    h.send(SetLockdown(True, by="console"))
    assert tap(h, "gate-in", "ref-bob")["reason"] == Reason.LOCKDOWN
    guard = tap(h, "gate-in", "ref-guard")
    assert guard["reason"] == Reason.GRANTED
    assert guard["override"] is True


def test_lockdown_does_not_hide_a_revoked_card(h: Harness) -> None:
    h.send(SetLockdown(True))
    assert tap(h, "gate-in", "ref-gone")["reason"] == Reason.REVOKED


def test_lost_card_raises_an_alarm(h: Harness) -> None:
    out = h.send(CardPresented("gate-in", "ref-lost"))
    (alarm,) = records(out, EventKind.ALARM, "lost_card_used")
    assert alarm["card_ref"] == "ref-lost"
    assert alarm["door"] == "gate"
    assert not records(h.send(CardPresented("gate-in", "ref-gone")), EventKind.ALARM)


def test_unknown_reader_is_recorded_not_decided(h: Harness) -> None:
    out = h.send(CardPresented("nowhere", "ref-bob"))
    assert records(out, EventKind.SYSTEM, "unknown_input")[0]["name"] == "nowhere"
    assert not records(out, EventKind.ACCESS)


@pytest.mark.parametrize("ref", ["ref-lite", "ref-desfire"])
def test_a_proving_card_read_without_its_proof_is_a_suspected_clone(h: Harness, ref: str) -> None:
    out = h.send(CardPresented("gate-in", ref, authenticated=False))
    (decision,) = records(out, EventKind.ACCESS)
    assert decision["reason"] == Reason.CARD_NOT_AUTHENTICATED
    (alarm,) = records(out, EventKind.ALARM, "clone_suspected")
    assert alarm["card_ref"] == ref
    assert alarm["door"] == "gate"
    proven = h.send(CardPresented("gate-out", ref, authenticated=True))
    assert records(proven, EventKind.ACCESS)[0]["reason"] == Reason.GRANTED
    assert not records(proven, EventKind.ALARM)


def test_an_id_only_card_at_a_door_that_wants_proof_is_refused_without_a_clone_alarm(
    h: Harness,
) -> None:
    out = h.send(CardPresented("stair-in", "ref-alice", authenticated=False))
    assert records(out, EventKind.ACCESS)[0]["reason"] == Reason.CARD_NOT_AUTHENTICATED
    assert not records(out, EventKind.ALARM)


def test_a_group_can_require_proven_cards_at_every_door() -> None:
    policy = replace(POLICY, authenticated_groups=frozenset({"security"}))
    h = make_harness(policy=policy)
    out = h.send(CardPresented("gate-in", "ref-guard", authenticated=False))
    assert records(out, EventKind.ACCESS)[0]["reason"] == Reason.CARD_NOT_AUTHENTICATED
    assert not records(out, EventKind.ALARM)
    assert tap(h, "gate-in", "ref-guard", authenticated=True)["reason"] == Reason.GRANTED
    assert tap(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED  # staff: id is enough here


def test_a_revoked_proving_card_is_refused_as_revoked_before_its_proof_is_asked() -> None:
    h = make_harness()
    h.controller.credentials = InMemoryCredentials(
        [Credential("ref-lite", frozenset({"staff"}), profile=CardProfile.LITE_S)],
        deny={"ref-lite": DenyReason.REVOKED},
    )
    out = h.send(CardPresented("gate-in", "ref-lite", authenticated=False))
    assert records(out, EventKind.ACCESS)[0]["reason"] == Reason.REVOKED
    assert not records(out, EventKind.ALARM, "clone_suspected")
