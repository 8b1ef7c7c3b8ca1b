"""The desk without services: a console that only watches shows cards and passes, changes
nothing, and says which option it lacks; a bad input names its field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from console.desk import Desk, DeskError
from console.log import CentralLog
from console.web_context import BrokerAccess
from provisioning.registry import Registry, change_cards, find_people
from tests.provisioning.test_passes_unit import NOW, site

__all__ = ["site"]  # the provisioning tests' site: four people, spare card 07


def desk(site_dir: Path, log: CentralLog, broker: BrokerAccess | None = None) -> Desk:
    return Desk(site_dir, broker, log, NOW.timestamp, publisher="operator")


def statuses(site_dir: Path) -> list[str]:
    registry = Registry(site_dir / "registry.db")
    try:
        people = [p for n in ("S001", "S002", "S003") for p in find_people(registry, n)]
        return [c["status"] for p in people for c in p["cards"]]
    finally:
        registry.close()


def test_a_watching_console_shows_the_desk_and_changes_nothing(site: Path, log: CentralLog) -> None:
    watching = desk(site, log)
    assert [p["staff_no"] for p in watching.find("佐藤")] == ["S001"]
    assert watching.spares()[0]["number"] == "07"
    before = statuses(site)
    acts: list[Callable[[], object]] = [
        lambda: watching.card("guard1", "card.lost", "S001", None),
        lambda: watching.issue("guard1", "S001", "07", ""),
        lambda: watching.give_back("guard1", "07"),
    ]
    for act in acts:
        with pytest.raises(DeskError, match="only watches") as refused:
            act()
        assert refused.value.field == "broker"
    assert statuses(site) == before
    assert watching.passes() == []


@pytest.mark.parametrize(
    ("call", "field", "text"),
    [
        (lambda d: d.card("guard1", "card.lost", "S999", None), "staff_no", "no staff"),
        (lambda d: d.card("guard1", "card.lost", "S001", "zz"), "card", "hex digits"),
        (lambda d: d.card("guard1", "card.lost", "", None), "staff_no", "staff number"),
        (lambda d: d.issue("guard1", "S001", "07", "9:99"), "until", "HH:MM"),
        (lambda d: d.issue("guard1", "S001", "07", "08:00"), "until", "not in the future"),
        (lambda d: d.issue("guard1", "S001", "99", ""), "spare", "no spare card 99"),
        (lambda d: d.give_back("guard1", "07"), "spare", "not out"),
        (lambda d: d.find("x" * 101), "who", "at most 100"),
    ],
)
def test_bad_input_names_its_field_and_is_audited(
    site: Path, log: CentralLog, call: object, field: str, text: str
) -> None:
    # A broker nobody listens on: every refusal comes before any publish is tried.
    acting = desk(site, log, BrokerAccess("127.0.0.1", 9, "test-site", "console"))
    with pytest.raises(DeskError, match=text) as refused:
        call(acting)  # type: ignore[operator]
    assert refused.value.field == field
    if field != "who":
        rows = log.db.execute("SELECT username, action FROM audit").fetchall()
        assert rows[-1][0] == "guard1"
        assert rows[-1][1].endswith(" refused")


def test_a_site_without_an_operator_account_is_named_before_any_change(
    site: Path, log: CentralLog
) -> None:
    broker = BrokerAccess("127.0.0.1", 9, "test-site", "console")
    acting = Desk(site, broker, log, NOW.timestamp)  # the site has no operator account
    before = statuses(site)
    with pytest.raises(DeskError, match="edge-provision account add operator") as refused:
        acting.card("guard1", "card.lost", "S001", None)
    assert refused.value.field == "site_dir"
    assert statuses(site) == before


def test_only_who_may_revoke_reinstates_a_revoked_card(site: Path, log: CentralLog) -> None:
    registry = Registry(site / "registry.db")
    try:
        change_cards(registry, "S002", "revoked")
    finally:
        registry.close()
    acting = desk(site, log, BrokerAccess("127.0.0.1", 9, "test-site", "console"))
    with pytest.raises(DeskError, match="only a manager may reinstate a revoked card") as refused:
        acting.card("guard1", "card.reinstate", "S002", None)
    assert refused.value.field == "card"
    assert statuses(site).count("revoked") == 1
    # A manager gets past the check: the card changes and the publish is tried (no broker
    # listens on port 9 here, which is named).
    with pytest.raises(DeskError, match="changed in the registry, not published") as unpublished:
        acting.card("boss", "card.reinstate", "S002", None, may_unrevoke=True)
    assert unpublished.value.field == "broker"
    assert statuses(site).count("revoked") == 0
    rows = log.db.execute("SELECT username, action FROM audit").fetchall()
    assert rows[-2:] == [
        ("guard1", "card.reinstate refused"),
        ("boss", "card.reinstate not published"),
    ]
