"""The PostgreSQL store itself: the readers' SQL translated, migrations recorded once,
events' months partitioned, and two collectors writing at once losing and doubling nothing."""

from __future__ import annotations

import tempfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from console.log import LogError, open_log
from console.log_pg import masked, translate
from simulator.postgres import PostgresCluster
from tests.console.test_log import RECEIVED, event
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)

LATER = "2026-11-28T00:00:00.000Z"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT * FROM t WHERE a = ? AND b = ?", "SELECT * FROM t WHERE a = %s AND b = %s"),
        ("SELECT 'a?b', ? FROM t", "SELECT 'a?b', %s FROM t"),
        ("SELECT 'it''s ?', ?", "SELECT 'it''s ?', %s"),
        ("SELECT 100 % 7, ? WHERE x LIKE '50%'", "SELECT 100 %% 7, %s WHERE x LIKE '50%%'"),
        ('SELECT "odd?name" FROM t WHERE a = ?', 'SELECT "odd?name" FROM t WHERE a = %s'),
        ("SELECT ? -- why?\n, ?", "SELECT %s -- why?\n, %s"),
        ("SELECT /* a ? here */ ?", "SELECT /* a ? here */ %s"),
    ],
)
def test_placeholders_are_translated_outside_literals_only(sql: str, expected: str) -> None:
    assert translate(sql) == expected


def test_a_password_never_shows() -> None:
    assert (
        masked("postgresql://edge:s3cret@db.hall:5432/log")
        == "postgresql://edge:***@db.hall:5432/log"
    )
    assert masked("postgresql://db/log?user=edge&password=s3cret") == (
        "postgresql://db/log?user=edge&password=***"
    )


@pytest.mark.services
def test_the_readers_sql_runs_as_on_sqlite(pg_database: str) -> None:  # noqa: F811
    log = open_log(pg_database)
    try:
        log.append([event("gate-1", 1, {"reason": "50% off?"})], RECEIVED, site="hall")
        db = log.db
        assert db.execute("SELECT count(*) FROM events WHERE reason LIKE '50%'").fetchone() == (1,)
        assert db.execute("SELECT ? || '?'", ["a"]).fetchone() == ("a?",)
        assert list(db.query("SELECT id, seq FROM events WHERE seq = ?", [1])) == [
            {"id": "gate-1:1", "seq": 1}
        ]
        assert db.execute(
            "SELECT json_extract(body, '$.reason'), json_extract(body, '$.seq') FROM events"
        ).fetchone() == ("50% off?", "1")
        db.execute("INSERT INTO sites (site, connected) VALUES (?, ?)", ["annex", True])
        assert db.execute("SELECT connected FROM sites").fetchone() == (1,)  # as SQLite
        assert db.execute("DELETE FROM sites WHERE site = ?", ["annex"]).rowcount == 1
    finally:
        log.close()


@pytest.mark.services
def test_migrations_are_recorded_and_run_once(pg_database: str) -> None:  # noqa: F811
    first = open_log(pg_database)
    names = [n for (n,) in first.db.execute("SELECT name FROM migrations ORDER BY name")]
    first.append([event("gate-1", 1)], RECEIVED, site="hall")
    first.close()

    again = open_log(pg_database)
    try:
        assert [
            n for (n,) in again.db.execute("SELECT name FROM migrations ORDER BY name")
        ] == names
        assert names[0] == "0001_events"
        assert again.count() == 1
    finally:
        again.close()


def partition_of(log: Any, event_id: str) -> str:
    return str(
        log.db.execute(
            "SELECT tableoid::regclass::text FROM events WHERE id = ?", [event_id]
        ).fetchone()[0]
    )


@pytest.mark.services
def test_each_month_has_its_partition_made_before_its_first_event(pg_database: str) -> None:  # noqa: F811
    log = open_log(pg_database)
    try:
        now = datetime.now(UTC)
        months = {
            name
            for (name,) in log.db.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'events'::regclass"
            )
        }
        assert f"events_y{now:%Y}m{now:%m}" in months  # this month, and the next two, at open
        assert "events_default" in months
        assert len(months) == 4

        old = event("gate-1", 1, {"ts": "2025-12-31T23:59:59.999Z"})
        january = event("gate-1", 2, {"ts": "2026-01-01T00:00:00.000Z"})
        odd = event("gate-1", 3, {"ts": "not a time"})
        log.append([old, january, odd], RECEIVED, site="hall")

        assert partition_of(log, "gate-1:1") == "events_y2025m12"
        assert partition_of(log, "gate-1:2") == "events_y2026m01"
        assert partition_of(log, "gate-1:3") == "events_default"
        assert log.verify() == []
    finally:
        log.close()


