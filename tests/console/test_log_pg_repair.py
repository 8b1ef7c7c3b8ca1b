"""The PostgreSQL log when its database misbehaves: a database that answers but refuses
every write is an outage (never a bad event), opening names what is wrong, a month whose
partition could not be made is made later with its events moved into it, and the archive
of dropped months holds only what a drop recorded."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest

from console import log_pg
from console.log import LogError, LogUnavailable, open_log
from tests.console.test_log import RECEIVED, event
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)

LATER = "2026-11-29T00:00:00.000Z"


def _at(seq: int, ts: str) -> dict[str, Any]:
    return event("gate-1", seq, {"ts": ts})


@contextmanager
def _table_held(url: str) -> Iterator[None]:
    """Hold a lock on `events` as a long reader does (an export, a verify)."""
    with psycopg.connect(url) as reader:
        reader.execute("SELECT count(*) FROM events").fetchone()  # its transaction stays open
        yield
        reader.rollback()


def _in_default(url: str) -> int:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT count(*) FROM events_default").fetchone()
        return int(found[0]) if found else -1


@pytest.mark.services
def test_a_database_that_refuses_every_write_is_an_outage_not_a_bad_event(
    pg_database: str,  # noqa: F811
) -> None:
    log = open_log(pg_database)
    log.append([event("gate-1", 1)], RECEIVED, site="hall")
    log.close()
    with psycopg.connect(pg_database, autocommit=True) as admin:  # read-only after a failover
        name = pg_database.rsplit("/", 1)[1]
        admin.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on'.encode())

    log = open_log(pg_database)  # every migration applied: it opens for reading
    try:
        assert log.count() == 1
        with pytest.raises(psycopg.Error) as refused:
            log.append([event("gate-1", 2)], RECEIVED, site="hall")
        assert log.outage(refused.value)  # retried, never acknowledged as a bad event
        with pytest.raises(LogError) as bad:
            log.append([{"id": "gate-1:x", "seq": 0}], RECEIVED, site="hall")
        assert not log.outage(bad.value)
        assert not log.outage(psycopg.errors.NumericValueOutOfRange("one value"))
        assert not log.outage(psycopg.errors.UniqueViolation("one row"))
        assert log.outage(psycopg.errors.UndefinedTable("events gone"))
        assert log.outage(psycopg.errors.InsufficientPrivilege("grant revoked"))
    finally:
        log.close()


@pytest.mark.services
def test_opening_a_log_the_account_cannot_make_names_the_problem(
    pg_database: str,  # noqa: F811
) -> None:
    reader = f"reader_{pg_database.rsplit('/', 1)[1]}"  # roles are the cluster's
    with psycopg.connect(pg_database, autocommit=True) as admin:
        admin.execute(f"CREATE ROLE {reader} LOGIN PASSWORD 's3cret'".encode())
        admin.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    url = pg_database.replace("postgres@", f"{reader}:s3cret@")

    with pytest.raises(LogError) as refused:
        open_log(url)

    assert not isinstance(refused.value, LogUnavailable)
    assert f"cannot open the log at postgresql://{reader}:***@" in str(refused.value)
    assert "permission denied" in str(refused.value)
    assert "s3cret" not in str(refused.value)


@pytest.mark.services
def test_a_month_whose_partition_could_not_be_made_gets_it_with_its_events_later(
    pg_database: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(log_pg, "_LOCK_WAIT", "100ms")
    monkeypatch.setattr(log_pg, "_RETRY", 0.0)  # the next write tries again
    log = open_log(pg_database)
    with _table_held(pg_database):
        log.append([_at(1, "2026-03-05T00:00:00.000Z")], RECEIVED, site="hall")
    assert _in_default(pg_database) == 1
    assert any("events_default holds 1 events of 2026-03" in n for n in log.check().notes)
    log.close()

    log = open_log(pg_database)  # opening moves March out of the default
    try:
        assert _in_default(pg_database) == 0
        with _table_held(pg_database):
            log.append([_at(2, "2026-04-05T00:00:00.000Z")], RECEIVED, site="hall")
            log.append([_at(3, "2026-04-06T00:00:00.000Z")], RECEIVED, site="hall")  # fails again
        assert _in_default(pg_database) == 2
        log.append([_at(4, "2026-04-07T00:00:00.000Z")], RECEIVED, site="hall")  # made now

        assert _in_default(pg_database) == 0
        assert log.check().notes == []
        assert log.verify() == []
        assert log.drop_month("2026-03", LATER) == 1
        assert log.drop_month("2026-04", LATER) == 3
        assert log.check().problems == []
    finally:
        log.close()


@pytest.mark.services
def test_an_archived_row_of_a_month_never_dropped_is_a_problem(
    pg_database: str,  # noqa: F811
) -> None:
    log = open_log(pg_database)
    try:
        log.append([_at(s, f"2026-09-0{s}T00:00:00.000Z") for s in (1, 2, 3)], RECEIVED, site="a")
        log.append([_at(s, f"2026-10-0{s}T00:00:00.000Z") for s in (4, 5)], RECEIVED, site="a")
        assert log.drop_month("2026-09", LATER) == 3
        assert log.check().problems == []

        # A row of a month still kept is moved to the archive as if dropped, then erased.
        log.db.execute(
            "INSERT INTO events_archived SELECT row, site, prev, hash, device, seq, "
            "'2026-10', ? FROM events WHERE id = 'gate-1:5'",
            [LATER],
        )
        log.db.execute("DELETE FROM events WHERE id = 'gate-1:5'")

        problems = log.check().problems
        assert len(problems) == 1, problems
        assert "2026-10 were never dropped by the console" in problems[0]

        log.db.execute("DELETE FROM events_archived WHERE month = '2026-10'")
        log.db.execute("UPDATE events_archived SET month = '2026-08' WHERE seq = 2")
        assert any("2026-09 differ from what their drop recorded" in p for p in log.verify())
    finally:
        log.close()


@pytest.mark.services
def test_a_lost_connection_is_not_kept(pg_database: str) -> None:  # noqa: F811
    log = open_log(pg_database)
    store: Any = log._store  # what it keeps is the point
    try:
        for _ in range(3):
            store.connection().close()  # lost, as when the server restarts
            log.count()
        counted: list[int] = []
        reader = threading.Thread(target=lambda: counted.append(log.count()))
        reader.start()
        reader.join(10)
        assert counted == [0]

        assert len(store._connections) == 2
    finally:
        log.close()
