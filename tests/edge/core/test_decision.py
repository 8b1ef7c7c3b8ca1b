"""Every reason code, each from a card at a reader, and the order in which they apply."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge.calendar import site_calendar
from edge.core.decision import Reason
from edge.core.events import CardPresented, SetLockdown
from edge.core.outputs import EventKind

from .conftest import MORNING, Harness, make_harness, records

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
