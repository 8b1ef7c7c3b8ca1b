"""The central log on PostgreSQL: many sites and collectors at once (the only psycopg user).

One connection per thread, in autocommit outside `transaction()`, like the SQLite store.
`db` runs the readers' portable SQL: its `?` placeholders become psycopg's (a `%` is
escaped, and neither is touched inside a string literal, a quoted name or a comment), and a
Python bool is stored as 0/1, as SQLite stores it. The schema is made by the named
migrations of console.log_pg_schema (a database with every one applied opens read-only).
Events are partitioned by month: this month's and the next two are made at open and
whenever a write sees the calendar reach a new month, and an older month's before its first
event, each on a connection of its own outside any write transaction (making one locks the
whole table). A month whose making fails (the table held by a long reader) is tried again
at a later write; its events wait in the default partition and are moved into the month's
when it is made, in the same transaction. Only a value PostgreSQL refuses (DataError,
IntegrityError) is one event's fault: any other database error is an outage, retried.
"""

from __future__ import annotations

import functools
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import TransactionStatus
from psycopg.rows import dict_row

from console.log_archive import record_drop
from console.log_pg_schema import LOCK, MIGRATIONS, PARTITIONS_LOCK, TS_STATISTICS
from console.log_store import Executor, LogError, LogUnavailable, Rows, masked

log = logging.getLogger(__name__)

_TOKEN: Final = re.compile(r"""'(?:[^']|'')*'|"(?:[^"]|"")*"|--[^\n]*|/\*.*?\*/|\?|%""", re.S)
_MONTH: Final = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])")
_PARTITION: Final = re.compile(r"^events_y(\d{4})m(\d{2})$")
_FIRST_YEAR: Final = 2000  # a month before this stays in the default partition
_LOCK_WAIT: Final = "5s"  # how long making a partition waits for the table
_AHEAD: Final = 2  # months after this one whose partitions are made ahead
_RETRY: Final = 30.0  # seconds before making a partition that failed is tried again


@functools.lru_cache(maxsize=2048)
def translate(sql: str) -> str:
    """Return `sql` with psycopg's placeholders for `?` and every `%` escaped."""

    def token(match: re.Match[str]) -> str:
        text = match.group()
        return "%s" if text == "?" else text.replace("%", "%%")

    return _TOKEN.sub(token, sql)


