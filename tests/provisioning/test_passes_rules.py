"""The registry's rules at the desk, without services: who may undo a revocation, who may
have a day pass, and that a snapshot never carries a card twice."""

from __future__ import annotations

import json
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from edge.keys import read_card_key
from edge.signing import load_public_key
from edge.snapshot import parse
from provisioning.card_profiles import record
from provisioning.keys import SiteKeys
from provisioning.passes import add_spare, issue_pass, list_passes, return_pass, spare_ref, spares
from provisioning.publish import build_all
from provisioning.registry import Registry, RegistryError, change_cards, short_ref
from tests.provisioning.commands import provision as provision_cli
from tests.provisioning.test_passes_unit import NOW, SITE, open_registry, site

SPARE = "felica:0114A1B2C3D4E500"  # the site's spare card 07
OTHER = "felica:0114A1B2C3D4E501"

__all__ = ["site"]  # four people, spare card 07


def status_of(registry: Registry, staff_no: str) -> list[str]:
    rows = registry.db.execute("SELECT status FROM cards WHERE staff_no = ?", [staff_no])
    return [r[0] for r in rows]


def full_ref(registry: Registry, staff_no: str) -> str:
    row = registry.db.execute("SELECT card_ref FROM cards WHERE staff_no = ?", [staff_no])
    return str(row.fetchone()[0])


def test_a_revoked_card_is_reinstated_only_with_leave_however_it_is_typed(site: Path) -> None:
    registry = open_registry(site)
    change_cards(registry, "S002", "revoked")
    ref = full_ref(registry, "S002")
    for card in (None, f"{short_ref(ref)}…", ref[:16], ref, f" {ref[:8].upper()} "):
        with pytest.raises(RegistryError, match="only a manager may reinstate a revoked card"):
            change_cards(registry, "S002", "active", card, actor="console:guard1")
    assert status_of(registry, "S002") == ["revoked"]
    assert [a["action"] for a in registry.audit()].count("card reinstated") == 0
    # A lost card is anyone's to reinstate; a revoked one with leave.
    assert change_cards(registry, "S002", "active", ref[:6], may_unrevoke=True)
    assert status_of(registry, "S002") == ["active"]


def test_a_leaver_gets_no_pass_but_a_person_who_lost_every_card_does(site: Path) -> None:
    registry = open_registry(site)
    change_cards(registry, "S001", "lost")  # both of their cards: the forgot/lost case
    assert issue_pass(registry, "S001", "07", NOW).state == "live"
    return_pass(registry, "07", NOW)
    first = registry.db.execute("SELECT card_ref FROM cards WHERE staff_no = 'S001'").fetchone()
    change_cards(registry, "S001", "revoked", first[0][:8])  # now {lost, revoked}
    with pytest.raises(RegistryError, match="has a revoked card and no active one"):
        issue_pass(registry, "S001", "07", NOW)
    change_cards(registry, "S002", "revoked")  # {revoked}
    with pytest.raises(RegistryError, match="has a revoked card and no active one"):
        issue_pass(registry, "S002", "07", NOW)
    assert spares(registry, NOW)[0]["out_to"] == ""


def spare_in(registry: Registry, site: Path) -> bool:
    [built] = build_all(registry, site, now=NOW.astimezone(UTC))
    key = load_public_key(site / "keys" / "credentials.pub")
    snapshot = parse(built.data, key, site=SITE, device="gate-1")
    spare = spare_ref(read_card_key(SiteKeys(site / "keys").card_key), SPARE)[0]
    return spare in {c.ref for c in snapshot.credentials}


