"""Search the central log: person, card, door, zone, result, reason, time range; pages; CSV.

Every filter is a bound parameter on an indexed column (card_ref, door, ts) or a JSON field
of the stored event; pages go backwards from the newest row (keyset: `before` a row), so
page 500 costs what page 1 costs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from typing import Any

from console.log import CentralLog, Entry
from console.people import Directory
from console.safe_output import csv_row, terminal
from console.site_view import SLUG, SiteScope, home_site
from edge.core.clock import utc_text
from edge.errors import EdgeError

PAGE = 50
FIELDS = ("person", "card", "door", "zone", "result", "reason", "since", "until", "device", "site")
RESULTS = (
    "granted",
    "denied",
    "crossing",
    "button_exit",
    "alarm",
    "door",
    "presence",
    "system",
    "command",
)
ACCESS = frozenset({"granted", "denied", "crossing", "button_exit"})  # access events by type
MAX_TEXT = 100
MAX_ROW = 2**63 - 1  # SQLite's largest integer
FIRST_YEAR, LAST_YEAR = 1900, 9998  # any local time in these years has a UTC one


class QueryError(EdgeError, ValueError):
    """A search value cannot be used; the message names the field and what it accepts."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.field = name


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
    site: str = ""  # a site id (rows without one are the registry's site's)
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
            site=texts["site"],
            before=before,
            limit=limit,
        )


def parse_query(
    fields: Mapping[str, str], before: str | None, zone: tzinfo, limit: int = PAGE
) -> Query:
    """Build a query from what a person typed, or raise QueryError naming the field.

    Times without an offset are in `zone` (the site's on the web page, UTC on the command
    line); the log compares them in UTC.
    """
    texts: dict[str, str] = {}
    for name in FIELDS:
        text = str(fields.get(name) or "").strip()
        if len(text) > MAX_TEXT:
            raise QueryError(name, f"{len(text)} characters; use at most {MAX_TEXT}")
        texts[name] = text
    if texts["site"] and not SLUG.match(texts["site"]):
        raise QueryError("site", f"{_shown(texts['site'])}: use a site id (a-z, 0-9, '-')")
    if texts["result"] and texts["result"] not in RESULTS:
        raise QueryError("result", f"{_shown(texts['result'])}: use one of {', '.join(RESULTS)}")
    for name in ("since", "until"):
        texts[name] = _utc(name, texts[name], zone)
    return Query.of(texts, _row(before), limit=limit)


def _utc(name: str, text: str, zone: tzinfo) -> str:
    if not text:
        return ""
    accepted = "use a date and time like 2026-12-01 or 2026-12-01T08:30"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise QueryError(name, f"{_shown(text)} is not a date and time; {accepted}") from None
    if not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise QueryError(
            name, f"{_shown(text)} is out of range; use a year from {FIRST_YEAR} to {LAST_YEAR}"
        )
    return utc_text(moment if moment.tzinfo else moment.replace(tzinfo=zone))


def _row(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    text = text.strip()
    if not re.fullmatch(r"[0-9]{1,19}", text, re.ASCII) or not 0 < int(text) <= MAX_ROW:
        raise QueryError(
            "before",
            f"{_shown(text)} is not a row number; use the number from the 'older' link "
            f"(1 to {MAX_ROW})",
        )
    return int(text)


def _shown(text: str) -> str:
    """A value as an error message may show it: printable, short."""
    clean = terminal(text)
    return repr(clean if len(clean) <= 40 else clean[:40] + "…")


@dataclass
class Page:
    entries: list[Entry] = field(default_factory=list)
    next_before: int | None = None  # pass as `before` for the next (older) page
    sites: dict[int, str | None] = field(default_factory=dict)  # each entry's site by row


def _where(query: Query, people: Directory, home: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.person:
        windows = people.windows_for(query.person.strip())
        if not windows:
            return "1 = 0", []
        alternatives = []
        for ref, start, end in windows:
            bounds = [("ts >= ?", start), ("ts <= ?", end)]
            alternatives.append(
                " AND ".join(["card_ref = ?", *(c for c, v in bounds if v is not None)])
            )
            params += [ref, *(v for _, v in bounds if v is not None)]
        clauses.append(f"({' OR '.join(alternatives)})")
    if query.card:
        # A range, not LIKE (SQLite's ignores case and so cannot use the index). The upper
        # bound is the prefix with its last character's successor: every reference (hex)
        # starting with the prefix sorts before it in any collation; substr keeps it exact.
        prefix = query.card.strip().lower()
        clauses.append("card_ref >= ? AND substr(card_ref, 1, ?) = ?")
        params += [prefix, len(prefix), prefix]
        if ord(prefix[-1]) < 0x10FFFF:
            clauses.append("card_ref < ?")
            params.append(prefix[:-1] + chr(ord(prefix[-1]) + 1))
    if query.zone:
        clauses.append(
            "(json_extract(body, '$.zone') = ? OR json_extract(body, '$.to_zone') = ? "
            "OR json_extract(body, '$.from_zone') = ?)"
        )
        params += [query.zone] * 3
    if query.result in ACCESS:
        clauses.append("kind = 'access' AND type = ?")
        params.append(query.result)
    elif query.result:
        clauses.append("kind = ?")
        params.append(query.result)
    if query.site:
        clause, values = SiteScope(query.site, home).where()
        clauses.append(clause)
        params += values
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
    return " AND ".join(clauses) or "1 = 1", params


def search(log: CentralLog, query: Query, people: Directory, home: str | None = None) -> Page:
    """Return one page of matching events, newest first.

    Rows without a site are `home`'s (default: the registry's site).
    """
    owner = home_site(log, home or people.site) if query.site else None
    where, params = _where(query, people, owner)
    if query.before is not None:
        where += " AND row < ?"
        params.append(query.before)
    limit = max(1, min(query.limit, 1000))
    rows = list(
        log.db.execute(
            "SELECT row, id, device, seq, ts, kind, type, body, site FROM events "  # noqa: S608
            f"WHERE {where} ORDER BY row DESC LIMIT ?",
            [*params, limit + 1],
        )
    )
    entries = [Entry(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7])) for r in rows]
    more = len(entries) > limit
    entries = entries[:limit]
    sites = {r[0]: r[8] for r in rows[:limit]}
    return Page(entries, entries[-1].row if more and entries else None, sites)


def export_rows(
    log: CentralLog, query: Query, people: Directory, home: str | None = None
) -> Iterator[list[str]]:
    """Yield the CSV rows (header first) of everything matching, newest first.

    Every cell is safe to open in a spreadsheet (console.safe_output.csv_cell).
    """
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
        "site",
    ]
    before: int | None = None
    while True:
        page = search(log, replace(query, before=before, limit=1000), people, home)
        for e in page.entries:
            person = people.person(e.body.get("card_ref"), e.ts)
            yield csv_row(
                [
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
                    page.sites.get(e.row) or home or people.site or "",
                ]
            )
        if page.next_before is None:
            return
        before = page.next_before
