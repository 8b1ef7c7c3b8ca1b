"""Names for card references, from the provisioning registry (read only).

The central log keeps references; a person is looked up only when someone asks (a search,
the roll call, an export). The registry is opened read-only: the console never changes it.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
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


class Directory:
    """Card reference -> person, and name/staff number -> card references."""

    def __init__(self, registry: Path | None) -> None:
        self.path = registry
        self.timezone = "Asia/Tokyo"  # the site's, from the registry when there is one
        self._by_ref: dict[str, Person] = {}
        self._refs: dict[str, list[str]] = {}
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
            site = conn.execute("SELECT timezone FROM site LIMIT 1").fetchone()
            if site and site[0]:
                self.timezone = str(site[0])
            for ref, staff_no in conn.execute("SELECT card_ref, staff_no FROM cards"):
                if staff_no in people:
                    by_ref[ref] = people[staff_no]
                    refs.setdefault(staff_no, []).append(ref)
        finally:
            conn.close()
        self._by_ref, self._refs = by_ref, refs

    def person(self, card_ref: str | None) -> Person | None:
        """Return whose card this is, or None."""
        return self._by_ref.get(card_ref or "")

    def refs_for(self, who: str) -> list[str]:
        """Return the card references of a staff number, or of everyone whose name has `who`."""
        if who in self._refs:
            return list(self._refs[who])
        folded = who.replace(" ", "").replace("\u3000", "")
        return [
            ref
            for ref, p in self._by_ref.items()
            if folded and folded in p.name.replace(" ", "").replace("\u3000", "")
        ]


def _floor(groups: str | None) -> str:
    try:
        names = json.loads(groups or "[]")
    except ValueError:
        names = []
    floors = [g.removeprefix("floor-") for g in names if str(g).startswith("floor-")]
    return floors[0] if floors else "-"
