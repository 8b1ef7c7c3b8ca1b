"""The central log in one SQLite file (WAL): the default, for one site's log.

One connection per thread (the collector writes on its own, readers read on theirs); a
write transaction takes the file's write lock at once (`BEGIN IMMEDIATE`), so two writers
take turns and never fork the one events chain. `db` is sqlite-utils' Database: `execute`
gives a cursor, `query` dict rows.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from console.log_schema import migrations
from console.log_store import Executor, LogDatabase, LogError, Writer
from provisioning.files import private_database


class SqliteStore:
    """A log's SQLite file and this process's connections to it."""

    keys_sites = False
    errors: tuple[type[Exception], ...] = (sqlite3.DatabaseError,)

    def __init__(self, path: Path) -> None:
        self.path = path
        self.target = str(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        private_database(path)  # 0600 from the first byte: names of people's movements
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.database().execute("PRAGMA journal_mode=WAL")
        migrations.apply(self.database())

    def database(self) -> Database:
        """This thread's connection, as sqlite-utils' Database."""
        db: Database | None = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(
                self.path, timeout=10, isolation_level=None, check_same_thread=False
            )  # used by its own thread only; closed by close() from any
            conn.execute("PRAGMA synchronous=NORMAL")
            with self._lock:
                self._connections.append(conn)
            db = self._local.db = Database(conn)
        return db

    def db(self) -> LogDatabase:
        """Return this thread's connection."""
        return self.database()

    def close(self) -> None:
        """Close every thread's connection; idempotent."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    @contextmanager
    def transaction(self) -> Iterator[Writer]:
        """Write in one transaction on this thread's connection; inside one, join it."""
        conn = self.database().conn
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[Executor]:
        """Read in one snapshot: a collector appending meanwhile is not seen."""
        conn = self.database().conn
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    @contextmanager
    def attempt(self, conn: Executor) -> Iterator[None]:
        """SQLite's read transaction survives a failed statement: nothing to undo."""
        yield

    def outage(self, error: BaseException) -> bool:
        """True for a failure of the database itself (full, locked, corrupt), not of one row."""
        return isinstance(error, sqlite3.OperationalError | MemoryError) or (
            type(error) is sqlite3.DatabaseError
        )

    def drop_month(self, month: str, at: str) -> int:
        """An SQLite log keeps every event: it has no months to drop."""
        raise LogError(
            f"month {month[:20]}: an SQLite log is one file and keeps every event; months are "
            "dropped from a PostgreSQL log (docs/central-log.md)"
        )

    def prepare(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Nothing to make room for: one table holds every event."""

    def notes(self, conn: Executor) -> list[str]:
        """Nothing is held aside: one table holds every event."""
        return []
