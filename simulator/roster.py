"""Fictional staff for the demo: names, departments, groups and cards.

Names live only here, in provisioning and in the console; devices see card references.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from edge.cardref import card_reference
from edge.core.credentials import Credential, DenyReason, InMemoryCredentials
from simulator.staff import FAMILY as STAFF_FAMILY
from simulator.staff import GIVEN as STAFF_GIVEN

# The demo's morning uses the first dozen of the simulator's names.
FAMILY = STAFF_FAMILY[:12]
GIVEN = STAFF_GIVEN[:12]
DEPARTMENTS = {
    "総務課": ("staff", "floor-2"),
    "財政課": ("staff", "floor-2"),
    "市民課": ("staff",),
    "都市計画課": ("staff",),
    "警備": ("staff", "security"),
}


@dataclass(frozen=True, slots=True)
class Person:
    """A member of staff (or someone else holding a card)."""

    name: str
    department: str
    technology: str
    card_id: str  # the raw identifier: never leaves the simulated card
    groups: frozenset[str]
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    deny: DenyReason | None = None

    def ref(self, site_key: bytes) -> str:
        """Return this person's card reference under the site key."""
        return card_reference(site_key, self.technology, self.card_id)

    @property
    def label(self) -> str:
        """Return 'name (department)'."""
        return f"{self.name} ({self.department})"


def make_staff(count: int, seed: int = 7) -> list[Person]:
    """Return `count` fictional staff with FeliCa cards, spread over the departments."""
    rng = random.Random(seed)
    people = []
    departments = list(DEPARTMENTS)
    names = [f"{f} {g}" for f in FAMILY for g in GIVEN]
    rng.shuffle(names)
    for i in range(count):
        department = departments[i % len(departments)]
        people.append(
            Person(
                name=names[i],
                department=department,
                technology="felica",
                card_id=f"0114{rng.getrandbits(48):012X}",
                groups=frozenset(DEPARTMENTS[department]),
            )
        )
    return people


def credential_store(people: list[Person], site_key: bytes) -> InMemoryCredentials:
    """Return the credentials a device would hold for `people` (references only)."""
    creds = [
        Credential(p.ref(site_key), p.groups, p.valid_from, p.valid_until)
        for p in people
        if p.deny is None
    ]
    deny = {p.ref(site_key): p.deny for p in people if p.deny is not None}
    return InMemoryCredentials(creds, deny)
