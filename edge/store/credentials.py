"""Credentials in SQLite, looked up by card reference: 1M cardholders need no RAM."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlite_utils import Database

from edge.core.credentials import Credential, DenyReason
from edge.core.policy import AccessPolicy
from edge.store.policy_json import policy_from_json, policy_to_json


class SqliteCredentials:
    """The `CredentialStore` port over the device's SQLite file."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def __repr__(self) -> str:
        return f"<SqliteCredentials cards={self.count()}>"

    def find(self, ref: str) -> Credential | None:
        """Return the card's credential, or None."""
        row = self._db.execute(
            "SELECT groups, valid_from, valid_until FROM credentials WHERE ref = ?", [ref]
        ).fetchone()
        if row is None:
            return None
        groups, valid_from, valid_until = row
        return Credential(
            ref,
            frozenset(json.loads(groups)),
            datetime.fromisoformat(valid_from) if valid_from else None,
            datetime.fromisoformat(valid_until) if valid_until else None,
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

    def replace(
        self,
        policy: AccessPolicy,
        credentials: Iterable[Credential],
        deny: Mapping[str, DenyReason],
    ) -> None:
        """Replace policy, credentials and deny list together; call inside a transaction."""
        db = self._db
        db.execute("DELETE FROM credentials")
        db.execute("DELETE FROM deny")
        db.conn.executemany(
            "INSERT INTO credentials (ref, groups, valid_from, valid_until) VALUES (?, ?, ?, ?)",
            (
                (
                    c.ref,
                    json.dumps(sorted(c.groups)),
                    c.valid_from.isoformat() if c.valid_from else None,
                    c.valid_until.isoformat() if c.valid_until else None,
                )
                for c in credentials
            ),
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
