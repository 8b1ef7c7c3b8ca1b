"""The central log on PostgreSQL (being built)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from console.log_store import Executor, LogDatabase, LogError


def is_url(target: str | Path) -> bool:
    """Return True if `target` names a PostgreSQL database (`postgresql://…`)."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


class PostgresStore:
    """A log's PostgreSQL database."""

    keys_sites = True
    errors: tuple[type[Exception], ...] = ()

    def __init__(self, url: str) -> None:
        self.target = url
        raise LogError("PostgreSQL logs are not available yet")

    def db(self) -> LogDatabase:
        """Return this thread's connection."""
        raise LogError("closed")

    @contextmanager
    def transaction(self) -> Iterator[Executor]:
        """Write in one transaction."""
        yield self.db()

    @contextmanager
    def snapshot(self) -> Iterator[Executor]:
        """Read in one snapshot."""
        yield self.db()

    @contextmanager
    def attempt(self, conn: Executor) -> Iterator[None]:
        """Run statements that may fail."""
        yield

    def prepare(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Make room for events."""

    def close(self) -> None:
        """Close."""
