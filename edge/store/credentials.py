"""Credentials in SQLite, looked up by card reference: 1M cardholders need no RAM.

A full snapshot replaces the set and becomes the base; a delta (edge.snapshot_delta) changes
the named cards on top of the base it was built on, and only on that base.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from edge.core.credentials import CardProfile, Credential, DenyReason
from edge.core.policy import AccessPolicy
from edge.pin_hash import parse_pin, pin_text
from edge.policy_json import policy_from_json, policy_to_json
from edge.snapshot import Snapshot, SnapshotError
from edge.snapshot_delta import Delta
from edge.store import guard

log = logging.getLogger(__name__)


class SqliteCredentials:
    """The `CredentialStore` port over the device's SQLite file."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def __repr__(self) -> str:
        return f"<SqliteCredentials cards={self.count()}>"

    def find(self, ref: str) -> Credential | None:
        """Return the card's credential, or None."""
        row = self._db.execute(
            "SELECT groups, valid_from, valid_until, profile, pin FROM credentials WHERE ref = ?",
            [ref],
        ).fetchone()
        if row is None:
            return None
        groups, valid_from, valid_until, profile, pin = row
        return Credential(
            ref,
            frozenset(json.loads(groups)),
            datetime.fromisoformat(valid_from) if valid_from else None,
            datetime.fromisoformat(valid_until) if valid_until else None,
            CardProfile(profile),
            parse_pin(pin) if pin else None,
        )

    def denied(self, ref: str) -> DenyReason | None:
        """Return why the card is denied outright, or None."""
        row = self._db.execute("SELECT reason FROM deny WHERE ref = ?", [ref]).fetchone()
        return None if row is None else DenyReason(row[0])

    def count(self) -> int:
        """Return how many cards are enrolled."""
        return int(self._db.execute("SELECT count(*) FROM credentials").fetchone()[0])

    def policy(self) -> AccessPolicy:
        """Return the stored access policy (an empty one before the first load)."""
        row = self._db.execute("SELECT body FROM policy WHERE id = 1").fetchone()
        return policy_from_json(json.loads(row[0])) if row else AccessPolicy()

    def version(self) -> int:
        """Return the version of the stored credential set (0 before the first)."""
        row = self._db.execute("SELECT version FROM policy WHERE id = 1").fetchone()
        return int(row[0]) if row else 0

    def meta(self) -> dict[str, Any]:
        """Return version, issued_at and applied_at of the stored set ({} before the first)."""
        row = self._db.execute(
            "SELECT value FROM device_state WHERE key = 'credentials'"
        ).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def base(self) -> int:
        """Return the version of the full snapshot the set is built on (0 before the first)."""
        meta = self.meta()
        return int(meta.get("base", meta.get("version", 0)))

    def apply(self, snapshot: Snapshot, applied_at: datetime, *, recorded: bool = False) -> bool:
        """Replace the set with a newer snapshot; call inside a transaction.

        Return False for the version already applied, or the base the set is built on (the
        retained snapshot comes again on each connection); raise SnapshotError for an older one.
        `recorded`: the caller stores the `credentials_applied` event in this transaction.
        """
        current = self.version()
        if snapshot.version in (current, self.base()):
            return False
        # The floor outlives the store (edge.store.guard): a store moved aside as corrupt
        # starts empty, yet a snapshot from before a revocation is still refused.
        floor = max(current, guard.stored(self._db).credentials_version)
        if snapshot.version < floor:
            raise SnapshotError(
                f"credential snapshot v{snapshot.version} is older than v{floor}, the newest "
                "this device has applied; a replayed or misdirected snapshot is refused"
            )
        guard.raise_to(self._db, guard.Guard(credentials_version=snapshot.version))
        self.replace(snapshot.policy, snapshot.credentials, snapshot.deny, snapshot.card_keys)
        self._set_meta(
            snapshot.version, snapshot.version, snapshot.issued_at, applied_at, recorded=recorded
        )
        return True

    def apply_delta(self, delta: Delta, applied_at: datetime, *, recorded: bool = False) -> bool:
        """Change the named cards of the base the delta is built on; call inside a transaction.

        Return False for the version already applied, and for a delta on an older base than
        the snapshot held that brings nothing newer (a site broker that missed the clearing
        of its retained delta during a WAN cut keeps sending it); raise SnapshotError
        (changing nothing) for any other delta on another base or an older version. The
        guard's floor stays at the base, so a store moved aside as corrupt can take the
        retained base and this delta again.
        """
        current, base = self.version(), self.base()
        if delta.version == current and delta.base == base:
            return False
        if delta.base < base and delta.version <= current:
            log.debug(
                "credential delta v%d->v%d ignored: superseded by snapshot v%d (holding v%d)",
                delta.base,
                delta.version,
                base,
                current,
            )
            return False
        if delta.version <= current:
            raise SnapshotError(
                f"credential delta v{delta.base}->v{delta.version} is not newer than v{current}, "
                "the version this device holds; a replayed delta is refused"
            )
        if delta.base != base or current == 0:
            raise SnapshotError(
                f"credential delta v{delta.base}->v{delta.version} is built on snapshot "
                f"v{delta.base}, but this device holds v{current} on snapshot v{base}; it keeps "
                "what it has until the next full snapshot (`edge-provision publish --full`)"
            )
        db = self._db
        keys = delta.card_keys
        changed = [c.ref for c in delta.credentials]
        db.conn.executemany(
            "DELETE FROM credentials WHERE ref = ?", ((r,) for r in [*changed, *delta.removed])
        )
        db.conn.executemany(
            "INSERT INTO credentials "
            "(ref, groups, valid_from, valid_until, profile, card_key, pin) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_credential_row(c, keys.get(c.ref)) for c in delta.credentials),
        )
        db.conn.executemany(
            "DELETE FROM deny WHERE ref = ?", ((r,) for r in [*delta.deny, *delta.allowed])
        )
        db.conn.executemany(
            "INSERT INTO deny (ref, reason) VALUES (?, ?)",
            ((ref, str(reason)) for ref, reason in delta.deny.items()),
        )
        policy = replace(self.policy(), version=delta.version)
        db.execute(
            "UPDATE policy SET version = ?, body = ? WHERE id = 1",
            [delta.version, json.dumps(policy_to_json(policy), sort_keys=True)],
        )
        self._set_meta(delta.version, delta.base, delta.issued_at, applied_at, recorded=recorded)
        return True

    def _set_meta(
        self,
        version: int,
        base: int,
        issued_at: datetime,
        applied_at: datetime,
        *,
        recorded: bool,
    ) -> None:
        meta = {
            "recorded": recorded,
            "version": version,
            "base": base,
            "issued_at": issued_at.isoformat(),
            "applied_at": applied_at.isoformat(),
            "cards": self.count(),
        }
        self._db.execute(
            "INSERT INTO device_state (key, value) VALUES ('credentials', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [json.dumps(meta)],
        )

    def replace(
        self,
        policy: AccessPolicy,
        credentials: Iterable[Credential],
        deny: Mapping[str, DenyReason],
        card_keys: Mapping[str, bytes] | None = None,
    ) -> None:
        """Replace policy, credentials and deny list together; call inside a transaction."""
        db = self._db
        keys = card_keys or {}
        db.execute("DELETE FROM credentials")
        db.execute("DELETE FROM deny")
        db.conn.executemany(
            "INSERT INTO credentials "
            "(ref, groups, valid_from, valid_until, profile, card_key, pin) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (_credential_row(c, keys.get(c.ref)) for c in credentials),
        )
        db.conn.executemany(
            "INSERT INTO deny (ref, reason) VALUES (?, ?)",
            ((ref, str(reason)) for ref, reason in deny.items()),
        )
        db.execute(
            "INSERT INTO policy (id, version, body) VALUES (1, ?, ?) "
            "ON CONFLICT(id) DO UPDATE SET version = excluded.version, body = excluded.body",
            [policy.version, json.dumps(policy_to_json(policy), sort_keys=True)],
        )


def _credential_row(c: Credential, key: bytes | None) -> tuple[str | None, ...]:
    return (
        c.ref,
        json.dumps(sorted(c.groups)),
        c.valid_from.isoformat() if c.valid_from else None,
        c.valid_until.isoformat() if c.valid_until else None,
        str(c.profile),
        key.hex() if key is not None else None,
        None if c.pin is None else pin_text(c.pin),
    )
