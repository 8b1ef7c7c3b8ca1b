"""Every connection to a device store: one place for the busy timeout, sync and transactions."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from edge.errors import EdgeError

# How long a connection waits for another writer's lock before SQLITE_BUSY.
BUSY_TIMEOUT_MS = 5000
# The agent's loop waits less: a commit that times out keeps its events in memory, and the
# doors never wait behind a long write (a `credentials load` in another process).
LOOP_BUSY_TIMEOUT_MS = 200


class StoreError(EdgeError, RuntimeError):
    """The store cannot be opened or written."""


def connect(
    path: Path | str,
    *,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
    synchronous: str = "FULL",
    read_only: bool = False,
) -> Database:
    """Open a connection to a device store: autocommit, any thread, foreign keys, busy timeout.

    Every connection to a store goes through here: the agent's loop (`Store`), the link's
    drain thread, the credential snapshot worker and the read-only readers (`edge-agent
    store`, the rollback guard's look into a damaged file). `synchronous="NORMAL"` is for
    writes that may be lost in a power cut without harm (the link's deletes of sent events).
    """
    if synchronous not in ("FULL", "NORMAL"):
        raise StoreError(f"store {path}: synchronous={synchronous!r}; use FULL or NORMAL")
    if read_only:
        conn = sqlite3.connect(
            f"file:{path}?mode=ro", uri=True, isolation_level=None, check_same_thread=False
        )
    else:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        conn.execute("PRAGMA foreign_keys=ON")
    except sqlite3.Error:
        conn.close()
        raise
    return Database(conn)


@contextmanager
def write_transaction(db: Database) -> Iterator[Database]:
    """BEGIN IMMEDIATE … COMMIT (ROLLBACK on error) on any connection to a store."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        # Also when COMMIT itself fails (disk full): never leave the connection inside a
        # transaction, or every later BEGIN fails too.
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise
