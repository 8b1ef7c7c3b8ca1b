"""The central log: every device's events, once each, hash-chained so tampering shows.

Each stored event gets the next `row` and a hash over the previous row's hash and every
column it is stored with (console/chain.py), so editing any column, deleting, inserting or
reordering a row breaks the chain at that row (`verify`); the audit trail and the alarm
acknowledgements are chained the same way, each its own chain. Events are de-duplicated by
their `id` ({device}:{seq}); per device the log knows the highest seq below which nothing
is missing (`contiguous`) and the highest seen, so a gap in seq is reported until it is
filled. Card references stay references here; names come from the provisioning registry
when a person asks. The tables and indexes are made by console.log_schema's migrations.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from console.chain import (
    BY_NAME,
    CHAINS,
    EVENTS,
    GENESIS,
    canonical,
    chain_hash,
    insert,
    newest,
    set_head,
    stored_head,
    walk,
)
from console.log_schema import BASELINES, MOVES, migrations
from edge.errors import EdgeError
from provisioning.files import private_database

__all__ = [
    "BASELINES",
    "GENESIS",
    "MOVES",
    "CentralLog",
    "Entry",
    "LogError",
    "canonical",
    "chain_hash",
    "identity",
    "migrations",
]


class LogError(EdgeError, ValueError):
    """The log cannot be opened or an entry is unusable; the message says which."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One event as stored."""

    row: int
    id: str
    device: str
    seq: int
    ts: str
    kind: str
    type: str
    body: dict[str, Any]


