"""The console's users, their roles, and the audit trail of what they did.

| role | may |
| --- | --- |
| guard | live alarms (and acknowledge them), roll call, log search |
| manager | what a guard may, plus CSV export and the audit trail |
| operator | device health |

Passwords are hashed with Argon2id (argon2-cffi's defaults); the hash is all that is kept.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from console.log import CentralLog
from edge.core.clock import utc_text
from edge.errors import EdgeError

ROLES = ("guard", "manager", "operator")
PAGES: dict[str, frozenset[str]] = {
    "alarms": frozenset({"guard", "manager"}),
    "log": frozenset({"guard", "manager"}),
    "muster": frozenset({"guard", "manager"}),
    "occupancy": frozenset({"guard", "manager", "operator"}),
    "export": frozenset({"manager"}),
    "audit": frozenset({"manager"}),
    "devices": frozenset({"operator", "manager"}),
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
MIN_PASSWORD = 12
_hasher = PasswordHasher()


class UserError(EdgeError, ValueError):
    """A user cannot be added or changed; the message says why and what to do."""


def may(role: str | None, page: str) -> bool:
    """True if `role` may open `page`."""
    return role is not None and role in PAGES.get(page, frozenset())


def add_user(log: CentralLog, username: str, role: str, password: str, by: str) -> None:
    """Add a user (audited); refuse a weak password or an existing name."""
    if not _NAME.match(username):
        raise UserError(f"user name {username!r}: use a-z, 0-9, '.', '_' or '-' (max 32)")
    _check_role(role)
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password needs at least {MIN_PASSWORD} characters")
    if log.db.execute("SELECT 1 FROM users WHERE username = ?", [username]).fetchone():
        raise UserError(f"user {username!r} exists; change the role with: users role")
    log.db.execute(
        "INSERT INTO users (username, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
        [username, role, _hasher.hash(password), _now()],
    )
    audit(log, by, "user added", f"{username} as {role}")


def set_role(log: CentralLog, username: str, role: str, by: str) -> None:
    """Change a user's role (audited)."""
    _check_role(role)
    cursor = log.db.execute("UPDATE users SET role = ? WHERE username = ?", [role, username])
    if cursor.rowcount == 0:
        raise UserError(f"no user {username!r}; add one with: users add")
    audit(log, by, "role changed", f"{username} -> {role}")


def users(log: CentralLog) -> list[tuple[str, str]]:
    """Return (username, role) of every user."""
    return list(log.db.execute("SELECT username, role FROM users ORDER BY username"))


def check_password(log: CentralLog, username: str, password: str) -> str | None:
    """Return the user's role if the password is right, else None (always hashes once)."""
    row = log.db.execute(
        "SELECT role, password_hash FROM users WHERE username = ?", [username]
    ).fetchone()
    stored = row[1] if row else _DUMMY
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return str(row[0]) if row else None


def audit(log: CentralLog, username: str, action: str, detail: str = "") -> None:
    """Record who did what, and when."""
    log.db.execute(
        "INSERT INTO audit (at, username, action, detail) VALUES (?, ?, ?, ?)",
        [_now(), username, action, detail[:500]],
    )


def audit_trail(log: CentralLog, limit: int = 200) -> list[tuple[str, str, str, str]]:
    """Return the newest audit rows: (at, username, action, detail)."""
    return list(
        log.db.execute(
            "SELECT at, username, action, detail FROM audit ORDER BY id DESC LIMIT ?", [limit]
        )
    )


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise UserError(f"role {role!r}: use one of {', '.join(ROLES)}")


def _now() -> str:
    return utc_text(datetime.now(UTC))


# Verifying against a real hash for an unknown user takes as long as for a known one.
_DUMMY = _hasher.hash("not a password of anyone's")
