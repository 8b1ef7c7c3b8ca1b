"""What the central log's two stores offer (SQLite, PostgreSQL), and the log's error.

console.log holds the logic, written in the portable SQL every reader uses (`?`
placeholders, `ON CONFLICT`, ISO-8601 text times); a store holds the connections, the
transactions and the few statements that differ: how events are keyed by site, chained and
de-duplicated.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, Protocol

from edge.errors import EdgeError


class LogError(EdgeError, ValueError):
    """The log cannot be opened or an entry is unusable; the message says which."""


class LogUnavailable(LogError):
    """The log's database cannot be reached now: what was being written is to be retried."""


class Rows(Protocol):
    """A cursor over a statement's rows (tuples)."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Executor(Protocol):
    """A connection that runs one statement with `?` placeholders."""

    def execute(self, sql: str, parameters: Any = ..., /) -> Rows: ...


class Writer(Executor, Protocol):
    """A connection in a write transaction: one statement, or one for each set of values."""

    def executemany(self, sql: str, seq_of_parameters: Any, /) -> Any: ...


class LogDatabase(Executor, Protocol):
    """`CentralLog.db`: a statement's cursor (`execute`) or its rows as dicts (`query`)."""

    def query(self, sql: str, params: Any = ..., /) -> Iterator[dict[str, Any]]: ...


class Store(Protocol):
    """One database holding a log: connections, transactions and the keyed statements."""

    target: str  # the file or the URL (without its password)
    keys_sites: bool  # True: device ids and event ids are keyed by (site, …)
    errors: tuple[type[Exception], ...]  # what a table altered under the log raises

    def db(self) -> LogDatabase:
        """Return this thread's connection."""

    def transaction(self) -> AbstractContextManager[Writer]:
        """Write in one transaction; inside one, join it."""

    def snapshot(self) -> AbstractContextManager[Executor]:
        """Read in one consistent snapshot (what `check` walks)."""

    def attempt(self, conn: Executor) -> AbstractContextManager[None]:
        """Run statements that may fail without ending the snapshot they run in."""

    def outage(self, error: BaseException) -> bool:
        """True for a failure of the database itself, not of one row."""

    def prepare(self, events: Iterable[Mapping[str, Any]]) -> None:
        """Make room for events about to be stored, outside the write transaction."""

    def drop_month(self, month: str, at: str) -> int:
        """Archive a month's events, their places in the chains kept; return how many."""

    def notes(self, conn: Executor) -> list[str]:
        """Name what the store holds aside that `check` should mention (not tampering)."""

    def close(self) -> None:
        """Close every connection; idempotent."""


def is_url(target: str | Path) -> bool:
    """Return True if `target` names a PostgreSQL database (`postgresql://…`)."""
    return isinstance(target, str) and target.startswith(("postgresql://", "postgres://"))


def masked(url: str) -> str:
    """Return the URL without its password (what logs and errors may show)."""
    url = re.sub(r"(://[^:/@?]*):[^@/?]*@", r"\1:***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url)
