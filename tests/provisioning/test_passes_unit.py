"""Cards at the desk and day passes in the registry, without services: per-card status,
spare cards, passes issued, returned and expired, and what a snapshot carries of them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from edge.cardref import card_reference
from edge.keys import read_card_key
from edge.signing import load_public_key
from edge.snapshot import parse
from provisioning.keys import SiteKeys, generate
from provisioning.passes import (
    add_spare,
    issue_pass,
    list_passes,
    return_pass,
    spare_ref,
    spares,
)
from provisioning.publish import build_all, outcome
from provisioning.registry import (
    Registry,
    RegistryError,
    add_device,
    change_cards,
    find_people,
    import_people,
)
from provisioning.rules import add_rule
from provisioning.staff_csv import StaffRow
from tests.console.test_claims import provision
from tests.provisioning.commands import provision as provision_cli

TOKYO = ZoneInfo("Asia/Tokyo")
NOW = datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)  # a Tuesday morning at the site
SITE = "test-site"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site_dir = provision(tmp_path / "site", gates=("gate-1",))
    generate(site_dir / "keys")
    registry = Registry(site_dir / "registry.db")
    registry.init_site(SITE, "Asia/Tokyo", {})
    add_device(registry, "gate-1", "gate")
    add_rule(registry, "staff", ["gate-1"], "always")
    key = read_card_key(SiteKeys(site_dir / "keys").card_key)

    def row(n: int, staff_no: str, name: str, card: str, until: datetime | None) -> StaffRow:
        ref = card_reference(key, "felica", card)
        return StaffRow(n, staff_no, name, "総務課", "felica", ref, ("staff",), None, until)

    import_people(
        registry,
        [
            row(1, "S001", "佐藤 花子", "0114A1B2C3D4E5F6", None),
            row(2, "S001", "佐藤 花子", "0114A1B2C3D4E5F7", None),  # a second card
            row(3, "S002", "鈴木 太郎", "0114A1B2C3D4E5F8", NOW + timedelta(hours=3)),
            row(4, "S003", "高橋 健太", "0114A1B2C3D4E5F9", NOW - timedelta(days=1)),
        ],
        "test",
    )
    add_spare(registry, "07", *spare_ref(key, "felica:0114A1B2C3D4E500"), actor="operator")
    registry.close()
    return site_dir


def open_registry(site: Path) -> Registry:
    return Registry(site / "registry.db")


def test_one_card_of_several_is_marked_lost_and_reinstated(site: Path) -> None:
    registry = open_registry(site)
    cards = find_people(registry, "佐藤花子")[0]["cards"]
    assert len(cards) == 2
    assert all(len(c["ref"]) == 12 for c in cards)  # short references only
    first = cards[0]["ref"]
    assert change_cards(registry, "S001", "lost", first[:6], actor="guard1") == [first]
    statuses = {c["ref"]: c["status"] for c in find_people(registry, "S001")[0]["cards"]}
    assert statuses == {first: "lost", cards[1]["ref"]: "active"}
    with pytest.raises(RegistryError, match="already lost"):
        change_cards(registry, "S001", "lost", first)
    assert change_cards(registry, "S001", "active", actor="guard1") == [first]  # the only one
    last = registry.audit()[-1]
    assert (last["actor"], last["action"]) == ("guard1", "card reinstated")
    assert json.loads(last["detail"]) == {"staff_no": "S001", "card": first, "was": "lost"}


@pytest.mark.parametrize(
    ("staff_no", "card", "problem"),
    [
        ("S999", None, "no staff 'S999'"),
        ("S001", "01", "at least 4 hex digits"),
        ("S001", "zzzzzz", "at least 4 hex digits"),
        ("S001", "ffffffff", "has 0 cards starting ffffffff"),
    ],
)
def test_a_card_that_cannot_be_picked_is_refused_with_the_fix(
    site: Path, staff_no: str, card: str | None, problem: str
) -> None:
    with pytest.raises(RegistryError, match=problem):
        change_cards(open_registry(site), staff_no, "lost", card)


def test_a_pass_is_the_persons_doors_until_the_end_of_the_site_day(site: Path) -> None:
    registry = open_registry(site)
    issued = issue_pass(registry, "S001", "07", NOW, actor="guard1")
    assert issued.until == datetime(2026, 12, 2, 0, 0, tzinfo=TOKYO)
    with pytest.raises(RegistryError, match="spare card 07 is out to staff S001"):
        issue_pass(registry, "S002", "07", NOW)
    assert spares(registry, NOW)[0]["out_to"] == "S001"
    [built] = build_all(registry, site, now=NOW.astimezone(UTC))
    snapshot = parse(
        built.data, load_public_key(site / "keys" / "credentials.pub"), site=SITE, device="gate-1"
    )
    key = read_card_key(SiteKeys(site / "keys").card_key)
    spare = card_reference(key, "felica", "0114A1B2C3D4E500")
    by_ref = {c.ref: c for c in snapshot.credentials}
    assert by_ref[spare].groups == frozenset({"staff"})
    assert by_ref[spare].valid_until == issued.until
    # Returned: the next snapshot no longer has it.
    back = return_pass(registry, "07", NOW + timedelta(hours=1), actor="guard1")
    assert (back.state, back.returned_by) == ("returned", "guard1")
    [again] = build_all(registry, site, now=NOW.astimezone(UTC))
    later = parse(
        again.data, load_public_key(site / "keys" / "credentials.pub"), site=SITE, device="gate-1"
    )
    assert spare not in {c.ref for c in later.credentials}
    actions = [a["action"] for a in registry.audit()]
    assert actions.count("pass issued") == 1
    assert actions.count("pass returned") == 1


def test_a_pass_never_outlives_the_person_and_expires_on_its_own(site: Path) -> None:
    registry = open_registry(site)
    issued = issue_pass(registry, "S002", "07", NOW, until=NOW + timedelta(hours=8))
    assert issued.until == NOW + timedelta(hours=3)  # S002's own validity ends then
    later = NOW + timedelta(hours=4)
    assert [p.state for p in list_passes(registry, later)] == ["expired"]
    [built] = build_all(registry, site, now=later.astimezone(UTC))
    snapshot = parse(
        built.data, load_public_key(site / "keys" / "credentials.pub"), site=SITE, device="gate-1"
    )
    key = read_card_key(SiteKeys(site / "keys").card_key)
    spare = card_reference(key, "felica", "0114A1B2C3D4E500")
    assert spare not in {c.ref for c in snapshot.credentials}  # the expired pass is gone
    # An expired pass that was never returned does not hold the spare back.
    again = issue_pass(registry, "S001", "07", later)
    assert again.state == "live"
    assert [p.state for p in list_passes(registry, later)] == ["live", "returned"]


@pytest.mark.parametrize(
    ("staff_no", "number", "until", "problem"),
    [
        ("S999", "07", None, "no staff 'S999'"),
        ("S001", "99", None, "no spare card 99"),
        ("S001", "0 7;", None, "spare card number"),
        ("S001", "07", NOW - timedelta(minutes=1), "not in the future"),
        ("S003", "07", None, "validity has ended"),
    ],
)
def test_bad_passes_are_refused_clearly(
    site: Path, staff_no: str, number: str, until: datetime | None, problem: str
) -> None:
    registry = open_registry(site)
    with pytest.raises(RegistryError, match=problem):
        issue_pass(registry, staff_no, number, NOW, until=until)
    assert list_passes(registry, NOW) == []


def test_a_spare_card_is_a_card_of_its_own(site: Path) -> None:
    registry = open_registry(site)
    key = read_card_key(SiteKeys(site / "keys").card_key)
    with pytest.raises(RegistryError, match="belongs to staff S001"):
        add_spare(registry, "08", *spare_ref(key, "felica:0114A1B2C3D4E5F6"))
    with pytest.raises(RegistryError, match="already spare card 07"):
        add_spare(registry, "08", *spare_ref(key, "felica:0114A1B2C3D4E500"))
    with pytest.raises(RegistryError, match="technology:ID"):
        spare_ref(key, "0114A1B2C3D4E501")
    with pytest.raises(RegistryError, match="spare card 07 is not out"):
        return_pass(registry, "07", NOW)
    stored = (site / "registry.db").read_bytes()
    assert b"0114A1B2C3D4E500" not in stored  # the raw id is never kept


def test_the_applied_count_names_the_devices_behind() -> None:
    result = outcome(
        5,
        {
            "gate-1": {"credentials": {"version": 5}},
            "gate-2": {"credentials": {"version": 4}},
            "stair-a": None,
        },
    )
    assert result.late == ["gate-2", "stair-a"]
    assert result.summary() == "v5 applied on 1 of 3 devices; not yet on gate-2, stair-a"


def test_the_operators_commands_pick_one_card_and_register_spares(site: Path) -> None:
    registry = open_registry(site)
    first = find_people(registry, "S001")[0]["cards"][0]["ref"]
    registry.close()
    d = ("--dir", str(site))
    lost = provision_cli("cards", "lost", "S001", "--card", first[:8], *d)
    assert lost.returncode == 0, lost.stderr
    assert f"1 card(s) of S001 now lost ({first}…)" in lost.stdout
    both = provision_cli("cards", "reinstate", "S001", *d)
    assert both.returncode == 0, both.stderr
    assert "now active" in both.stdout
    again = provision_cli("cards", "reinstate", "S001", *d)
    assert again.returncode == 2
    assert "staff S001 has 0 cards to reinstate" in again.stderr
    spare = provision_cli(
        "passes", "add-spare", "--number", "08", *d, stdin="felica:0114A1B2C3D4E501\n"
    )
    assert spare.returncode == 0, spare.stderr
    listed = provision_cli("passes", "spares", *d)
    assert "08       felica" in listed.stdout
    assert "0114A1B2C3D4E501" not in listed.stdout + spare.stdout
    bad = provision_cli("passes", "add-spare", "--number", "09", *d, stdin="felica:12\n")
    assert bad.returncode == 2
    assert "add-spare refused: a felica card identifier must be 16 hexadecimal digits" in (
        bad.stderr
    )


def test_the_console_names_a_spare_cards_holder_at_the_time_of_each_event(site: Path) -> None:
    from console.people import Directory  # noqa: PLC0415 -- the console reads what the desk wrote

    registry = open_registry(site)
    key = read_card_key(SiteKeys(site / "keys").card_key)
    spare = spare_ref(key, "felica:0114A1B2C3D4E500")[0]
    issue_pass(registry, "S001", "07", NOW, actor="guard1")
    return_pass(registry, "07", NOW + timedelta(hours=1), actor="guard1")
    issue_pass(registry, "S002", "07", NOW + timedelta(hours=2), actor="guard1")
    registry.close()
    people = Directory(site / "registry.db")

    def log_time(at: datetime) -> str:
        return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"

    def holder(at: datetime) -> str | None:
        found = people.person(spare, log_time(at))
        return found and f"{found.staff_no}/{found.day_pass}"

    assert holder(NOW - timedelta(minutes=1)) is None  # before any pass
    assert holder(NOW + timedelta(minutes=30)) == "S001/07"
    assert holder(NOW + timedelta(minutes=90)) is None  # returned, at the desk
    assert holder(NOW + timedelta(hours=3)) == "S002/07"
    assert holder(NOW + timedelta(days=2)) == "S002/07"  # never returned: still with them
    latest = people.person(spare)
    assert latest is not None
    assert latest.staff_no == "S002"
    # A search for a person finds the spare's events only within their own passes.
    windows = {w for w in people.windows_for("S001") if w[0] == spare}
    assert windows == {(spare, log_time(NOW), log_time(NOW + timedelta(hours=1)))}
    assert {w for w in people.windows_for("鈴木") if w[0] == spare} == {
        (spare, log_time(NOW + timedelta(hours=2)), None)
    }


def test_a_search_for_a_person_finds_a_spare_cards_events_only_within_their_passes(
    site: Path, tmp_path: Path
) -> None:
    from console.log import CentralLog  # noqa: PLC0415 -- the console's search over the desk's passes
    from console.people import Directory  # noqa: PLC0415
    from console.search import Query, search  # noqa: PLC0415
    from tests.console.test_log import event  # noqa: PLC0415

    registry = open_registry(site)
    key = read_card_key(SiteKeys(site / "keys").card_key)
    spare = spare_ref(key, "felica:0114A1B2C3D4E500")[0]
    issue_pass(registry, "S001", "07", NOW, actor="guard1")
    return_pass(registry, "07", NOW + timedelta(hours=1), actor="guard1")
    issue_pass(registry, "S002", "07", NOW + timedelta(hours=2), actor="guard1")
    registry.close()
    log = CentralLog(tmp_path / "log.db")
    taps = {
        1: NOW + timedelta(minutes=30),
        2: NOW + timedelta(minutes=90),
        3: NOW + timedelta(hours=3),
    }
    log.append(
        [
            event(
                "gate-1",
                seq,
                {"card_ref": spare, "ts": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")},
            )
            for seq, at in taps.items()
        ],
        "2026-12-01T05:00:00.000Z",
    )
    people = Directory(site / "registry.db")

    def found(who: str) -> list[int]:
        return sorted(e.seq for e in search(log, Query(person=who), people).entries)

    assert found("S001") == [1]
    assert found("S002") == [3]
    assert found("高橋") == []
    log.close()
