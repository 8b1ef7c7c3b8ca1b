"""Names for card references, from the provisioning registry (read only).

The central log keeps references; a person is looked up only when someone asks (a search,
the roll call, an export). This directory opens the registry read-only; the desk changes it
only through provisioning's own functions (console.desk).

A day pass lends a spare card to different people on different days, so a spare card's
reference names the holder of the pass that covered the moment asked about.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge.errors import EdgeError


class RegistryMissing(EdgeError, FileNotFoundError):
    """The provisioning registry is not where the console was told."""


@dataclass(frozen=True, slots=True)
class Person:
    staff_no: str
    name: str
    department: str
    floor: str  # from a floor-N group; "-" if none
    day_pass: str = ""  # the spare card's printed number when this is a day pass


class Directory:
    """Card reference -> person, and name/staff number -> card references."""

    def __init__(self, registry: Path | None) -> None:
        self.path = registry
        self.timezone = "Asia/Tokyo"  # the site's, from the registry when there is one
        self.site: str | None = None  # the registry's site id: the log's rows without a site
        self._by_ref: dict[str, Person] = {}
        self._refs: dict[str, list[str]] = {}
        self._passes: dict[str, list[tuple[datetime, datetime | None, Person]]] = {}
        self._read: tuple[float, float] | None = None  # the registry's and its WAL's mtimes
        if registry is not None:
            self.reload()

    def __repr__(self) -> str:
        return f"<Directory {self.path} people={len(self._refs)}>"

    def reload(self) -> None:
        """Read the registry again (after an import or a revocation)."""
        if self.path is None:
            return
        if not self.path.exists():
            raise RegistryMissing(
                f"no provisioning registry at {self.path}; pass --registry SITE/registry.db"
            )
        stamp = self._stamp()
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
        try:
            people = {
                staff_no: Person(staff_no, name, department, _floor(groups))
                for staff_no, name, department, groups in conn.execute(
                    "SELECT staff_no, name, department, groups FROM people"
                )
            }
            by_ref: dict[str, Person] = {}
            refs: dict[str, list[str]] = {}
            site = conn.execute("SELECT timezone, slug FROM site LIMIT 1").fetchone()
            if site and site[0]:
                self.timezone = str(site[0])
            if site and site[1]:
                self.site = str(site[1])
            for ref, staff_no in conn.execute("SELECT card_ref, staff_no FROM cards"):
                if staff_no in people:
                    by_ref[ref] = people[staff_no]
                    refs.setdefault(staff_no, []).append(ref)
            passes = _passes(conn, people)
        finally:
            conn.close()
        self._by_ref, self._refs, self._passes = by_ref, refs, passes
        self._read = stamp

    def refresh(self) -> None:
        """Read the registry again if it changed since it was read (a page polling: cheap)."""
        if self.path is None:
            return
        stamp = self._stamp()
        if stamp is not None and stamp != self._read:  # a registry gone keeps what was read
            self.reload()

    def _stamp(self) -> tuple[float, float] | None:
        assert self.path is not None
        try:
            wal = self.path.with_name(self.path.name + "-wal")
            return self.path.stat().st_mtime, wal.stat().st_mtime if wal.exists() else 0.0
        except OSError:
            return None

    def person(self, card_ref: str | None, at: str | None = None) -> Person | None:
        """Return whose card this is, or None.

        A spare card is its day-pass holder's at `at` (a log time), or its latest holder's.
        """
        found = self._by_ref.get(card_ref or "")
        lent = self._passes.get(card_ref or "")
        if found is not None or not lent:
            return found
        moment = _instant(at)
        if moment is None:
            return lent[-1][2]
        for start, end, holder in reversed(lent):
            if start <= moment and (end is None or moment <= end):
                return holder
        return None

    def windows_for(self, who: str) -> list[tuple[str, str | None, str | None]]:
        """Return (card reference, from, to) for a staff number or name; times as the log's.

        A person's own cards have no bounds; a spare card only the times of their passes.
        """
        refs: list[tuple[str, str | None, str | None]] = [
            (ref, None, None) for ref in self.refs_for(who)
        ]
        folded = _fold(who)
        for ref, lent in self._passes.items():
            for start, end, holder in lent:
                if who == holder.staff_no or (folded and folded in _fold(holder.name)):
                    refs.append((ref, _ts(start), None if end is None else _ts(end)))
        return refs

    def refs_for(self, who: str) -> list[str]:
        """Return the card references of a staff number, or of everyone whose name has `who`."""
        if who in self._refs:
            return list(self._refs[who])
        folded = _fold(who)
        return [ref for ref, p in self._by_ref.items() if folded and folded in _fold(p.name)]

    def refs_starting(self, prefix: str) -> list[str]:
        """Return the card references (people's cards and spare cards) starting with `prefix`."""
        known = set(self._by_ref) | set(self._passes)
        return sorted(ref for ref in known if ref.startswith(prefix))


def _passes(
    conn: sqlite3.Connection, people: dict[str, Person]
) -> dict[str, list[tuple[datetime, datetime | None, Person]]]:
    """Return each spare card's passes, oldest first, as (from, to, holder).

    A pass covers its card from its issue until its return; one never returned covers it
    until the card is lent again (the card stayed with its holder after the pass ended).
    """
    if not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'passes'").fetchone():
        return {}  # a registry from before day passes
    lent: dict[str, list[tuple[datetime, datetime | None, Person]]] = {}
    for ref, number, staff_no, issued_at, returned_at in conn.execute(
        "SELECT card_ref, number, staff_no, issued_at, returned_at FROM passes "
        "ORDER BY issued_at, id"
    ):
        issued, holder = _instant(issued_at), people.get(staff_no)
        if issued is None or holder is None:
            continue
        entries = lent.setdefault(ref, [])
        if entries and (entries[-1][1] is None or entries[-1][1] > issued):
            entries[-1] = (entries[-1][0], issued, entries[-1][2])
        as_pass = Person(holder.staff_no, holder.name, holder.department, holder.floor, number)
        entries.append((issued, _instant(returned_at), as_pass))
    return lent


def _ts(moment: datetime) -> str:
    """`moment` as the log writes times (UTC, milliseconds, Z), so text order is time order."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _fold(name: str) -> str:
    return name.replace(" ", "").replace("\u3000", "")


def _instant(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _floor(groups: str | None) -> str:
    try:
        names = json.loads(groups or "[]")
    except ValueError:
        names = []
    floors = [g.removeprefix("floor-") for g in names if str(g).startswith("floor-")]
    return floors[0] if floors else "-"
