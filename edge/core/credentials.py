"""Credentials by card reference, and the port the decision looks them up through.

The in-memory store serves tests, benchmarks and the demo; the agent's SQLite store
implements the same port, so 1M cardholders need not fit in RAM.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class DenyReason(StrEnum):
    """Why a card is on the deny list."""

    REVOKED = "revoked"
    LOST = "lost"  # revoked and flagged: a tap raises an alarm


class CardProfile(StrEnum):
    """What a card can prove: nothing beyond its id, or a key through its protocol."""

    UID = "uid"  # the id alone; any phone reads it and any emulator replays it
    LITE_S = "lite-s"  # FeliCa Lite-S: a MAC with its diversified card key
    DESFIRE = "desfire"  # MIFARE DESFire EV2: AES mutual authentication, MACed file

    @property
    def proves(self) -> bool:
        """True if a read of this card can be cryptographically proven."""
        return self is not CardProfile.UID


@dataclass(frozen=True, slots=True)
class PinHash:
    """A person's PIN as a salted scrypt hash, and optionally their duress PIN's hash.

    Both hashes share the salt, so one derivation of the entered digits checks both.
    The salt and hashes never appear in a repr.
    """

    n: int
    r: int
    p: int
    salt: bytes = field(repr=False)
    hash: bytes = field(repr=False)
    duress: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class Credential:
    """A card's rights: its groups and the period it is valid (`valid_until` exclusive)."""

    ref: str
    groups: frozenset[str]
    valid_from: datetime | None = None
    valid_until: datetime | None = None
    # A card enrolled as able to prove itself is never admitted on its id alone.
    profile: CardProfile = CardProfile.UID
    # Asked for at doors that want a PIN; a card without one is refused there.
    pin: PinHash | None = field(default=None, repr=False)


class CredentialStore(Protocol):
    """Looks credentials and the deny list up by card reference."""

    def find(self, ref: str) -> Credential | None:
        """Return the card's credential, or None if it is not enrolled here."""
        ...

    def denied(self, ref: str) -> DenyReason | None:
        """Return why the card is denied outright, or None."""
        ...


class InMemoryCredentials:
    """A credential store in dictionaries."""

    def __init__(
        self, credentials: Iterable[Credential] = (), deny: Mapping[str, DenyReason] | None = None
    ) -> None:
        self._by_ref = {c.ref: c for c in credentials}
        self._deny = dict(deny or {})

    def __repr__(self) -> str:
        return f"<InMemoryCredentials cards={len(self._by_ref)} denied={len(self._deny)}>"

    def __len__(self) -> int:
        return len(self._by_ref)

    def find(self, ref: str) -> Credential | None:
        """Return the card's credential, or None."""
        return self._by_ref.get(ref)

    def denied(self, ref: str) -> DenyReason | None:
        """Return why the card is denied outright, or None."""
        return self._deny.get(ref)

    def deny(self, ref: str, reason: DenyReason) -> None:
        """Put a card on the deny list."""
        self._deny[ref] = reason