class CentralLog:
    """The console's SQLite log (WAL); one writer (the collector), any number of readers."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        private_database(path)  # 0600 from the first byte: names of people's movements
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.db.execute("PRAGMA journal_mode=WAL")
        migrations.apply(self.db)

    @property
    def db(self) -> Database:
        """This thread's connection: the collector writes on one, readers read on theirs."""
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

    def __repr__(self) -> str:
        return f"<CentralLog {self.path}>"

    def close(self) -> None:
        """Close every thread's connection; idempotent."""
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self.transaction() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Write in one transaction on this thread's connection; inside one, join it."""
        conn = self.db.conn
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

    def append(
        self,
        events: Iterable[dict[str, Any]],
        received_at: str,
        implausible: Mapping[str, str] | None = None,
    ) -> list[str]:
        """Store new events in one transaction; return the ids stored (duplicates skipped).

        `implausible` maps the id of an event whose own `ts` cannot be believed to the time
        it is ordered by instead: stored as `ts` and flagged (`ts_implausible`); the body
        stays as the device sent it.

        The chain's head is re-read inside the write transaction, so two collectors writing
        the same file never fork it.
        """
        stored: list[str] = []
        events = list(events)
        for event in events:  # all or nothing: check every event before writing any
            identity(event)
        with self._transaction() as conn:
            row, head = stored_head(conn, EVENTS)
            touched: set[str] = set()
            for event in events:
                event_id, device, seq = identity(event)
                exists = conn.execute("SELECT 1 FROM events WHERE id = ?", [event_id]).fetchone()
                if exists:
                    conn.execute(
                        "UPDATE devices SET duplicates = duplicates + 1 WHERE device = ?",
                        [device],
                    )
                    continue
                nested = event.get("data")
                data: dict[str, Any] = nested if isinstance(nested, dict) else event
                values = {
                    "id": event_id,
                    "device": device,
                    "seq": seq,
                    "ts": (implausible or {}).get(event_id, str(event.get("ts", ""))),
                    "kind": str(event.get("kind", "")),
                    "type": str(event.get("type", "")),
                    "door": _text(data.get("door")),
                    "card_ref": _text(data.get("card_ref")),
                    "reason": _text(data.get("reason")),
                    "body": canonical(event),
                    "received_at": received_at,
                    "ts_implausible": int(event_id in (implausible or {})),
                }
                row, head = insert(conn, EVENTS, values, head)
                conn.execute(
                    "INSERT INTO devices (device, contiguous, max_seq) VALUES (?, 0, ?) "
                    "ON CONFLICT(device) DO UPDATE SET max_seq = max(max_seq, excluded.max_seq)",
                    [device, seq],
                )
                touched.add(device)
                stored.append(event_id)
            for device in touched:
                _advance_contiguous(conn, device)
            if stored:
                set_head(conn, EVENTS, row, head)
        return stored

    def set_status(self, device: str, body: str, received_at: str) -> None:
        """Keep a device's latest retained status."""
        self.db.execute(
            "INSERT INTO devices (device, contiguous, max_seq, status, status_at) "
            "VALUES (?, 0, 0, ?, ?) ON CONFLICT(device) DO UPDATE SET status = excluded.status, "
            "status_at = excluded.status_at",
            [device, body, received_at],
        )

    def set_occupancy(self, device: str, zone: str, count: int, occupied: bool, ts: str) -> None:
        """Keep a zone's latest occupancy as a device reports it."""
        self.db.execute(
            "INSERT OR REPLACE INTO occupancy (device, zone, count, occupied, ts) "
            "VALUES (?, ?, ?, ?, ?)",
            [device, zone, count, int(occupied), ts],
        )

    def set_rooms(self, what: str, body: str, received_at: str) -> None:
        """Keep the rooms service's newest `view` or `status`."""
        self.db.execute(
            "INSERT OR REPLACE INTO rooms (what, body, received_at) VALUES (?, ?, ?)",
            [what, body, received_at],
        )

    # -- reading --------------------------------------------------------------------------

    def gaps(self, limit: int = 1000) -> dict[str, list[int]]:
        """Return {device: missing seqs (the first `limit`)} for every device with a hole.

        The holes are found between the seqs present, never by listing the whole range: a
        device whose store was replaced continues from a far larger seq.
        """
        missing: dict[str, list[int]] = {}
        for device, contiguous in self.db.execute(
            "SELECT device, contiguous FROM devices WHERE contiguous < max_seq"
        ).fetchall():
            holes: list[int] = []
            expected = contiguous + 1
            for (seq,) in self.db.execute(
                "SELECT seq FROM events WHERE device = ? AND seq > ? ORDER BY seq",
                [device, contiguous],
            ):
                while expected < seq and len(holes) < limit:
                    holes.append(expected)
                    expected += 1
                if len(holes) >= limit:
                    break
                expected = seq + 1
            missing[device] = holes
        return missing

    def devices(self) -> dict[str, dict[str, Any]]:
        """Return each device's seq bookkeeping and latest status."""
        return {
            row["device"]: row
            for row in self.db.query(
                "SELECT device, contiguous, max_seq, duplicates, status, status_at FROM devices"
            )
        }

    def count(self) -> int:
        """Return the number of stored events."""
        return int(self.db.execute("SELECT count(*) FROM events").fetchone()[0])

    def entries(self, where: str = "", params: Iterable[Any] = ()) -> Iterator[Entry]:
        """Yield stored events in log order, optionally filtered by an SQL condition."""
        clause = f"WHERE {where}" if where else ""
        query = (
            "SELECT row, id, device, seq, ts, kind, type, body FROM events "  # noqa: S608
            f"{clause} ORDER BY row"
        )
        for row, id_, device, seq, ts, kind, type_, body in self.db.execute(query, list(params)):
            yield Entry(row, id_, device, seq, ts, kind, type_, json.loads(body))

    def occupancy(self) -> dict[str, dict[str, Any]]:
        """Return the latest occupancy per zone (the newest report among devices).

        Each device counts only what it saw: console.headcount adds up the zones with doors.
        """
        zones: dict[str, dict[str, Any]] = {}
        for row in self.db.query("SELECT * FROM occupancy ORDER BY ts"):
            zones[row["zone"]] = row
        return zones

    def rooms(self) -> dict[str, tuple[str, str]]:
        """Return the rooms service's kept {what: (body, received_at)}."""
        rows = self.db.execute("SELECT what, body, received_at FROM rooms").fetchall()
        return {what: (body, at) for what, body, at in rows}

    def head(self, chain: str = "events") -> tuple[int, str]:
        """Return (row, hash) of a chain's newest row: kept elsewhere, it anchors the chain."""
        return newest(self.db.conn, BY_NAME[chain])

    def heads(self) -> dict[str, tuple[int, str]]:
        """Return every chain's (row, hash) by name: what an anchor line keeps."""
        return {chain.name: newest(self.db.conn, chain) for chain in CHAINS}

    def anchored(self, row: int, expected: str, chain: str = "events") -> str | None:
        """Check a head written down earlier; return the problem, or None if it still holds.

        The chain alone cannot tell a log rewritten from start to end, hashes and all, from
        the real one; a head kept outside the database (printed, mailed, signed into an
        anchor file) can.
        """
        spec = BY_NAME[chain]
        if row == 0:
            return None if expected == GENESIS else f"{chain}: an anchor at row 0 is {GENESIS}"
        found = self.db.execute(
            f"SELECT hash FROM {spec.table} WHERE {spec.row} = ?",  # noqa: S608  # CHAINS
            [row],
        ).fetchone()
        what = f"{spec.label} {row}"
        if found is None:
            return f"{what} of the anchor is gone: rows were deleted"
        if found[0] != expected:
            return f"{what} no longer ends in {expected[:16]}…: the log was rewritten"
        return None

    def verify(self) -> list[str]:
        """Re-walk every chain; return a line per problem (empty: the log is intact)."""
        return self.check().problems

    def check(self) -> Verification:
        """Re-walk every chain in one snapshot: problems, and notes on what is not covered."""
        conn = self.db.conn
        problems: list[str] = []
        notes: list[str] = []
        conn.execute("BEGIN")  # one snapshot: a collector appending meanwhile is not seen
        try:
            for chain in CHAINS:
                try:
                    found = walk(conn, chain)
                except sqlite3.DatabaseError as error:  # a column dropped, a table gone
                    problems.append(f"{chain.name}: cannot be read ({error}): altered")
                    continue
                problems += found.problems
                if found.body_only:
                    first, last = found.body_only
                    notes.append(
                        f"rows {first}..{last} are chained by their body only (written before "
                        "every column was chained): an edit of their other columns would not show"
                    )
            try:
                problems += _newest_deleted(conn)
            except sqlite3.DatabaseError as error:
                problems.append(f"devices: cannot be read ({error}): altered")
        finally:
            conn.execute("COMMIT")
        return Verification(problems, notes)