@pytest.mark.services
def test_two_collectors_at_once_store_every_event_once_on_every_sites_chain(
    pg_database: str,  # noqa: F811
) -> None:
    logs = [open_log(pg_database), open_log(pg_database)]
    sites = ("hall", "annex")
    # Both receive every event of both sites (two collectors taking the same sites), in
    # batches that overlap, in a different order, with an old month among them.
    batches = [
        [
            event(device, seq, {"ts": f"2026-{9 + seq % 3:02d}-01T00:00:{seq % 60:02d}.000Z"})
            for device in ("gate-1", "gate-2")
            for seq in range(start, start + 15)
        ]
        for start in range(1, 120, 10)
    ]
    stored: list[list[tuple[str, str]]] = [[], []]
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def collect(n: int) -> None:
        try:
            start.wait()
            order = batches if n == 0 else batches[::-1]
            for i, batch in enumerate(order):
                for site in sites if (i + n) % 2 else sites[::-1]:
                    ids = logs[n].append(batch, RECEIVED, site=site)
                    stored[n] += [(site, event_id) for event_id in ids]
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=collect, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert not any(t.is_alive() for t in threads), "the collectors deadlocked"
        assert failures == []
        expected = {(s, e["id"]) for s in sites for batch in batches for e in batch}
        together = stored[0] + stored[1]
        assert len(together) == len(set(together)) == len(expected)
        assert set(together) == expected
        assert logs[0].count() == len(expected)
        doubled = (
            logs[0]
            .db.execute("SELECT site, id FROM events GROUP BY site, id HAVING count(*) > 1")
            .fetchall()
        )
        assert doubled == []
        assert logs[1].verify() == []
        assert set(logs[1].heads()) == {"events/hall", "events/annex", "audit", "acks"}
        assert logs[0].gaps() == {}
    finally:
        for log in logs:
            log.close()


@pytest.mark.services
def test_a_month_dropped_after_its_export_leaves_every_chain_verified(
    pg_database: str,  # noqa: F811
) -> None:
    log = open_log(pg_database)
    try:
        september = [event("gate-1", s, {"ts": f"2026-09-0{s}T08:00:00.000Z"}) for s in (1, 2)]
        october = [event("gate-1", s, {"ts": f"2026-10-0{s}T08:00:00.000Z"}) for s in (3, 4)]
        log.append(september[:1] + october[:1], RECEIVED, site="hall")
        log.append(september[1:], RECEIVED, site="annex")
        log.append(september[1:] + october[1:], RECEIVED, site="hall")  # a late one, too
        anchor = log.head("events/annex")

        assert log.drop_month("2026-09", LATER) == 3

        assert log.count() == 2
        checked = log.check()
        assert checked.problems == []
        assert any("events/hall: rows" in n and "archived" in n for n in checked.notes)
        assert log.anchored(*anchor, "events/annex") is None  # its row is archived
        assert log.append(september[:1], RECEIVED, site="hall") == []  # stored once, ever
        log.append([event("gate-1", 5)], RECEIVED, site="hall")
        assert log.verify() == []
        with pytest.raises(LogError, match="no partition"):
            log.drop_month("2026-09", LATER)
        with pytest.raises(LogError, match="before this one"):
            log.drop_month(f"{datetime.now(UTC):%Y-%m}", LATER)
        with pytest.raises(LogError, match="YYYY-MM"):
            log.drop_month("2026-9", LATER)

        # An archived row deleted is a row missing, as any other.
        (row,) = log.db.execute(
            "SELECT min(row) FROM events_archived WHERE site = 'hall'"
        ).fetchone()
        log.db.execute("DELETE FROM events_archived WHERE row = ?", [row])
        assert any("missing" in p for p in log.verify())
    finally:
        log.close()


def test_an_sqlite_log_has_no_months_to_drop(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log.db")
    try:
        with pytest.raises(LogError, match="SQLite log is one file"):
            log.drop_month("2026-01", LATER)
    finally:
        log.close()


@pytest.mark.services
def test_a_nul_a_device_sends_neither_refuses_its_event_nor_breaks_a_query(
    pg_database: str,  # noqa: F811
) -> None:
    log = open_log(pg_database)
    try:
        crossing = event(
            "gate-1", 1, {"type": "crossing", "to_zone": "lob\x00by", "reason": "\x00"}
        )
        fire = event("gate-1", 2, {"kind": "alarm", "type": "fire", "state": "raised\x00"})

        assert log.append([crossing, fire], RECEIVED, site="hall") == ["gate-1:1", "gate-1:2"]

        assert [e.body for e in log.entries()] == [crossing, fire]  # the body as sent
        assert log.db.execute(
            "SELECT json_extract(body, '$.to_zone'), reason FROM events WHERE seq = 1"
        ).fetchone() == ("lob\ufffdby", "\ufffd")
        assert log.db.execute(
            "SELECT count(*) FROM events WHERE kind = 'alarm' "
            "AND json_extract(body, '$.state') = ?",
            ["raised\ufffd"],
        ).fetchone() == (1,)
        assert log.verify() == []
    finally:
        log.close()


@pytest.mark.services
def test_the_database_gone_is_an_outage_to_retry_and_the_log_reconnects() -> None:
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="edge-pg-")))
    cluster.start()
    log = open_log(cluster.url)
    try:
        log.append([event("gate-1", 1)], RECEIVED, site="hall")
        with psycopg.connect(cluster.url, autocommit=True) as admin:  # the server goes down
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
        cluster.stop()

        with pytest.raises(Exception) as lost:  # noqa: PT011  # whatever the driver raises
            log.append([event("gate-1", 2)], RECEIVED, site="hall")
        assert log.outage(lost.value)
        with pytest.raises(LogError) as unreachable:  # the next try: no server to connect to
            log.append([event("gate-1", 2)], RECEIVED, site="hall")
        assert log.outage(unreachable.value)
        assert "postgresql://" in str(unreachable.value)

        cluster.start()
        assert log.append([event("gate-1", 2)], RECEIVED, site="hall") == ["gate-1:2"]
        with pytest.raises(LogError) as refused:
            log.append([{"id": "gate-1:3", "seq": 3, "ts": "x"}], RECEIVED)  # no site
        assert not log.outage(refused.value)
        assert log.count() == 2
        assert log.verify() == []
    finally:
        log.close()
        cluster.remove()
