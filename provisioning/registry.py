"""The provisioning registry: one SQLite file per site, schema by named migrations, audited."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations

from edge.errors import EdgeError
from edge.store.database import write_transaction

migrations = Migrations("edge-provision")


@migrations(name="0001_site_accounts_audit")
def site_accounts_audit(db: Database) -> None:
    """Create the site, the broker accounts and the audit trail."""
    db.table("site").create({"id": int, "slug": str, "timezone": str, "created_at": str}, pk="id")
    db.table("accounts").create(
        {"username": str, "role": str, "password_hash": str, "created_at": str}, pk="username"
    )
    db.table("audit").create(
        {"id": int, "ts": str, "actor": str, "action": str, "detail": str}, pk="id"
    )


class RegistryError(EdgeError, ValueError):
    """The registry is missing or an action is not allowed."""


class Registry:
    """A site's registry; every change goes with an audit row in the same transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = Database(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        migrations.apply(self.db)

    def __repr__(self) -> str:
        return f"<Registry {self.path}>"

    def close(self) -> None:
        """Close the file."""
        self.db.close()

    def site(self) -> dict[str, Any]:
        """Return the site, or raise if `site init` has not run."""
        row = self.db.execute("SELECT slug, timezone FROM site WHERE id = 1").fetchone()
        if row is None:
            raise RegistryError(f"{self.path}: no site yet; run edge-provision site init first")
        return {"slug": row[0], "timezone": row[1]}

    def record(self, db: Database, action: str, **detail: object) -> None:
        """Write an audit row (inside the caller's transaction)."""
        db.execute(
            "INSERT INTO audit (ts, actor, action, detail) VALUES (?, ?, ?, ?)",
            [
                datetime.now(UTC).isoformat(),
                getpass.getuser(),
                action,
                json.dumps(detail, ensure_ascii=False),
            ],
        )

    def init_site(self, slug: str, timezone: str, key_ids: dict[str, str]) -> None:
        """Create the site row."""
        with write_transaction(self.db) as db:
            if db.execute("SELECT 1 FROM site").fetchone():
                raise RegistryError(f"{self.path} already holds a site")
            db.execute(
                "INSERT INTO site (id, slug, timezone, created_at) VALUES (1, ?, ?, ?)",
                [slug, timezone, datetime.now(UTC).isoformat()],
            )
            self.record(db, "site init", site=slug, timezone=timezone, key_ids=key_ids)

    def add_account(self, username: str, role: str, password_hash: str) -> None:
        """Add a broker account (or replace its password)."""
        with write_transaction(self.db) as db:
            db.execute(
                "INSERT INTO accounts (username, role, password_hash, created_at) "
                "VALUES (?, ?, ?, ?) "
                "ON CONFLICT(username) DO UPDATE SET role = excluded.role, "
                "password_hash = excluded.password_hash",
                [username, role, password_hash, datetime.now(UTC).isoformat()],
            )
            self.record(db, "account add", username=username, role=role)

    def accounts(self) -> list[dict[str, str]]:
        """Return the broker accounts."""
        rows = self.db.execute(
            "SELECT username, role, password_hash FROM accounts ORDER BY username"
        )
        return [{"username": u, "role": r, "password_hash": h} for u, r, h in rows]

    def audit(self) -> list[dict[str, str]]:
        """Return the audit trail, oldest first."""
        rows = self.db.execute("SELECT ts, actor, action, detail FROM audit ORDER BY id")
        return [{"ts": t, "actor": a, "action": x, "detail": d} for t, a, x, d in rows]


@migrations(name="0002_devices")
def devices(db: Database) -> None:
    """Create the devices: id, role and their configuration file."""
    db.table("devices").create({"id": str, "role": str, "added_at": str}, pk="id")


def add_device(registry: Registry, device_id: str, role: str) -> None:
    """Add a device to the registry (audited)."""
    with write_transaction(registry.db) as db:
        if db.execute("SELECT 1 FROM devices WHERE id = ?", [device_id]).fetchone():
            raise RegistryError(f"device {device_id} already exists")
        db.execute(
            "INSERT INTO devices (id, role, added_at) VALUES (?, ?, ?)",
            [device_id, role, datetime.now(UTC).isoformat()],
        )
        registry.record(db, "device add", device=device_id, role=role)


def device_role(registry: Registry, device_id: str) -> str:
    """Return a device's role, or raise with the fix."""
    row = registry.db.execute("SELECT role FROM devices WHERE id = ?", [device_id]).fetchone()
    if row is None:
        raise RegistryError(f"no device {device_id}; add it with edge-provision device add")
    return str(row[0])
