"""The event outbox: every record gets the next gap-free `seq` and waits here until acked."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlite_utils import Database

from edge.core.outputs import EventRecord

SCHEMA_VERSION = 1


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One stored event, ready to publish."""

    seq: int
    kind: str
    payload: dict[str, Any]


def append(
    db: Database, device: str, records: Iterable[EventRecord], clock_synced: bool
) -> list[OutboxEvent]:
    """Give each record the next seq and store it; call inside the state change's transaction."""
    row = db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
    seq = row[0] if row else 0
    stored = []
    for record in records:
        seq += 1
        payload = {
            "v": SCHEMA_VERSION,
            "id": f"{device}:{seq}",
            "seq": seq,
            "device": device,
            "clock_synced": clock_synced,
            **record.payload(),
        }
        db.execute(
            "INSERT INTO outbox (seq, kind, payload) VALUES (?, ?, ?)",
            [seq, str(record.kind), json.dumps(payload, ensure_ascii=False, sort_keys=True)],
        )
        stored.append(OutboxEvent(seq, str(record.kind), payload))
    if stored:
        db.execute(
            "INSERT INTO counters (name, value) VALUES ('seq', ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            [seq],
        )
    return stored


def pending(db: Database, limit: int = 100, after: int = 0) -> list[OutboxEvent]:
    """Return up to `limit` unacknowledged events after seq `after`, oldest first."""
    rows = db.execute(
        "SELECT seq, kind, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", [after, limit]
    ).fetchall()
    return [OutboxEvent(seq, kind, json.loads(payload)) for seq, kind, payload in rows]


def acknowledge(db: Database, seq: int) -> None:
    """Delete an event the broker has acknowledged."""
    db.execute("DELETE FROM outbox WHERE seq = ?", [seq])


def backlog(db: Database) -> int:
    """Return how many events wait to be published."""
    return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def last_seq(db: Database) -> int:
    """Return the last seq handed out (0 before the first event)."""
    row = db.execute("SELECT value FROM counters WHERE name = 'seq'").fetchone()
    return int(row[0]) if row else 0