def test_revoking_a_person_closes_their_live_pass(site: Path) -> None:
    registry = open_registry(site)
    issue_pass(registry, "S002", "07", NOW, actor="guard1")
    assert spare_in(registry, site)
    change_cards(registry, "S002", "revoked", actor="console:boss")
    assert not spare_in(registry, site)
    [closed] = list_passes(registry, NOW)
    assert (closed.state, closed.returned_by) == ("returned", "console:boss")
    [closing] = [a for a in registry.audit() if a["action"] == "pass closed"]
    assert closing["actor"] == "console:boss"
    assert json.loads(closing["detail"]) == {
        "number": "07",
        "staff_no": "S002",
        "reason": "card revoked",
    }


def test_a_snapshot_carries_no_pass_of_a_person_left_with_only_a_revoked_card(
    site: Path,
) -> None:
    registry = open_registry(site)
    issue_pass(registry, "S002", "07", NOW, actor="guard1")
    # A registry changed behind the desk's back (an older tool, a hand edit): the pass
    # stays open, the snapshot still leaves it out.
    registry.db.execute("UPDATE cards SET status = 'revoked' WHERE staff_no = 'S002'")
    registry.db.conn.commit()
    assert list_passes(registry, NOW)[0].state == "live"
    assert not spare_in(registry, site)


def test_a_pass_older_than_the_listed_ones_is_returned(site: Path) -> None:
    registry = open_registry(site)
    add_spare(registry, "08", *spare_ref(read_card_key(SiteKeys(site / "keys").card_key), OTHER))
    issue_pass(registry, "S001", "08", NOW, actor="guard1")  # stays out all day
    for _ in range(201):  # the busy desk lends 07 again and again
        issue_pass(registry, "S002", "07", NOW)
        return_pass(registry, "07", NOW)
    back = return_pass(registry, "08", NOW + timedelta(hours=1), actor="guard1")
    assert (back.number, back.staff_no, back.state) == ("08", "S001", "returned")


def test_a_spare_recorded_as_someones_card_is_in_a_snapshot_once(site: Path) -> None:
    registry = open_registry(site)
    spare = spare_ref(read_card_key(SiteKeys(site / "keys").card_key), SPARE)[0]
    issue_pass(registry, "S002", "07", NOW, actor="guard1")
    # A registry from before a spare was refused as someone's own card.
    registry.db.execute(
        "INSERT INTO cards (card_ref, staff_no, technology, status, updated_at) "
        "VALUES (?, 'S001', 'felica', 'active', '2026-12-01')",
        [spare],
    )
    registry.db.conn.commit()
    [built] = build_all(registry, site, now=NOW.astimezone(UTC))
    key = load_public_key(site / "keys" / "credentials.pub")
    refs = [c.ref for c in parse(built.data, key, site=SITE, device="gate-1").credentials]
    assert len(refs) == len(set(refs))
    assert spare in refs  # the owner's card
    last = registry.audit()[-1]
    assert json.loads(last["detail"])["passes_left_out"] == [short_ref(spare)]


def test_a_spare_is_nobodys_own_card(site: Path, tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="the desk's spare card 07"):
        record(
            site,
            staff_no="S001",
            technology="felica",
            card_id=bytes.fromhex(SPARE.partition(":")[2]),
            profile="uid",
        )
    csv = tmp_path / "staff.csv"
    csv.write_text(
        "staff_no,name,department,card_tech,card_id,groups,valid_from,valid_until\n"
        "S010,山田 一郎,総務課,felica,0114A1B2C3D4E5A0,staff,,\n"
        f"S011,山田 二郎,総務課,felica,{SPARE.partition(':')[2]},staff,,\n",
        encoding="utf-8",
    )
    result = provision_cli("cards", "import", str(csv), "--dir", str(site))
    assert result.returncode == 2
    assert "line 3" in result.stderr
    assert "this card is the desk's spare card 07; give the person another card" in result.stderr
    registry = open_registry(site)
    spare = spare_ref(read_card_key(SiteKeys(site / "keys").card_key), SPARE)[0]
    assert registry.db.execute("SELECT 1 FROM cards WHERE card_ref = ?", [spare]).fetchone() is None