class _BoolAsInteger(Dumper):
    """Store True/False as 1/0: the log keeps booleans as INTEGER on both stores."""

    oid = psycopg.postgres.types["int4"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


class PgDatabase:
    """One connection, answering the SQL the readers write for SQLite (`?` placeholders)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def __repr__(self) -> str:
        return f"<PgDatabase {masked(self.conn.info.dsn)}>"

    def execute(self, sql: str, parameters: Any = None, /) -> Rows:
        """Run one statement; return its cursor (rows as tuples)."""
        return self.conn.execute(translate(sql), _params(parameters))

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> None:
        """Run one statement for each set of values (pipelined: one round trip, not one each)."""
        with self.conn.cursor() as cursor:
            cursor.executemany(translate(sql), [_params(p) for p in seq_of_parameters])

    def query(self, sql: str, params: Any = None, /) -> Iterator[dict[str, Any]]:
        """Run one statement; yield its rows as dicts."""
        with self.conn.cursor(row_factory=dict_row) as cursor:
            cursor.execute(translate(sql), _params(params))
            rows = cursor.fetchall() if cursor.description else []
        yield from rows


class PostgresStore:
    """A log's PostgreSQL database and this process's connections to it."""

    keys_sites = True
    # What a table altered under the log raises (a column or a table gone, a type changed).
    errors: tuple[type[Exception], ...] = (psycopg.ProgrammingError, psycopg.DataError)

    def __init__(self, url: str) -> None:
        self._url = url
        self.target = masked(url)
        self._local = threading.local()
        self._connections: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()
        self._months: set[str] = set()
        self._retry: dict[str, float] = {}  # month: when its partition is tried again
        waiting: set[str] = set()
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                _migrate(conn)
                self._months = _partitions(conn)
                waiting = _waiting(conn)
        except psycopg.OperationalError as error:
            raise LogUnavailable(
                f"cannot open the log at {self.target}: {_first_line(error)}; check the URL, "
                "that PostgreSQL runs and that the account may connect"
            ) from None
        except psycopg.Error as error:
            raise LogError(
                f"cannot open the log at {self.target}: {_first_line(error)}; check that the "
                "account owns the log's tables (or may create them) and that the database is "
                "the log's"
            ) from None
        self.prepare([{"ts": month} for month in sorted(waiting)])

    def __repr__(self) -> str:
        return f"<PostgresStore {self.target}>"

    def connection(self) -> psycopg.Connection[Any]:
        """This thread's connection (a new one if the last was lost)."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            try:
                conn = psycopg.connect(self._url, autocommit=True)
            except psycopg.OperationalError as error:
                raise LogUnavailable(
                    f"cannot reach the log at {self.target}: {_first_line(error)}"
                ) from None
            conn.adapters.register_dumper(bool, _BoolAsInteger)
            with self._lock:  # a lost one is closed: keep only those still to close
                self._connections = [kept for kept in self._connections if not kept.closed]
                self._connections.append(conn)
            self._local.conn = conn
            self._local.db = PgDatabase(conn)
        return conn

    def db(self) -> PgDatabase:
        """Return this thread's connection."""
        self.connection()
        database: PgDatabase = self._local.db
        return database

    def close(self) -> None:
        """Close every thread's connection; idempotent."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[PgDatabase]:
        """Write in one transaction on this thread's connection; inside one, join it."""
        conn = self.connection()
        if conn.info.transaction_status != TransactionStatus.IDLE:
            yield self.db()
            return
        with conn.transaction():
            yield self.db()

    @contextmanager
    def snapshot(self) -> Iterator[PgDatabase]:
        """Read in one snapshot (repeatable read): a collector appending is not seen."""
        conn = self.connection()
        if conn.info.transaction_status != TransactionStatus.IDLE:
            yield self.db()
            return
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield self.db()

    @contextmanager
    def attempt(self, conn: object) -> Iterator[None]:
        """Run statements in a savepoint: a failed one does not end the snapshot."""
        with self.connection().transaction():
            yield

    def outage(self, error: BaseException) -> bool:
        """True unless one row is at fault: the log's own check of a value (LogError) or a
        value PostgreSQL refuses (DataError, IntegrityError). Any other database error is
        the database's (down, read-only after a failover, a grant revoked, a table gone):
        to be retried, never taken as a bad event and acknowledged."""
        if isinstance(error, LogUnavailable | MemoryError):
            return True
        if isinstance(error, psycopg.DataError | psycopg.IntegrityError):
            return False
        return isinstance(error, psycopg.Error)

    def prepare(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Make the partitions of this month, the next two and every month the events fall
        in that has none yet; a month whose making fails is tried again at a later write
        (its events wait in the default partition and are moved into it then)."""
        now = datetime.now(UTC)
        ahead = {f"{now:%Y-%m}"}
        for _ in range(_AHEAD):
            ahead.add(_next_month(max(ahead)))
        months = ahead | {month for e in events if (month := _month(e.get("ts")))}
        clock = time.monotonic()
        with self._lock:
            months -= self._months
            months = {m for m in months if self._retry.get(m, clock) <= clock}
        if not months:
            return
        # Its own connection, outside any write transaction: making a partition locks the
        # whole table, and must never wait on (or hold up) a collector's transaction.
        try:
            with psycopg.connect(self._url, autocommit=True) as conn:
                conn.execute(f"SET lock_timeout = '{_LOCK_WAIT}'")
                for month in sorted(months):
                    made = _partition(conn, month)
                    with self._lock:
                        if made:
                            self._months.add(month)
                            self._retry.pop(month, None)
                        else:
                            self._retry[month] = time.monotonic() + _RETRY
        except psycopg.Error as error:  # the write that follows reports the outage
            log.warning("cannot make the log's partitions: %s", _first_line(error))

    def notes(self, conn: Executor) -> list[str]:
        """Name the months whose events wait in the default partition."""
        waiting = conn.execute(
            "SELECT substr(ts, 1, 7), count(*) FROM events_default GROUP BY 1 ORDER BY 1"
        ).fetchall()
        return [
            f"events_default holds {count} events of {month}: their month has no partition "
            "yet (it is made, and they are moved into it, at the next open or write); "
            "until then the month cannot be dropped"
            for month, count in waiting
            if _month(month)
        ]

    def drop_month(self, month: str, at: str) -> int:
        """Archive a month's events (after their export): keep each one's row, prev, hash
        and seq so every site's chain still verifies, then drop its partition. Return the
        number of events dropped."""
        if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
            raise LogError(f"month {month[:20]!r}: give it as YYYY-MM, e.g. 2026-01")
        if month >= f"{datetime.now(UTC):%Y-%m}":
            raise LogError(f"month {month}: only a month before this one can be dropped")
        name = f"events_y{month[:4]}m{month[5:7]}"
        with psycopg.connect(self._url, autocommit=True) as conn:
            conn.execute(f"SET lock_timeout = '{_LOCK_WAIT}'")
            if month not in _partitions(conn) and month in _waiting(conn):
                _partition(conn, month)  # its events wait in the default: move them first
            if month not in _partitions(conn):
                raise LogError(f"month {month}: the log has no partition for it (dropped?)")
            try:
                with conn.transaction():
                    conn.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITIONS_LOCK])
                    conn.execute(f"LOCK TABLE {name} IN ACCESS EXCLUSIVE MODE".encode())
                    archive = (
                        "INSERT INTO events_archived (row, site, prev, hash, device, seq, "  # noqa: S608
                        f"month, archived_at) SELECT row, site, prev, hash, device, seq, %s, %s "
                        f"FROM {name}"
                    )
                    dropped = conn.execute(archive.encode(), [month, at]).rowcount
                    conn.execute(f"ALTER TABLE events DETACH PARTITION {name}".encode())
                    conn.execute(f"DROP TABLE {name}".encode())
                    record_drop(PgDatabase(conn), month, at)
            except psycopg.errors.LockNotAvailable:
                raise LogError(
                    f"month {month}: the log is busy (a collector is writing); try again"
                ) from None
        log.info("dropped %d events of %s from the log (archived in its chains)", dropped, month)
        return dropped


def _migrate(conn: psycopg.Connection[Any]) -> None:
    """Apply the migrations not applied yet, each in its own transaction, in order."""
    if not _missing(conn):
        return  # nothing to write: a read-only database (a standby, a reader) opens too
    conn.execute("SELECT pg_advisory_lock(%s)", [LOCK])  # collectors opening at once
    try:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS migrations (name text PRIMARY KEY, "
            "applied_at text NOT NULL)"
        )
        done = {name for (name,) in conn.execute("SELECT name FROM migrations")}
        for name, statements in MIGRATIONS:
            if name in done:
                continue
            with conn.transaction():
                for statement in statements:
                    conn.execute(statement.encode())  # as written: no placeholders
                conn.execute(
                    "INSERT INTO migrations (name, applied_at) VALUES (%s, %s)",
                    [name, datetime.now(UTC).isoformat(timespec="milliseconds")],
                )
            log.info("central log migration %s applied", name)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [LOCK])


def _missing(conn: psycopg.Connection[Any]) -> bool:
    """True if a migration is still to apply (read without writing anything)."""
    (table,) = conn.execute("SELECT to_regclass('migrations')").fetchone() or (None,)
    if table is None:
        return True
    done = {name for (name,) in conn.execute("SELECT name FROM migrations")}
    return any(name not in done for name, _ in MIGRATIONS)


def _partitions(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'events'::regclass"
    ).fetchall()
    return {f"{m[1]}-{m[2]}" for (name,) in rows if (m := _PARTITION.match(name))}


def _partition(conn: psycopg.Connection[Any], month: str) -> bool:
    """Make the partition of `month` (YYYY-MM), moving into it the events of that month
    the default partition holds, in one transaction; return False if it cannot be made now."""
    name = f"events_y{month[:4]}m{month[5:7]}"
    bounds = [month, _next_month(month)]
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITIONS_LOCK])
            if month in _partitions(conn):
                return True
            waiting = conn.execute(
                "SELECT 1 FROM events_default WHERE ts >= %s AND ts < %s LIMIT 1", bounds
            ).fetchone()
            if waiting is None:
                conn.execute(
                    f"CREATE TABLE {name} PARTITION OF events "
                    f"FOR VALUES FROM ('{month}') TO ('{bounds[1]}')".encode()
                )
                conn.execute(TS_STATISTICS.format(table=name).encode())
                return True
            # Attaching a month the default holds rows of is refused: move them first.
            like = "LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
            conn.execute(f"CREATE TABLE {name} ({like})".encode())
            moved = conn.execute(
                f"WITH moved AS (DELETE FROM events_default WHERE ts >= %s AND ts < %s "  # noqa: S608
                f"RETURNING *) INSERT INTO {name} SELECT * FROM moved".encode(),
                bounds,
            ).rowcount
            conn.execute(
                f"ALTER TABLE events ATTACH PARTITION {name} "
                f"FOR VALUES FROM ('{month}') TO ('{bounds[1]}')".encode()
            )
            conn.execute(TS_STATISTICS.format(table=name).encode())
        log.warning("made the partition %s; moved its %d events out of the default", name, moved)
        return True
    except psycopg.Error as error:
        log.warning(
            "cannot make the partition %s now (%s); its events wait in events_default and "
            "are moved into it when it is made",
            name,
            _first_line(error),
        )
        return False


def _waiting(conn: psycopg.Connection[Any]) -> set[str]:
    """Return the months the default partition holds events of that should have one."""
    rows = conn.execute("SELECT DISTINCT substr(ts, 1, 7) FROM events_default").fetchall()
    return {month for (ts,) in rows if (month := _month(ts))}


def _month(ts: object) -> str | None:
    """Return the YYYY-MM an event time falls in, None if it is not one to partition."""
    if not isinstance(ts, str) or not (found := _MONTH.match(ts)):
        return None
    month = found.group()
    latest = f"{datetime.now(UTC):%Y-%m}"
    for _ in range(_AHEAD):
        latest = _next_month(latest)
    return month if int(month[:4]) >= _FIRST_YEAR and month <= latest else None


def _next_month(month: str) -> str:
    year, number = int(month[:4]), int(month[5:7])
    return f"{year + number // 12:04d}-{number % 12 + 1:02d}"


def _params(parameters: Any) -> list[Any]:
    if parameters is None:
        return []  # never None: psycopg reads `%%` as `%` only when given parameters
    if isinstance(parameters, Mapping):
        raise LogError("the log's SQL takes `?` placeholders and a list of values")
    return list(parameters)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
