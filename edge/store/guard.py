"""Rollback protection that outlives the store: the credential floor and the command mark.

Three numbers refuse what is old: the newest credential version ever applied (an older
signed snapshot is refused), the replay high-water mark of commands, and the latest expiry
of an accepted command. They live in the store (`rollback_guard`, one row) and in a small
JSON file beside it (`{store}.guard`), written atomically and only when a number changes,
so a store moved aside as corrupt, or deleted, does not reset them. At open the store, the
file and (after a move-aside) whatever the damaged file still yields are merged: each
number is the largest any of them holds.

A fresh store has no nonces: it refuses every command that expires no later than the last
one accepted, by raising the mark past that expiry.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlite_utils import Database

from edge.store.connection import connect

log = logging.getLogger(__name__)

# The rules the mark enforces (edge.commands checks commands by them).
MAX_LIFETIME = timedelta(seconds=60)
CLOCK_SKEW = timedelta(seconds=5)
SKEW_MS = CLOCK_SKEW // timedelta(milliseconds=1)
LIFETIME_MS = MAX_LIFETIME // timedelta(milliseconds=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
SUFFIX = ".guard"


def ms(moment: datetime) -> int:
    """Return an aware time as whole milliseconds since 1970 (an instant, whatever its offset)."""
    return (moment - EPOCH) // timedelta(milliseconds=1)


def from_ms(value: int) -> datetime:
    """Return milliseconds since 1970 as an aware UTC time."""
    return EPOCH + timedelta(milliseconds=value)


@dataclass(frozen=True)
class Guard:
    """The three numbers; 0 means nothing seen yet."""

    credentials_version: int = 0
    command_mark_ms: int = 0
    command_expiry_ms: int = 0

    def __or__(self, other: Guard) -> Guard:
        return Guard(*(max(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)))


def stored(db: Database) -> Guard:
    """Return the guard as the store holds it."""
    row = db.execute(
        "SELECT credentials_version, command_mark_ms, command_expiry_ms "
        "FROM rollback_guard WHERE id = 1"
    ).fetchone()
    return Guard(*(int(v or 0) for v in row)) if row else Guard()


def write_row(db: Database, guard: Guard) -> None:
    """Store `guard` as the store's row; call inside a write transaction."""
    db.execute(
        "INSERT INTO rollback_guard (id, credentials_version, command_mark_ms, command_expiry_ms) "
        "VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
        "credentials_version = excluded.credentials_version, "
        "command_mark_ms = excluded.command_mark_ms, "
        "command_expiry_ms = excluded.command_expiry_ms",
        [guard.credentials_version, guard.command_mark_ms, guard.command_expiry_ms],
    )


def file_of(db: Database) -> Path | None:
    """Return the guard file beside the store `db` is connected to (None in memory)."""
    for _, name, path in db.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return Path(f"{path}{SUFFIX}") if path else None
    return None


def read_file(path: Path) -> Guard:
    """Read a guard file; a missing or damaged one counts as zeros (and says so in the log)."""
    try:
        body = json.loads(path.read_bytes())
        return Guard(*(int(body.get(f.name, 0)) for f in fields(Guard)))
    except FileNotFoundError:
        return Guard()
    except (OSError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        log.error("rollback guard %s is unreadable (%s); the store's copy is used", path, exc)
        return Guard()


def write_file(path: Path, guard: Guard) -> None:
    """Replace the guard file atomically (temporary file, fsync, rename, fsync the folder)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(json.dumps(asdict(guard), sort_keys=True).encode())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def save_file(db: Database, guard: Guard, *, merge: bool = True) -> None:
    path = file_of(db)
    if path is None:
        return
    try:
        on_disk = read_file(path)
        wanted = guard | on_disk if merge else guard
        if wanted != on_disk:
            write_file(path, wanted)
    except OSError as exc:
        # The store still holds the numbers; only a later move-aside would lose them.
        log.error("rollback guard %s could not be written (%s)", path, exc)


def raise_to(db: Database, guard: Guard) -> Guard:
    """Raise the stored numbers to at least `guard`'s; call inside the write transaction.

    Writes the store row and the file only when a number grows.
    """
    current = stored(db)
    new = current | guard
    if new != current:
        write_row(db, new)
        save_file(db, new)
    return new


def lower_mark(db: Database, mark_ms: int) -> Guard:
    """Set the command mark down to `mark_ms` in the store and the file (recovery)."""
    new = replace(stored(db), command_mark_ms=mark_ms)
    write_row(db, new)
    path = file_of(db)
    if path is not None:
        save_file(db, replace(new | read_file(path), command_mark_ms=mark_ms), merge=False)
    return new


def read_damaged(path: Path) -> Guard:
    """Return what a store moved aside as damaged still yields; zeros where it cannot be read.

    Reads both layouts: this one, and the one before the guard (`clock_hwm` as text).
    """
    values = [0, 0, 0]
    queries = [
        (0, "SELECT max(credentials_version) FROM rollback_guard"),
        (0, "SELECT max(version) FROM policy"),
        (1, "SELECT max(command_mark_ms) FROM rollback_guard"),
        (1, "SELECT value FROM device_state WHERE key = 'clock_hwm'"),
        (2, "SELECT max(command_expiry_ms) FROM rollback_guard"),
        (2, "SELECT max(expires_ms) FROM nonces"),
        (2, "SELECT expires_at FROM nonces"),
    ]
    try:
        db = connect(path, read_only=True)
    except sqlite3.Error:
        return Guard()
    try:
        for index, sql in queries:
            with contextlib.suppress(sqlite3.Error):
                for (value,) in db.execute(sql).fetchall():
                    values[index] = max(values[index], _number(value))
    finally:
        db.close()
    return Guard(*values)


def _number(value: object) -> int:
    """Return a stored number or ISO time as an integer (ms for times); 0 if it is neither."""
    if isinstance(value, int):
        return value
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return 0
    return ms(moment) if moment.tzinfo is not None else 0


def gather(db: Database, *, fresh: bool, damaged: Path | None = None) -> Guard:
    """Merge the store's row, the guard file and a damaged store (at open).

    `fresh`: the store was just created (its nonces are gone), so the mark is raised past
    the last accepted command's expiry.
    """
    path = file_of(db)
    merged = stored(db) | (read_file(path) if path else Guard())
    if damaged is not None:
        merged = merged | read_damaged(damaged)
    if fresh and merged.command_expiry_ms:
        floor = merged.command_expiry_ms + SKEW_MS + 1
        merged = replace(merged, command_mark_ms=max(merged.command_mark_ms, floor))
    return merged


def behind(db: Database, *, fresh: bool, damaged: Path | None = None) -> bool:
    """Return True if the store's row or the guard file holds less than `gather` finds."""
    merged = gather(db, fresh=fresh, damaged=damaged)
    path = file_of(db)
    return merged != stored(db) or (path is not None and read_file(path) != merged)


def restore(db: Database, *, fresh: bool, damaged: Path | None = None) -> Guard:
    """Write what `gather` finds into the row and the file; call inside a write transaction."""
    merged = gather(db, fresh=fresh, damaged=damaged)
    if merged != stored(db):
        write_row(db, merged)
    save_file(db, merged)
    return merged
