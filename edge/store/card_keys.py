"""The card keys a reader checks proven cards with, looked up from the reader's own thread."""

from __future__ import annotations

import threading
from pathlib import Path

from edge.store.connection import connect


class CardKeyLookup:
    """Find a card's key by reference in the device store, from any thread.

    Readers run on their own threads; the loop's connection is the loop's alone, so the
    lookup keeps one read-only connection of its own behind a lock (a lookup takes
    microseconds: a primary-key read).
    """

    def __init__(self, path: Path | str, desfire_key_no: int = 1) -> None:
        self._path = path
        self.desfire_key_no = desfire_key_no
        self._lock = threading.Lock()
        self._db = connect(path, read_only=True)

    def __repr__(self) -> str:
        return f"<CardKeyLookup {self._path}>"

    def __call__(self, ref: str) -> bytes | None:
        """Return the card's key, or None if the card proves nothing here."""
        with self._lock:
            row = self._db.execute(
                "SELECT card_key FROM credentials WHERE ref = ?", [ref]
            ).fetchone()
        return bytes.fromhex(row[0]) if row and row[0] else None

    def close(self) -> None:
        """Close the connection; idempotent."""
        with self._lock:
            self._db.close()
