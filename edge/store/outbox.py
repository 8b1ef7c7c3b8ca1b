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
    """One stored event, ready to publish: `text` is its JSON payload exactly as stored."""

    seq: int
    kind: str
    text: str

    @property
    def payload(self) -> dict[str, Any]:
        """The payload's fields."""
        fields: dict[str, Any] = json.loads(self.text)
        return fields


def append(
    db: Database, device: str, records: Iterable[EventRecord], clock_synced: bool
) -> list[OutboxEvent]:
    """Give each record the next seq and store it; call inside the state change's transaction.

    The next seq follows the newest row in the outbox; the counter row is written only when
    events are acknowledged (deleted), which saves a page write per transaction.
    """
    seq = last_seq(db)
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
        text = json.dumps(payload, ensure_ascii=False, sort_keys=True)
        db.execute(
            "INSERT INTO outbox (seq, kind, payload) VALUES (?, ?, ?)",
            [seq, str(record.kind), text],
        )
        stored.append(OutboxEvent(seq, str(record.kind), text))
    return stored


def pending(db: Database, limit: int = 100, after: int = 0) -> list[OutboxEvent]:
    """Return up to `limit` unacknowledged events after seq `after`, oldest first."""
    rows = db.execute(
        "SELECT seq, kind, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", [after, limit]
    ).fetchall()
    return [OutboxEvent(int(seq), str(kind), str(text)) for seq, kind, text in rows]


def acknowledge(db: Database, seqs: Iterable[int]) -> None:
    """Delete events the broker has acknowledged; call inside a transaction."""
    seqs = sorted(seqs)
    if not seqs:
        return
    # Remember the highest seq ever handed out before its row can disappear.
    db.execute(
        "INSERT INTO counters (name, value) VALUES ('seq', ?) "
        "ON CONFLICT(name) DO UPDATE SET value = max(value, excluded.value)",
        [last_seq(db)],
    )
    db.conn.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])


def backlog(db: Database) -> int:
    """Return how many events wait to be published."""
    return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def last_seq(db: Database) -> int:
    """Return the last seq handed out (0 before the first event)."""
    row = db.execute(
        "SELECT max(coalesce((SELECT max(seq) FROM outbox), 0), "
        "coalesce((SELECT value FROM counters WHERE name = 'seq'), 0))"
    ).fetchone()
    return int(row[0])
