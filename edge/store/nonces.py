"""Used command nonces and the replay high-water mark, in the device store.

Times are instants (ms since 1970), never text: an expiry written with any UTC offset is
compared correctly. A nonce is kept until its command can no longer be accepted: until it
expired a skew before the mark (which never moves back, except by the clamp below) and
before the device clock, plus a day, so even a synchronised clock stepped back by less than
a day finds the nonce. The mark advances only while the clock is synchronised, and only to
the earlier of the device's time and the command's signed expiry, so a device clock far
ahead cannot pin it.
"""

from __future__ import annotations

from datetime import timedelta

from sqlite_utils import Database

from edge.core.clock import utc_text
from edge.store import guard

RETENTION_MS = timedelta(days=1) // timedelta(milliseconds=1)


class NonceCache:
    """Nonces seen, kept in the store until they expire (so a restart does not forget them)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def __repr__(self) -> str:
        count = self._db.execute("SELECT count(*) FROM nonces").fetchone()[0]
        return f"<NonceCache nonces={count} mark={self.mark()}>"

    def mark(self) -> int:
        """Return the replay high-water mark (ms since 1970; 0 before the first command)."""
        return guard.stored(self._db).command_mark_ms

    def lower_mark(self, mark_ms: int) -> None:
        """Set the mark down to `mark_ms` (recovery from a mark no clock can reach)."""
        guard.lower_mark(self._db, mark_ms)

    def claim(self, nonce: str, expires_ms: int, now_ms: int, synced: bool) -> bool:
        """Record a nonce; return False if it was already used. Call inside a transaction."""
        mark = self.mark()
        purge_before = min(mark, now_ms) - guard.SKEW_MS - RETENTION_MS
        self._db.execute("DELETE FROM nonces WHERE expires_ms < ?", [purge_before])
        seen = self._db.execute("SELECT 1 FROM nonces WHERE nonce = ?", [nonce]).fetchone()
        if seen:
            return False
        self._db.execute(
            "INSERT INTO nonces (nonce, expires_at, expires_ms) VALUES (?, ?, ?)",
            [nonce, utc_text(guard.from_ms(expires_ms)), expires_ms],
        )
        advance = min(now_ms, expires_ms) if synced else 0
        guard.raise_to(self._db, guard.Guard(0, advance, expires_ms))
        return True
