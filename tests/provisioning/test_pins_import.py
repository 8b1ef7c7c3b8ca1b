"""PINs from the HR CSV: hashed at import, never shown, kept as a hash in the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.core.events import PinOutcome
from edge.pin_hash import check_pin, parse_pin
from provisioning.registry import Registry, import_people
from provisioning.rules import policy_for, set_pin_groups
from provisioning.staff_csv import parse

KEY = bytes(range(32))
HEADER = "staff_no,name,department,card_tech,card_id,groups,valid_from,valid_until"


def read(rows: list[str], extra: str = ",pin,duress_pin") -> tuple[list, list]:  # type: ignore[type-arg]
    return parse("\n".join([HEADER + extra, *rows]) + "\n", KEY, "Asia/Tokyo")


def test_pins_are_hashed_with_their_duress_pin() -> None:
    rows, problems = read(
        [
            "S001,佐藤 花子,総務課,felica,0114A1B2C3D4E5F6,staff,,,2580,2581",
            "S002,鈴木 太郎,財政課,felica,0114A1B2C3D4E5F7,staff,,,７３１９,",  # full-width
            "S003,高橋 健太,警備,felica,0114A1B2C3D4E5F8,staff,,,,",
        ]
    )
    assert problems == []
    first, second, third = rows
    assert first.pin is not None
    assert check_pin(first.pin, "2581") is PinOutcome.DURESS
    assert second.pin is not None
    assert check_pin(second.pin, "7319") is PinOutcome.RIGHT
    assert second.pin.duress is None
    assert third.pin is None
    assert third.pin_column
    assert "2580" not in repr(first)


@pytest.mark.parametrize(
    ("fields", "column"),
    [
        ("123,", "pin"),
        ("123456789,", "pin"),
        ("12a4,", "pin"),
        ("9876,9876", "duress_pin"),
        ("9876,98", "duress_pin"),
        (",4455", "duress_pin"),
    ],
)
def test_a_bad_pin_is_reported_without_its_value(fields: str, column: str) -> None:
    rows, problems = read([f"S001,佐藤 花子,総務課,felica,0114A1B2C3D4E5F6,staff,,,{fields}"])
    assert rows == []
    (problem,) = problems
    assert (problem.line, problem.field, problem.value) == (2, column, "")
    for value in fields.split(","):
        if value:
            assert value not in str(problem)


def test_a_pin_in_the_wrong_column_is_not_echoed_either() -> None:
    # HR swapped valid_from and pin: the date check must not show the PIN.
    rows, problems = read(["S001,佐藤 花子,総務課,felica,0114A1B2C3D4E5F6,staff,4821,,,"])
    assert rows == []
    assert problems
    assert all("4821" not in str(p) for p in problems)


def test_registry_keeps_the_hash_and_a_file_without_pins_keeps_it(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry.db")
    try:
        rows, _ = read(["S001,佐藤 花子,総務課,felica,0114A1B2C3D4E5F6,staff,,,2580,2581"])
        import_people(registry, rows, "hr.csv")
        (stored,) = registry.db.execute("SELECT pin FROM people").fetchone()
        assert check_pin(parse_pin(stored), "2580") is PinOutcome.RIGHT
        rows, _ = read(["S001,佐藤 花子,総務課,felica,0114A1B2C3D4E5F6,staff,,"], extra="")
        import_people(registry, rows, "hr-no-pins.csv")
        assert registry.db.execute("SELECT pin FROM people").fetchone() == (stored,)
        rows, _ = read(["S001,佐藤 花子,総務課,felica,0114A1B2C3D4E5F6,staff,,,,"])
        import_people(registry, rows, "hr-pins-removed.csv")
        assert registry.db.execute("SELECT pin FROM people").fetchone() == (None,)
        assert b"2580" not in (tmp_path / "registry.db").read_bytes()
        set_pin_groups(registry, ["finance", "security"])
        policy = policy_for(registry, {"gate"}, 7)
        assert policy.pin_groups == frozenset({"finance", "security"})
    finally:
        registry.close()
