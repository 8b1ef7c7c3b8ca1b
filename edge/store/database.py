"""Open the device store: WAL, full sync, integrity check, migrations; a corrupt file moves aside.

Writes happen only when something is recorded (a tap, a door movement, an alarm), one
transaction per event, so a quiet door writes nothing and a busy day writes a few
thousand small transactions: nothing that wears out an SD card.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlite_utils import Database

from edge.errors import ClosedError
from edge.store import guard
from edge.store.connection import (
    BUSY_TIMEOUT_MS,
    LOOP_BUSY_TIMEOUT_MS,
    StoreError,
    connect,
    write_transaction,
)
from edge.store.migrations import migrations

log = logging.getLogger(__name__)

__all__ = [
    "BUSY_TIMEOUT_MS",
    "LOOP_BUSY_TIMEOUT_MS",
    "Store",
    "StoreError",
    "connect",
    "write_transaction",
]


class Store:
    """The SQLite file of one device. Used from one thread (the agent's loop)."""

    def __init__(
        self, path: Path | str, *, memory: bool = False, busy_timeout_ms: int = BUSY_TIMEOUT_MS
    ) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self.moved_aside: Path | None = None
        self._db: Database | None = None
        fresh = memory or not self.path.exists()
        if memory:
            self._db = Database(memory=True)
        else:
            self._db = self._open_checked()
        migrations.apply(self._db)
        self._restore_guard(fresh=fresh or self.moved_aside is not None)
        if self.moved_aside is not None:
            # The old file may hold events never sent: the new one must not reuse their ids
            # ({device}:{seq}), or consumers would drop new events as duplicates. Continue
            # from a number no earlier store of this device can have reached (ms since 1970).
            self._db.execute(
                "INSERT OR REPLACE INTO counters (name, value) VALUES ('seq', ?)",
                [int(time.time() * 1000)],
            )

    def __repr__(self) -> str:
        state = "closed" if self._db is None else "open"
        return f"<Store {self.path} {state}>"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> Database:
        """The sqlite-utils database; raises ClosedError after close()."""
        if self._db is None:
            raise ClosedError(f"store {self.path} is closed")
        return self._db

    @contextmanager
    def transaction(self) -> Iterator[Database]:
        """Run a block in one write transaction (BEGIN IMMEDIATE … COMMIT, or ROLLBACK).

        IMMEDIATE takes the write lock up front, so two processes (the agent and a
        `credentials load`) queue for it instead of failing half-way with SQLITE_BUSY.
        """
        with write_transaction(self.db) as db:
            yield db

    @contextmanager
    def snapshot(self) -> Iterator[Database]:
        """Read in one consistent snapshot (WAL): every read in the block sees the same commit."""
        db = self.db
        if db.conn.in_transaction:  # already inside a transaction: it is the snapshot
            yield db
            return
        db.execute("BEGIN")
        try:
            yield db
        finally:
            if db.conn.in_transaction:
                db.execute("COMMIT")

    def close(self) -> None:
        """Checkpoint and close; idempotent."""
        if self._db is None:
            return
        try:
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:  # pragma: no cover - nothing more to do at shutdown
            log.warning("store %s: checkpoint at close failed: %s", self.path, exc)
        self._db.close()
        self._db = None

    def _restore_guard(self, *, fresh: bool) -> None:
        # A moved-aside or deleted store must not reset what refuses old snapshots and
        # replayed commands: take the largest of this store, the guard file beside it and
        # whatever a damaged file still yields. Nothing is written unless something is behind;
        # then under the write lock, as every other writer of the guard.
        db = self.db
        if not guard.behind(db, fresh=fresh, damaged=self.moved_aside):
            return
        before = guard.stored(db)
        try:
            with write_transaction(db):
                merged = guard.restore(db, fresh=fresh, damaged=self.moved_aside)
        except sqlite3.OperationalError as exc:  # another writer holds the store: next open
            log.error("store %s: rollback protection not carried over now (%s)", self.path, exc)
            return
        if merged != before:
            refused = guard.from_ms(max(0, merged.command_mark_ms - guard.SKEW_MS))
            log.warning(
                "store %s: rollback protection carried over: credential snapshots older than "
                "v%d and commands expiring before %s are refused",
                self.path,
                merged.credentials_version,
                refused.isoformat(timespec="seconds"),
            )

    def _open_checked(self) -> Database:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._open()
        except sqlite3.DatabaseError as exc:
            aside = self.path.with_name(
                f"{self.path.name}.corrupt-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
            )
            log.error(
                "store %s is damaged (%s); moved aside to %s and starting a new one. "
                "Keep the damaged file for the security office: it may hold unsent events.",
                self.path,
                exc,
                aside,
            )
            for suffix in ("", "-wal", "-shm"):
                part = Path(f"{self.path}{suffix}")
                if part.exists():
                    part.rename(Path(f"{aside}{suffix}"))
            self.moved_aside = aside
            return self._open()

    def _open(self) -> Database:
        db = connect(self.path, busy_timeout_ms=self.busy_timeout_ms)
        conn = db.conn
        try:
            result = conn.execute("PRAGMA quick_check").fetchone()
            if result is None or result[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {result[0] if result else 'no answer'}")
            # Small pages: each event touches a few pages, and every touched page is written
            # again to the WAL; 1 KiB pages quarter what the SD card sees (set before the
            # first table exists; an existing file keeps its page size).
            conn.execute("PRAGMA page_size=1024")
            conn.execute("PRAGMA journal_mode=WAL")
            # connect() left synchronous=FULL: a committed event survives a power cut.
        except sqlite3.DatabaseError:
            conn.close()
            raise
        return db
