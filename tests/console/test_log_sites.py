"""Sites in the central log, on both stores: what each row's site is, the links the sites'
bridges report, and device ids that two sites share (PostgreSQL keys them by site; an
SQLite log refuses a second site's id, naming PostgreSQL)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from sqlite_utils import Database

from console import refusals
from console.log import CentralLog, LogError, migrations, open_log
from console.refusals import BAD_MESSAGES, Refusal
from tests.console.log_backends import SITE, Backend, backend_fixture  # noqa: F401 (the fixture)
from tests.console.test_log import RECEIVED, event, events
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)

LATER = "2026-11-26T00:05:00.000Z"


@pytest.mark.services
def test_each_row_knows_its_site_and_sites_report_their_link(backend: Backend) -> None:
    log = backend.log
    log.append(events("gate-1", range(1, 4)), RECEIVED, site=SITE)
    log.set_status("gate-1", '{"state":"online"}', RECEIVED, site=SITE)
    log.set_occupancy("gate-1", "lobby", 3, True, RECEIVED, site=SITE)
    log.set_site_link(SITE, connected=False, stored=42, at=LATER)
    log.set_site_link(SITE, connected=None, at=LATER)  # unchanged: only the time moves
    log.set_site_link("annex", connected=True, at=LATER)

    sites = log.sites()

    assert sites[SITE] == {
        "site": SITE,
        "connected": False,
        "stored": 42,
        "link_at": LATER,
        "devices": 1,
        "last_received_at": RECEIVED,
        "newest_ts": event("gate-1", 3)["ts"],
    }
    assert sites["annex"]["connected"] is True
    assert sites["annex"]["devices"] == 0
    assert sites["annex"]["newest_ts"] is None
    assert {row[0] for row in log.db.execute("SELECT DISTINCT site FROM events")} == {SITE}
    assert log.occupancy(site=SITE)["lobby"]["site"] == SITE
    assert log.occupancy(site="annex") == {}
    assert log.devices(site=SITE)["gate-1"]["status"] == '{"state":"online"}'
    assert log.count(site=SITE) == 3
    assert log.count(site="annex") == 0


@pytest.mark.services
def test_refusals_keep_their_site_and_a_flood_drops_only_its_own(backend: Backend) -> None:
    log = backend.log
    refusal = Refusal("gate-1", BAD_MESSAGES, "not JSON", "edge/hall/gate-1/events/access", 3, "d")
    refusals.keep(log, [refusal] * (refusals.KEEP + 5), RECEIVED, site=SITE)
    refusals.keep(log, [refusal], LATER)  # the log's own site

    totals = refusals.totals(log)

    assert [(t.site, t.device, t.total) for t in totals] == [
        (None, "gate-1", 1),
        (SITE, "gate-1", refusals.KEEP + 5),
    ]
    kept = refusals.recent(log, "gate-1")
    assert len(kept) == refusals.KEEP
    assert {r["site"] for r in kept} == {None, SITE}


@pytest.mark.services
def test_a_site_must_be_a_topic_level(backend: Backend) -> None:
    for bad in ("Hall", "a/b", "", "x" * 70, "+"):
        with pytest.raises(LogError, match="lower-case letters"):
            backend.log.append(events("gate-1", [1]), RECEIVED, site=bad)
        with pytest.raises(LogError, match="lower-case letters"):
            backend.log.set_site_link(bad, connected=True, at=LATER)
    assert backend.log.count() == 0


@pytest.mark.services
def test_postgresql_keeps_two_sites_devices_apart_each_on_its_own_chain(
    pg_database: str,  # noqa: F811 (the fixture)
) -> None:
    log = open_log(pg_database)
    try:
        with pytest.raises(LogError, match="name the site"):
            log.append(events("gate-1", [1]), RECEIVED)
        log.append(events("gate-1", range(1, 4)), RECEIVED, site="hall")
        log.append(events("gate-1", [1, 2, 5]), RECEIVED, site="annex")
        log.append(events("gate-1", [3]), RECEIVED, site="hall")  # a duplicate in hall only

        assert log.count() == 6
        assert set(log.heads()) == {"events/annex", "events/hall", "audit", "acks"}
        assert log.gaps() == {"annex/gate-1": [3, 4]}
        assert log.gaps(site="annex") == {"gate-1": [3, 4]}
        devices = log.devices()
        assert devices["hall/gate-1"]["duplicates"] == 1
        assert devices["annex/gate-1"]["duplicates"] == 0
        assert log.verify() == []
        with pytest.raises(LogError, match="events/annex"):
            log.head("events")
    finally:
        log.close()


def test_an_sqlite_log_refuses_a_device_id_another_site_holds(tmp_path: Path) -> None:
    log = CentralLog(tmp_path / "log.db")
    try:
        log.append(events("gate-1", [1]), RECEIVED)  # written with no site: the log's own
        log.append(events("gate-1", [2]), RECEIVED, site="hall")  # the first site takes it
        for write in (
            lambda: log.append(events("gate-1", [3]), RECEIVED, site="annex"),
            lambda: log.set_status("gate-1", "{}", RECEIVED, site="annex"),
            lambda: log.set_occupancy("gate-1", "lobby", 1, True, RECEIVED, site="annex"),
        ):
            with pytest.raises(LogError, match=r"already site 'hall'.*PostgreSQL"):
                write()
        log.append(events("gate-1", [3]), RECEIVED)  # no site: the log's own, as ever

        assert [row[0] for row in log.db.execute("SELECT site FROM events ORDER BY row")] == [
            None,
            "hall",
            None,
        ]
        assert log.devices()["gate-1"]["site"] == "hall"
        assert set(log.heads()) == {"events", "audit", "acks"}
        assert log.verify() == []
    finally:
        log.close()


@pytest.mark.services
def test_the_marker_moves_with_every_batch_of_any_site(backend: Backend) -> None:
    log = backend.log
    before = log.marker()
    log.append(events("gate-1", [1]), RECEIVED, site=SITE)
    after_one = log.marker()
    log.append(events("gate-1", [1]), RECEIVED, site=SITE)  # a duplicate: nothing new
    assert log.marker() == after_one
    log.append(events("gate-2", [1]), RECEIVED, site=SITE)

    assert len({before, after_one, log.marker()}) == 3


@pytest.mark.services
def test_the_refusals_marker_counts_every_refusal_kept_or_dropped(backend: Backend) -> None:
    log = backend.log
    assert refusals.latest(log) == 0
    refusal = Refusal("gate-1", BAD_MESSAGES, "not JSON", "edge/hall/gate-1/events/access", 3, "d")
    refusals.keep(log, [refusal] * (refusals.KEEP + 1), RECEIVED, site=SITE)
    refusals.keep(log, [Refusal("gate-2", BAD_MESSAGES, "over", "", 0, "", 7)], LATER, site=SITE)

    assert refusals.latest(log) == refusals.KEEP + 1 + 7


def test_an_sqlite_log_from_before_sites_keeps_its_rows_hashes_and_totals(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        old = Database(conn)
        migrations.apply(old, stop_before="0010_sites")
        old.execute(
            "INSERT INTO refusal_totals (device, alarm, total, first_at, last_at, last_reason) "
            "VALUES ('gate-1', 'bad_messages', 4, ?, ?, 'not JSON')",
            [RECEIVED, RECEIVED],
        )
    log = CentralLog(path)
    try:
        assert [(t.site, t.device, t.total) for t in refusals.totals(log)] == [(None, "gate-1", 4)]
        log.append(events("gate-1", [1]), RECEIVED)
        log.append(events("gate-1", [2]), RECEIVED, site=SITE)
        assert log.verify() == []
        assert log.sites()[SITE]["devices"] == 1
    finally:
        log.close()


@pytest.mark.services
def test_each_sites_rooms_view_is_kept_apart(backend: Backend) -> None:
    log = backend.log
    log.set_rooms("view", '{"of":"hall"}', RECEIVED, site=SITE)
    log.set_rooms("view", '{"of":"annex"}', LATER, site="annex")
    log.set_rooms("status", '{"of":"own"}', LATER)

    assert log.rooms(SITE) == {"view": ('{"of":"hall"}', RECEIVED)}
    assert log.rooms("annex") == {"view": ('{"of":"annex"}', LATER)}
    assert log.rooms() == {"status": ('{"of":"own"}', LATER)}
    with pytest.raises(LogError, match="site"):
        log.set_rooms("view", "{}", LATER, site="Bad Site")


@pytest.mark.services
def test_last_received_at_is_the_newest_events_reception(backend: Backend) -> None:
    log = backend.log
    assert log.last_received_at() is None
    log.append(events("gate-1", range(1, 3)), RECEIVED, site=SITE)
    log.append(events("gate-1", range(3, 5)), LATER, site=SITE)

    assert log.last_received_at() == LATER
    assert log.last_received_at(SITE) == LATER
    assert log.last_received_at("annex") is None


@pytest.mark.services
def test_gaps_are_the_first_missing_seqs_of_each_device_up_to_the_limit(backend: Backend) -> None:
    log = backend.log
    log.append(events("gate-1", [1, 2, 5, 9, 10, 1_000_000]), RECEIVED, site=SITE)
    log.append(events("gate-2", [2, 3]), RECEIVED, site=SITE)
    log.append(events("gate-3", [1, 2]), RECEIVED, site=SITE)

    assert log.gaps(limit=10, site=SITE) == {
        "gate-1": [3, 4, 6, 7, 8, 11, 12, 13, 14, 15],
        "gate-2": [1],
    }
    assert log.gaps(limit=3, site=SITE) == {"gate-1": [3, 4, 6], "gate-2": [1]}
    assert len(log.gaps(site=SITE)["gate-1"]) == 1000  # the default limit
    prefix = f"{SITE}/" if log.keys_sites else ""
    assert log.gaps(limit=2) == {f"{prefix}gate-1": [3, 4], f"{prefix}gate-2": [1]}