@dataclass(frozen=True, slots=True)
class Verification:
    """What `CentralLog.check` found: `problems` (tampering) and `notes` (what is not covered)."""

    problems: list[str]
    notes: list[str]


def _newest_deleted(conn: sqlite3.Connection) -> list[str]:
    """Name devices whose newest events are gone: their highest seqs are kept apart."""
    problems = []
    for device, max_seq, stored in conn.execute(
        "SELECT d.device, d.max_seq, (SELECT max(seq) FROM events e WHERE e.device = d.device)"
        " FROM devices d WHERE d.max_seq > 0"
    ).fetchall():
        if stored is None or stored < max_seq:
            problems.append(
                f"{device}: newest events deleted (seq {max_seq} was stored, the log "
                f"ends at {stored})"
            )
    return problems


def _advance_contiguous(conn: sqlite3.Connection, device: str) -> None:
    (contiguous,) = conn.execute(
        "SELECT contiguous FROM devices WHERE device = ?", [device]
    ).fetchone()
    while conn.execute(
        "SELECT 1 FROM events WHERE device = ? AND seq = ?", [device, contiguous + 1]
    ).fetchone():
        contiguous += 1
    conn.execute("UPDATE devices SET contiguous = ? WHERE device = ?", [contiguous, device])


def identity(event: dict[str, Any]) -> tuple[str, str, int]:
    """Return (id, device, seq) of an event, or raise LogError naming what is wrong."""
    event_id, seq = event.get("id"), event.get("seq")
    if (
        not isinstance(event_id, str)
        or ":" not in event_id
        or not isinstance(seq, int)
        or isinstance(seq, bool)
        or not 0 < seq < 2**53
    ):
        raise LogError(f"event without a valid id/seq: id={event_id!r} seq={seq!r}")
    device = event_id.rsplit(":", 1)[0]
    if event_id != f"{device}:{seq}":
        raise LogError(f"event id {event_id!r} does not match its seq {seq}")
    return event_id, device, seq


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
