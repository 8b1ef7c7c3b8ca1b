"""Search the central log: person, card, door, zone, result, reason, time range; pages; CSV.

Every filter is a bound parameter on an indexed column (card_ref, door, ts) or a JSON field
of the stored event; pages go backwards from the newest row (keyset: `before` a row), so
page 500 costs what page 1 costs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from console.log import CentralLog, Entry
from console.people import Directory

PAGE = 50
FIELDS = ("person", "card", "door", "zone", "result", "reason", "since", "until", "device")


@dataclass(frozen=True)
class Query:
    """What to look for; empty fields match everything."""

    person: str = ""  # staff number or part of a name
    card: str = ""  # a card reference (or its first characters)
    door: str = ""
    zone: str = ""
    result: str = ""  # granted | denied | crossing | alarm | door | …
    reason: str = ""
    since: str = ""  # ISO UTC, e.g. 2026-11-26T00:00:00Z
    until: str = ""
    device: str = ""
    before: int | None = None  # the row to page back from
    limit: int = PAGE

    @classmethod
    def of(cls, fields: Mapping[str, str], before: int | None = None, limit: int = PAGE) -> Query:
        """Build a query from text fields (a form, command-line options); others ignored."""
        texts = {f: str(fields.get(f) or "").strip()[:100] for f in FIELDS}
        return cls(
            person=texts["person"],
            card=texts["card"],
            door=texts["door"],
            zone=texts["zone"],
            result=texts["result"],
            reason=texts["reason"],
            since=texts["since"],
            until=texts["until"],
            device=texts["device"],
            before=before,
            limit=limit,
        )


@dataclass
class Page:
    entries: list[Entry] = field(default_factory=list)
    next_before: int | None = None  # pass as `before` for the next (older) page


def _where(query: Query, people: Directory) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.person:
        refs = people.refs_for(query.person.strip())
        if not refs:
            return "0", []
        clauses.append(f"card_ref IN ({','.join('?' * len(refs))})")
        params += refs
    if query.card:
        # A range, not LIKE (which ignores case and so cannot use the index).
        prefix = query.card.strip().lower()
        clauses.append("card_ref >= ? AND card_ref < ?")
        params += [prefix, prefix + "\uffff"]
    if query.zone:
        clauses.append(
            "(json_extract(body, '$.zone') = ? OR json_extract(body, '$.to_zone') = ? "
            "OR json_extract(body, '$.from_zone') = ?)"
        )
        params += [query.zone] * 3
    if query.result in ("granted", "denied", "crossing"):
        clauses.append("kind = 'access' AND type = ?")
        params.append(query.result)
    elif query.result:
        clauses.append("kind = ?")
        params.append(query.result)
    for value, clause in (
        (query.door, "door = ?"),
        (query.device, "device = ?"),
        (query.reason, "reason = ?"),
        (query.since, "ts >= ?"),
        (query.until, "ts <= ?"),
    ):
        if value:
            clauses.append(clause)
            params.append(value)
    return " AND ".join(clauses) or "1", params


def search(log: CentralLog, query: Query, people: Directory) -> Page:
    """Return one page of matching events, newest first."""
    where, params = _where(query, people)
    if query.before is not None:
        where += " AND row < ?"
        params.append(query.before)
    limit = max(1, min(query.limit, 1000))
    rows = list(
        log.db.execute(
            "SELECT row, id, device, seq, ts, kind, type, body FROM events "  # noqa: S608
            f"WHERE {where} ORDER BY row DESC LIMIT ?",
            [*params, limit + 1],
        )
    )
    entries = [Entry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7])) for r in rows]
    more = len(entries) > limit
    entries = entries[:limit]
    return Page(entries, entries[-1].row if more and entries else None)


def export_rows(log: CentralLog, query: Query, people: Directory) -> Iterator[list[str]]:
    """Yield the CSV rows (header first) of everything matching, newest first."""
    yield [
        "ts",
        "device",
        "id",
        "kind",
        "type",
        "door",
        "reason",
        "staff_no",
        "name",
        "department",
        "card_ref",
    ]
    before: int | None = None
    while True:
        page = search(log, replace(query, before=before, limit=1000), people)
        for e in page.entries:
            person = people.person(e.body.get("card_ref"))
            yield [
                e.ts,
                e.device,
                e.id,
                e.kind,
                e.type,
                str(e.body.get("door", "")),
                str(e.body.get("reason", "")),
                person.staff_no if person else "",
                person.name if person else "",
                person.department if person else "",
                str(e.body.get("card_ref", ""))[:16],
            ]
        if page.next_before is None:
            return
        before = page.next_before
