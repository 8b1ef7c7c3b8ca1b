"""The rooms service's journal: every decision with its evidence and its calendar outcome.

One SQLite file (WAL) through sqlite-utils, schema by named migrations. The engine's memory is
restored from it at start, so a restart never releases a booking twice nor forgets a
check-in. Rows hold times, room ids, booking uids, reasons and evidence: never an organiser,
attendee or title.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, cast

from sqlite_utils import Database, Migrations

from edge.store.connection import connect, write_transaction
from rooms.checkin import Decision, Key, Kind, Memory

migrations = Migrations("edge-rooms")
OK: Final = "ok"
NO_CALL: Final = "no calendar call"
MAX_OUTCOME: Final = 300
RESTARTED: Final = "not released: the service restarted before the release reached the calendar"


@migrations(name="0001_decisions")
def decisions_table(db: Database) -> None:
    """Create the decisions and the service's small state (the last view)."""
    db.table("decisions").create(
        {
            "id": int,
            "kind": str,
            "calendar": str,
            "uid": str,
            "start": str,
            "end": str,
            "room": str,
            "at": str,
            "reason": str,
            "evidence": str,
            "outcome": str,
        },
        pk="id",
        not_null={"kind", "calendar", "uid", "start", "end", "room", "at", "outcome"},
    )
    db.table("decisions").create_index(["calendar", "uid", "start"])
    db.table("decisions").create_index(["kind", "at"])
    db.table("state").create({"key": str, "value": str}, pk="key", not_null={"value"})


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal row, as `edge-rooms releases` lists it."""

    kind: str
    room: str
    start: datetime
    end: datetime
    at: datetime
    reason: str
    evidence: dict[str, str]
    outcome: str
    uid: str


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Journal:
    """The decisions file; one writer (the service), readers through `edge-rooms`."""

    def __init__(self, path: Path, *, read_only: bool = False) -> None:
        self.path = path
        self._db = connect(path, read_only=read_only, synchronous="FULL")
        if not read_only:
            self._db.execute("PRAGMA journal_mode=WAL")
            migrations.apply(self._db)
        self._closed = False

    def __repr__(self) -> str:
        return f"<Journal {self.path}>"

    def record(self, decision: Decision, outcome: str, uid: str | None = None) -> None:
        """Append a decision and how its calendar call went (`ok`, or the error's text)."""
        row = {
            "kind": decision.kind,
            "calendar": decision.calendar,
            "uid": decision.uid if uid is None else uid,
            "start": _utc(decision.start),
            "end": _utc(decision.end),
            "room": decision.room,
            "at": _utc(decision.at),
            "reason": decision.reason,
            "evidence": json.dumps(dict(decision.evidence), sort_keys=True),
            "outcome": outcome[:MAX_OUTCOME],
        }
        with write_transaction(self._db) as db:
            db.table("decisions").insert(row)

    def memory(self) -> Memory:
        """Return the engine's memory: every booking's latest decision, and unsent check-ins.

        A release the calendar never took becomes a hold: the room is not judged again.
        """
        memory = Memory()
        sent: set[tuple[Key, str]] = set()
        rows = list(self._db.query("SELECT * FROM decisions ORDER BY id"))
        for row in rows:
            key: Key = (row["calendar"], row["uid"], _time(row["start"]))
            if row["outcome"] == OK:
                sent.add((key, row["kind"]))
        for row in rows:
            if row["kind"] == "ad_hoc" or not row["uid"]:
                continue
            entry = self._decision(row)
            memory.kinds[entry.key] = entry.kind
            memory.reasons[entry.key] = entry.reason
            unsent = (entry.key, entry.kind) not in sent
            if entry.kind == "released" and unsent:
                # The room was judged before the restart; nothing since says it is still free.
                memory.kinds[entry.key] = "held"
                memory.reasons[entry.key] = RESTARTED
                memory.pending.pop(entry.key, None)
            elif entry.kind == "checked_in" and unsent:
                memory.pending[entry.key] = entry  # harmless to repeat: people were seen
            else:
                memory.pending.pop(entry.key, None)
        return memory

    def entries(self, kind: str | None = None, since: datetime | None = None) -> list[Entry]:
        """Return decisions (of one kind, since a time), oldest first."""
        where, args = ["1 = 1"], []
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if since is not None:
            where.append("at >= ?")
            args.append(_utc(since))
        sql = f"SELECT * FROM decisions WHERE {' AND '.join(where)} ORDER BY at, id"  # noqa: S608 (fixed clauses)
        return [
            Entry(
                kind=row["kind"],
                room=row["room"],
                start=_time(row["start"]),
                end=_time(row["end"]),
                at=_time(row["at"]),
                reason=row["reason"] or "",
                evidence=cast(dict[str, str], json.loads(row["evidence"] or "{}")),
                outcome=row["outcome"],
                uid=row["uid"],
            )
            for row in self._db.query(sql, args)
        ]

    def save_view(self, view_json: str) -> None:
        """Keep the latest building view (for `edge-rooms status`)."""
        with write_transaction(self._db) as db:
            db.table("state").upsert({"key": "view", "value": view_json}, pk="key")

    def last_view(self) -> str | None:
        """Return the latest building view saved, if any."""
        rows = list(self._db.query("SELECT value FROM state WHERE key = 'view'"))
        return str(rows[0]["value"]) if rows else None

    def save_ha_topics(self, config_topics: list[str]) -> None:
        """Keep the Home Assistant config topics sent (to empty removed ones after a restart)."""
        value = json.dumps(sorted(config_topics))
        with write_transaction(self._db) as db:
            db.table("state").upsert({"key": "ha_topics", "value": value}, pk="key")

    def ha_topics(self) -> list[str]:
        """Return the Home Assistant config topics last sent."""
        rows = list(self._db.query("SELECT value FROM state WHERE key = 'ha_topics'"))
        if not rows:
            return []
        found = json.loads(rows[0]["value"])
        return [t for t in found if isinstance(t, str)] if isinstance(found, list) else []

    def close(self) -> None:
        """Close the file; idempotent."""
        if not self._closed:
            self._closed = True
            self._db.close()

    @staticmethod
    def _decision(row: dict[str, Any]) -> Decision:
        return Decision(
            kind=cast(Kind, row["kind"]),
            calendar=row["calendar"],
            uid=row["uid"],
            start=_time(row["start"]),
            end=_time(row["end"]),
            room=row["room"],
            at=_time(row["at"]),
            reason=row["reason"] or "",
            evidence=cast(dict[str, str], json.loads(row["evidence"] or "{}")),
        )
