"""The console across sites: each site's roll call, search, alarms, counts and devices on
their own, and each site's link to the centre; on SQLite (the home site's rows without a
site, as written before sites existed) and on PostgreSQL (every row with its site)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from console import alarms, headcount, web
from console.actions import Site
from console.claims import Registry
from console.doors import door_states
from console.log import CentralLog, open_log
from console.people import Directory
from console.rollcall import by_site, inside
from console.search import Query, export_rows, search
from console.site_view import SiteError, SiteScope, device_health, known_sites, scope_of, site_links
from tests.console.sites_fixtures import (
    BRANCH,
    HOME,
    LINE,
    NOW,
    RECEIVED,
    A,
    B,
    C,
    Sites,
    fill,
    registry,
)
from tests.console.test_claims import SITE, provision
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def two_sites(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[CentralLog, Directory]]:
    """The two sites' log (SQLite, or PostgreSQL) and the home site's directory."""
    if request.param == "sqlite":
        log, home = open_log(tmp_path / "log.db"), None
    else:
        log, home = open_log(request.getfixturevalue("pg_database")), HOME
    fill(log, home, with_users=False)
    yield log, Directory(registry(tmp_path / "registry.db"))
    log.close()


def scope(site: str = "") -> SiteScope:
    return SiteScope(site, HOME)


def test_each_sites_roll_call_holds_only_its_own_people(
    two_sites: tuple[CentralLog, Directory],
) -> None:
    log, _ = two_sites
    assert {p.card_ref for p in inside(log, LINE, scope=scope(HOME))} == {A, B}
    # B left the branch's line without entering it: that says nothing of the home site.
    assert {p.card_ref for p in inside(log, LINE, scope=scope(BRANCH))} == {A}
    every = by_site(inside(log, LINE, scope=scope()))
    assert {site: sorted(p.card_ref for p in people) for site, people in every.items()} == {
        BRANCH: [A],
        HOME: [A, B],
    }


def test_the_search_keeps_to_the_site_asked_for(two_sites: tuple[CentralLog, Directory]) -> None:
    log, people = two_sites
    branch = search(log, Query(site=BRANCH), people).entries
    assert {e.device for e in branch} == {"gate-h1"}
    assert len(branch) == 6
    home = search(log, Query(site=HOME, result="crossing"), people).entries
    assert [e.body["card_ref"] for e in home] == [B, A]
    assert len(search(log, Query(), people).entries) == 9
    page = search(log, Query(site=BRANCH, limit=4), people)
    older = search(log, Query(site=BRANCH, before=page.next_before), people)
    assert len(page.entries) == 4
    assert len(older.entries) == 2
    rows = list(export_rows(log, Query(site=BRANCH), people))
    assert rows[0][-1] == "site"
    assert {r[-1] for r in rows[1:]} == {BRANCH}


def test_alarms_and_counts_keep_to_their_site(two_sites: tuple[CentralLog, Directory]) -> None:
    log, people = two_sites
    assert {(a.site, a.device) for a in alarms.active(log, people)} == {
        (HOME, "gate-1"),
        (BRANCH, "gate-h1"),
    }
    assert [a.device for a in alarms.active(log, people, scope=scope(BRANCH))] == ["gate-h1"]
    # Summed over both sites the line would hold 0 (3 in, 3 out): each site counts its own.
    assert headcount.occupancy(log, scope(HOME))[LINE].count == 2
    assert headcount.occupancy(log, scope(BRANCH))[LINE].count == 0
    assert C not in {p.card_ref for p in inside(log, LINE, scope=scope(BRANCH))}


def test_devices_and_links_are_shown_by_site(two_sites: tuple[CentralLog, Directory]) -> None:
    log, _ = two_sites
    assert [(site, device) for site, device, _, _ in device_health(log, scope())] == [
        (HOME, "gate-1"),
        (BRANCH, "gate-h1"),
    ]
    assert [d for _, d, _, _ in device_health(log, scope(BRANCH))] == ["gate-h1"]
    links = {s.site: s for s in site_links(log, HOME, datetime.fromisoformat(NOW))}
    branch = links[BRANCH]
    assert (branch.connected, branch.stored, branch.online, branch.devices) == (False, 42, 0, 1)
    assert branch.newest_ts == "2026-11-26T09:25:00.000Z"
    assert branch.behind_s == 35 * 60  # cut off: now less its newest event
    assert (links[HOME].online, links[HOME].devices, links[HOME].behind_s) == (1, 1, None)


def test_a_site_the_log_lacks_is_refused_naming_the_sites_it_has(
    two_sites: tuple[CentralLog, Directory],
) -> None:
    log, _ = two_sites
    assert known_sites(log, HOME) == [BRANCH, HOME]
    with pytest.raises(SiteError, match=f"use one of: {BRANCH}, {HOME}"):
        scope_of(log, "zushi", HOME)
    assert scope_of(log, f" {BRANCH} ", HOME) == SiteScope(BRANCH, HOME)


def test_without_a_registry_rows_without_a_site_are_the_logs_only_sites(tmp_path: Path) -> None:
    """An SQLite log a site's collector went on writing: its older rows have no site."""
    log = open_log(tmp_path / "log.db")
    sites = Sites(log)
    sites.cross("gate-1", None, "08:00", A, inward=True)
    sites.cross("gate-1", HOME, "09:00", B, inward=True)
    assert known_sites(log, None) == [HOME]
    scope = scope_of(log, HOME, None)
    assert {p.card_ref for p in inside(log, LINE, scope=scope)} == {A, B}
    assert len(search(log, Query(site=HOME), Directory(None)).entries) == 2
    assert [p.site for p in inside(log, LINE, scope=scope_of(log, "", None))] == [HOME, HOME]
    log.close()


