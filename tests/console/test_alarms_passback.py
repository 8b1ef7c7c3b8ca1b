"""The security line's alarms as a guard reads them, on the page's rows and from the CLI: a gate
cut off from its peers (lasting, until it hears them again) and a card that entered twice
without leaving (one-shot, naming the card's holder), zones by their names."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from console.alarms import acknowledge, active
from console.claims import Registry as Claims
from console.cli import cli
from console.log import CentralLog
from console.people import Directory
from console.users import add_user
from console.web import Settings, create_app
from provisioning.registry import Registry, import_people
from provisioning.staff_csv import StaffRow
from tests.console.test_alarms import alarm
from tests.console.test_claims import SITE, provision
from tests.console.web_fixtures import PASSWORDS, Client, serve

REF = "cd" * 32


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site directory: two gates between the lobby and the staff area, one person's card."""
    site_dir = provision(tmp_path / "site", gates=("gate-1", "gate-2"))
    registry = Registry(site_dir / "registry.db")
    registry.init_site(SITE, "Asia/Tokyo", {})
    row = StaffRow(1, "K20001", "山田 花子", "総務課", "felica", REF, (), None, None)
    import_people(registry, [row], "test")
    registry.close()
    return site_dir


@pytest.fixture
def filled(log: CentralLog) -> CentralLog:
    since = "2026-12-01T00:00:01.000Z"
    log.append(
        [
            alarm("gate-1", 1, "anti_passback_degraded", zone="staff-area", since=since),
            alarm(
                "gate-1",
                2,
                "anti_passback_conflict",
                card_ref=REF,
                zone="staff-area",
                to_zone="staff-area",
                peer="gate-2",
                peer_ts="2026-12-01T00:00:01.500Z",
                own_ts="2026-12-01T00:00:00.250Z",
            ),
        ],
        "now",
    )
    return log


def test_a_cut_off_gate_is_an_alarm_until_it_hears_its_peers(
    filled: CentralLog, site: Path
) -> None:
    zones = Claims(site, SITE).zone_names()
    (degraded,) = [a for a in active(filled, zones=zones) if a.type == "anti_passback_degraded"]
    assert (degraded.device, degraded.where) == ("gate-1", "Staff (staff-area)")
    assert degraded.detail == "cut off from its peers since 2026-12-01 00:00:01"  # no registry: UTC
    filled.append(
        [alarm("gate-1", 3, "anti_passback_degraded", "cleared", zone="staff-area")], "now"
    )
    assert "anti_passback_degraded" not in {a.type for a in active(filled, zones=zones)}


def test_a_card_entered_twice_names_its_holder_until_acknowledged(
    filled: CentralLog, site: Path
) -> None:
    people = Directory(site / "registry.db")
    (conflict,) = [a for a in active(filled, people) if a.type == "anti_passback_conflict"]
    assert conflict.where == "staff-area"
    assert conflict.detail == (
        "山田 花子 (K20001): let in here at 2026-12-01 09:00:00, then at gate-2 into "
        "staff-area at 2026-12-01 09:00:01 without leaving"
    )  # the site's time (Asia/Tokyo)
    assert REF[:12] not in conflict.detail
    unknown = [a for a in active(filled) if a.type == "anti_passback_conflict"]
    assert unknown[0].detail.startswith(f"card {REF[:12]}…: let in here")
    assert acknowledge(filled, conflict.key, "guard1")
    assert "anti_passback_conflict" not in {a.type for a in active(filled, people)}


def test_the_cli_prints_them_as_the_page_does(filled: CentralLog, path: Path, site: Path) -> None:
    filled.close()
    result = CliRunner().invoke(
        cli, ["alarms", "--db", str(path), "--site-dir", str(site)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    conflict, degraded = result.output.splitlines()  # newest first, in the site's time
    assert degraded.startswith("2026-12-01 09:00:01  Anti-passback degraded")
    assert (
        "gate-1  Staff (staff-area)  cut off from its peers since 2026-12-01 09:00:01" in degraded
    )
    assert conflict.startswith("2026-12-01 09:00:02  Entered twice")
    assert "山田 花子 (K20001): let in here at 2026-12-01 09:00:00, then at gate-2" in conflict


def test_a_card_enrolled_after_the_page_was_served_is_named(filled: CentralLog, site: Path) -> None:
    people = Directory(site / "registry.db")
    other = "ef" * 32
    filled.append([alarm("gate-2", 1, "anti_passback_conflict", card_ref=other, zone="lobby",
                         to_zone="lobby", peer="gate-1", peer_ts="2026-12-01T00:00:00.000Z",
                         own_ts="2026-11-30T23:00:00.000Z")], "now")  # fmt: skip
    people.refresh()  # nothing changed: nothing read
    assert "card efefefefefef…" in {a.detail[:18] for a in active(filled, people)}
    registry = Registry(site / "registry.db")
    row = StaffRow(2, "K20002", "佐藤 一郎", "警備課", "felica", other, (), None, None)
    import_people(registry, [row], "test")
    registry.close()
    os.utime(site / "registry.db", (1, 1))  # a different mtime, whatever the clock's resolution
    people.refresh()
    named = [a.detail for a in active(filled, people) if a.device == "gate-2"]
    assert named[0].startswith("佐藤 一郎 (K20002): let in here")


def test_the_alarm_page_rows_name_the_holder_and_the_zone(
    filled: CentralLog, site: Path, tmp_path: Path
) -> None:
    add_user(filled, "guard1", "guard", PASSWORDS["guard1"], by="test")
    settings = Settings(
        filled.path, site / "registry.db", tmp_path / "session.key", secure_cookies=False
    )
    with serve(create_app(settings)) as url:
        guard = Client(url)
        guard.login("guard1")
        rows = guard.get("/alarms/rows").text
    conflict = next(r for r in rows.split("<tr ") if 'data-type="anti_passback_conflict"' in r)
    assert "二重入場" in conflict  # Japanese by default
    assert "山田 花子 (K20001): let in here at 2026-12-01 09:00:00" in conflict
    degraded = next(r for r in rows.split("<tr ") if 'data-type="anti_passback_degraded"' in r)
    assert "<td>Staff (staff-area)</td>" in degraded
