"""The console's users, their roles, and the audit trail of what they did.

| role | may |
| --- | --- |
| guard | live alarms (and acknowledge them), roll call, log search, sites, doors (unlock
  once, alarm reset), cards at the desk (mark lost, reinstate), day passes |
| manager | what a guard may, plus CSV export, the audit trail, hold open / back to normal,
  fire reset, lockdown, revoke a card |
| operator | device health, occupancy, sites |

`PAGES` says who may open each page; `ACTIONS` who may do each thing that changes a door
or a card. docs/security-staff.md has the same table for people.

Passwords are hashed with Argon2id (argon2-cffi's defaults); the hash is all that is kept.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from console.chain import AUDIT, append_row
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
    # A site cut off from the centre sends no alarms: guards must see that too.
    "sites": frozenset({"guard", "operator", "manager"}),
    "doors": frozenset({"guard", "manager"}),
    "cards": frozenset({"guard", "manager"}),
    "passes": frozenset({"guard", "manager"}),
}
_GUARD = frozenset({"guard", "manager"})
_MANAGER = frozenset({"manager"})
ACTIONS: dict[str, frozenset[str]] = {
    "door.unlock": _GUARD,
    "door.alarm_reset": _GUARD,
    "door.hold": _MANAGER,
    "door.normal": _MANAGER,
    "door.fire_reset": _MANAGER,
    "lockdown": _MANAGER,
    "apb.forgive": _MANAGER,
    "card.lost": _GUARD,
    "card.reinstate": _GUARD,
    "card.revoke": _MANAGER,
    "pass.issue": _GUARD,
    "pass.return": _GUARD,
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,31}$")
MIN_PASSWORD = 12
_hasher = PasswordHasher()


class UserError(EdgeError, ValueError):
    """A user cannot be added or changed; the message says why and what to do."""


def may(role: str | None, page: str) -> bool:
    """True if `role` may open `page`."""
    return role is not None and role in PAGES.get(page, frozenset())


def may_act(role: str | None, action: str) -> bool:
    """True if `role` may do `action` (a key of ACTIONS)."""
    return role is not None and role in ACTIONS.get(action, frozenset())


def add_user(log: CentralLog, username: str, role: str, password: str, by: str) -> None:
    """Add a user (audited); refuse a weak password or an existing name."""
    if not _NAME.match(username):
        raise UserError(f"user name {username!r}: use a-z, 0-9, '.', '_' or '-' (max 32)")
    _check_role(role)
    _check_password(password)
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


def users(log: CentralLog) -> list[tuple[str, str, bool]]:
    """Return (username, role, enabled) of every user."""
    return [
        (str(name), str(role), not disabled)
        for name, role, disabled in log.db.execute(
            "SELECT username, role, disabled FROM users ORDER BY username"
        )
    ]


def check_password(log: CentralLog, username: str, password: str) -> str | None:
    """Return the user's role if the password is right and the user enabled, else None.

    Always hashes once, known user or not.
    """
    row = log.db.execute(
        "SELECT role, password_hash, disabled FROM users WHERE username = ?", [username]
    ).fetchone()
    stored = row[1] if row else _DUMMY
    try:
        _hasher.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return None
    return str(row[0]) if row and not row[2] else None


def set_password(
    log: CentralLog, username: str, password: str, by: str, keep_session: str | None = None
) -> int:
    """Change a user's password (audited); end their sessions but `keep_session`.

    Return how many sessions were ended.
    """
    _check_password(password)
    cursor = log.db.execute(
        "UPDATE users SET password_hash = ? WHERE username = ?", [_hasher.hash(password), username]
    )
    if cursor.rowcount == 0:
        raise UserError(f"no user {username!r}; add one with: users add")
    ended = end_sessions(log, username, keep=keep_session)
    audit(log, by, "password changed", f"{username}; {ended} other sessions ended")
    return ended


def disable_user(log: CentralLog, username: str, by: str) -> int:
    """Stop a user from logging in and end their sessions (audited); return how many."""
    _set_disabled(log, username, True)
    ended = end_sessions(log, username)
    audit(log, by, "user disabled", f"{username}; {ended} sessions ended")
    return ended


def enable_user(log: CentralLog, username: str, by: str) -> None:
    """Let a disabled user log in again (audited)."""
    _set_disabled(log, username, False)
    audit(log, by, "user enabled", username)


def remove_user(log: CentralLog, username: str, by: str) -> int:
    """Remove a user and end their sessions (audited; their audit rows stay)."""
    cursor = log.db.execute("DELETE FROM users WHERE username = ?", [username])
    if cursor.rowcount == 0:
        raise UserError(f"no user {username!r}; list them with: users list")
    ended = end_sessions(log, username)
    audit(log, by, "user removed", f"{username}; {ended} sessions ended")
    return ended


def end_sessions(log: CentralLog, username: str, keep: str | None = None) -> int:
    """End every web session of `username` except the one whose key is `keep`."""
    if keep is None:
        cursor = log.db.execute("DELETE FROM sessions WHERE username = ?", [username])
    else:
        cursor = log.db.execute(
            "DELETE FROM sessions WHERE username = ? AND key <> ?", [username, keep]
        )
    return int(cursor.rowcount)


def audit(log: CentralLog, username: str, action: str, detail: str = "") -> None:
    """Record who did what, and when, on the audit chain (inside a caller's transaction,
    part of it)."""
    values = {"at": _now(), "username": username, "action": action, "detail": detail[:500]}
    with log.transaction() as conn:
        append_row(conn, AUDIT, values)


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


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"the password needs at least {MIN_PASSWORD} characters")


def _set_disabled(log: CentralLog, username: str, disabled: bool) -> None:
    cursor = log.db.execute(
        "UPDATE users SET disabled = ? WHERE username = ?", [int(disabled), username]
    )
    if cursor.rowcount == 0:
        raise UserError(f"no user {username!r}; list them with: users list")


def _now() -> str:
    return utc_text(datetime.now(UTC))


# Verifying against a real hash for an unknown user takes as long as for a known one.
_DUMMY = _hasher.hash("not a password of anyone's")
