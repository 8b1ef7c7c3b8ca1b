"""The web page's sessions, kept in the log database: the cookie carries only a random id.

Every request looks its session up again together with the user's current role and state,
so a logout, a disabled or removed user, a changed role or a changed password take effect
at the next request. A session ends `idle_s` after its last request, and `lifetime_s` after
the login whatever happens. Only a hash of the id is stored: someone who can read the
database cannot take a session from it.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from console.log import CentralLog
from console.users import audit

Clock = Callable[[], float]  # seconds since the epoch (sessions outlive a restart)
TOUCH_S = 1.0  # last_seen is written at most this often per session


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in user as of this request."""

    key: str  # the hash of the cookie's id
    user: str
    role: str
    csrf: str
    created: float
    last_seen: float


def session_key(token: str) -> str:
    """Return what is stored for a cookie's session id."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class SessionStore:
    """Sessions in the central log's `sessions` table, judged by an injected clock."""

    def __init__(self, log: CentralLog, clock: Clock, idle_s: float, lifetime_s: float) -> None:
        self.log = log
        self.clock = clock
        self.idle_s = idle_s
        self.lifetime_s = lifetime_s

    def __repr__(self) -> str:
        return f"<SessionStore idle_s={self.idle_s} lifetime_s={self.lifetime_s}>"

    def start(self, username: str) -> tuple[str, Session]:
        """Open a session for `username`; return the id for the cookie and the session."""
        now = self.clock()
        self._purge(now)
        token = secrets.token_urlsafe(32)
        session = Session(session_key(token), username, "", secrets.token_urlsafe(24), now, now)
        self.log.db.execute(
            "INSERT INTO sessions (key, username, csrf, created, last_seen) VALUES (?,?,?,?,?)",
            [session.key, username, session.csrf, now, now],
        )
        return token, session

    def find(self, token: object, touch: bool = True) -> Session | None:
        """Return the live session of a cookie's id, or None (an ended one is removed).

        `touch` counts this as the user's activity (a page, a form); a live stream that
        re-checks its session does not, so an unattended screen still times out.
        """
        if not isinstance(token, str) or not token:
            return None
        key = session_key(token)
        row = self.log.db.execute(
            "SELECT s.username, u.role, u.disabled, s.csrf, s.created, s.last_seen "
            "FROM sessions s LEFT JOIN users u ON u.username = s.username WHERE s.key = ?",
            [key],
        ).fetchone()
        if row is None:
            return None
        user, role, disabled, csrf, created, last_seen = row
        now = self.clock()
        ended = None
        if role is None or disabled:
            ended = "user removed or disabled"
        elif now - created >= self.lifetime_s:
            ended = f"session older than {self.lifetime_s / 3600:g} h"
        elif now - last_seen >= self.idle_s:
            ended = f"idle for {self.idle_s / 60:g} min"
        if ended is not None:
            if self._delete(key):
                audit(self.log, user, "session ended", ended)
            return None
        if touch and now - last_seen >= TOUCH_S:
            self.log.db.execute("UPDATE sessions SET last_seen = ? WHERE key = ?", [now, key])
            last_seen = now
        return Session(key, user, role, csrf, created, last_seen)

    def end(self, session: Session) -> None:
        """End one session (logout)."""
        self._delete(session.key)

    def count(self, username: str) -> int:
        """Return how many sessions `username` has open."""
        return int(
            self.log.db.execute(
                "SELECT count(*) FROM sessions WHERE username = ?", [username]
            ).fetchone()[0]
        )

    def _delete(self, key: str) -> bool:
        cursor = self.log.db.execute("DELETE FROM sessions WHERE key = ?", [key])
        return cursor.rowcount > 0

    def _purge(self, now: float) -> None:
        """Drop sessions that can no longer be used (the table stays small)."""
        self.log.db.execute(
            "DELETE FROM sessions WHERE last_seen <= ? OR created <= ?",
            [now - self.idle_s, now - self.lifetime_s],
        )
