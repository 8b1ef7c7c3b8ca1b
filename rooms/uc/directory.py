"""Who has opted in to UC presence, read from the provisioning registry (read only).

Only opted-in people are read, and of them only what presence needs: the staff number (to
follow a person across card changes), the UC id, the calendar address, and the references of
their active cards. Names, departments and everyone else's data are never read. The file is
read again when it changes (its or its WAL's mtime), so an opt-in or opt-out made with
`edge-provision people uc-presence` is taken at the next tick. A spare card lent on a day pass
does not count: a person on a day pass is "away" until they have their own card again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from edge.errors import EdgeError
from provisioning.registry import RegistryError
from provisioning.uc_presence import check_mail, check_uc_id
from rooms.uc.states import address

_QUERY = (
    "SELECT p.staff_no, p.uc_id, p.uc_mail, c.card_ref FROM people p "
    "LEFT JOIN cards c ON c.staff_no = p.staff_no AND c.status = 'active' "
    "WHERE p.uc_presence = 1 AND p.uc_id IS NOT NULL"
)


class DirectoryError(EdgeError):
    """The registry cannot be read for UC presence; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class UcPerson:
    """An opted-in person, as presence knows them."""

    staff_no: str
    uc_id: str
    addresses: frozenset[str]  # the UC id and calendar address, as bookings are compared

    def __repr__(self) -> str:  # no UC id or address in logs
        return f"<UcPerson {len(self.addresses)} address(es)>"


class UcDirectory:
    """Card reference -> opted-in person, reloaded when the registry changes."""

    def __init__(self, registry: Path) -> None:
        self.path = registry
        self.skipped = 0  # opted-in rows whose UC id or mail is not valid (counted, not named)
        self._by_ref: dict[str, UcPerson] = {}
        self._people: dict[str, UcPerson] = {}
        self._read: tuple[float, float] | None = None
        self.reload()

    def __repr__(self) -> str:
        return f"<UcDirectory {self.path} opted-in={len(self._people)}>"

    @property
    def people(self) -> Mapping[str, UcPerson]:
        """Return the opted-in people by staff number."""
        return MappingProxyType(self._people)

    def person(self, card_ref: str) -> UcPerson | None:
        """Return the opted-in person whose active card this is, or None."""
        return self._by_ref.get(card_ref)

    def refresh(self) -> bool:
        """Read the registry again if it changed; return whether it was read."""
        stamp = self._stamp()
        if stamp is None or stamp == self._read:  # a registry gone keeps what was read
            return False
        self.reload()
        return True

    def reload(self) -> None:
        """Read the opted-in people now; raise DirectoryError naming the fix."""
        stamp = self._stamp()
        if stamp is None:
            raise DirectoryError(
                f"no provisioning registry at {self.path}; set `registry` in the rooms service "
                "file to the site's registry.db"
            )
        try:
            conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)
            try:
                rows = conn.execute(_QUERY).fetchall()
            finally:
                conn.close()
        except sqlite3.OperationalError as error:
            if "no such column" in str(error) or "no such table" in str(error):
                raise DirectoryError(
                    f"the registry at {self.path} has no UC opt-in yet: run `edge-provision "
                    "people list --dir SITE` once to bring it up to date"
                ) from None
            raise DirectoryError(f"the registry at {self.path} cannot be read: {error}") from None
        except sqlite3.DatabaseError as error:
            raise DirectoryError(f"{self.path} is not a usable registry: {error}") from None
        people: dict[str, UcPerson] = {}
        by_ref: dict[str, UcPerson] = {}
        skipped: set[str] = set()
        for staff_no, uc_id, mail, card_ref in rows:
            person = people.get(staff_no)
            if person is None and staff_no not in skipped:
                person = _person(staff_no, uc_id, mail)
                if person is None:
                    skipped.add(staff_no)
                    continue
                people[staff_no] = person
            if person is not None and isinstance(card_ref, str):
                by_ref[card_ref] = person
        self._people, self._by_ref, self.skipped = people, by_ref, len(skipped)
        self._read = stamp

    def _stamp(self) -> tuple[float, float] | None:
        try:
            wal = self.path.with_name(self.path.name + "-wal")
            return self.path.stat().st_mtime, wal.stat().st_mtime if wal.exists() else 0.0
        except OSError:
            return None


def _person(staff_no: object, uc_id: object, mail: object) -> UcPerson | None:
    """Return the person, or None when a row is not one the registry's own checks allow."""
    if not isinstance(staff_no, str) or not isinstance(uc_id, str):
        return None
    try:
        found = {address(check_uc_id(uc_id))}
        if isinstance(mail, str) and mail:
            found.add(address(check_mail(mail)))
    except RegistryError:
        return None
    return UcPerson(staff_no, check_uc_id(uc_id), frozenset(found))