def test_one_device_id_at_two_sites_keeps_its_gaps_apart(
    pg_database: str,  # noqa: F811 -- the fixture imported above
) -> None:
    """PostgreSQL keys devices by site: each site's gate-1 has its own seq and gaps."""
    log = open_log(pg_database)

    def crossing(seq: int) -> dict[str, object]:
        ts = f"2026-11-26T08:0{seq}:00.000Z"
        fields = {"kind": "access", "type": "crossing", "card_ref": A, "to_zone": LINE}
        return {"v": 1, "id": f"gate-1:{seq}", "seq": seq, "ts": ts, **fields}

    log.append([crossing(1), crossing(3)], RECEIVED, site=HOME)  # seq 2 never came
    log.append([crossing(1), crossing(2)], RECEIVED, site=BRANCH)
    missing = [a for a in alarms.active(log) if a.type == "missing_events"]
    assert [(a.site, a.device, a.detail) for a in missing] == [(HOME, "gate-1", "seq 2")]
    branch = alarms.active(log, scope=scope(BRANCH))
    assert not [a for a in branch if a.type == "missing_events"]
    gaps = {(s, d): len(g) for s, d, _, g in device_health(log, scope())}
    assert gaps == {(HOME, "gate-1"): 1, (BRANCH, "gate-1"): 0}
    log.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def empty_log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CentralLog]:
    target = (
        tmp_path / "log.db" if request.param == "sqlite" else request.getfixturevalue("pg_database")
    )
    log = open_log(target)
    yield log
    log.close()


def test_the_doors_page_reads_its_own_sites_door_not_one_of_the_same_name(
    empty_log: CentralLog, tmp_path: Path
) -> None:
    site = Site(Registry(provision(tmp_path / "site", gates=("gate-1",)), SITE))
    empty_log.set_status("gate-1", '{"state":"online"}', RECEIVED, site=SITE)

    def door_event(device: str, seq: int, **fields: object) -> dict[str, object]:
        ts = f"2026-11-26T08:0{seq}:00.000Z"
        return {"v": 1, "id": f"{device}:{seq}", "seq": seq, "ts": ts, "door": "gate-1", **fields}

    # Another site's door of the same id, opened and forced open.
    empty_log.append(
        [
            door_event("gate-9", 1, kind="door", type="opened"),
            door_event("gate-9", 2, kind="alarm", type="door_forced", state="raised"),
        ],
        RECEIVED,
        site=BRANCH,
    )
    (state,) = door_states(empty_log, site)
    assert (state.door, state.leaf, state.alarms, state.online) == ("gate-1", "closed", (), True)


def test_a_sites_link_changing_wakes_the_live_alarm_page(
    two_sites: tuple[CentralLog, Directory],
) -> None:
    log, _ = two_sites
    before = web._alarm_marker(log)
    log.set_site_link(BRANCH, connected=True, at="2026-11-26T09:40:00.000Z")
    assert web._alarm_marker(log) != before


def test_each_sites_new_alarm_changes_the_live_pages_marker(
    two_sites: tuple[CentralLog, Directory],
) -> None:
    log, _ = two_sites
    home = HOME if log.keys_sites else None
    seen = {alarms.latest_alarm_row(log)}
    for device, site, seq in (("gate-1", home, 9), ("gate-h1", BRANCH, 10)):
        forced = {"kind": "alarm", "type": "door_held_open", "state": "raised"}
        ts = f"2026-11-26T09:5{seq - 9}:00.000Z"
        log.append(
            [{"v": 1, "id": f"{device}:{seq}", "seq": seq, "ts": ts, **forced}], RECEIVED, site=site
        )
        seen.add(alarms.latest_alarm_row(log))
    assert len(seen) == 3
