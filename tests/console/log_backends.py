"""The central log on both stores, for tests that must hold on each: an SQLite file and a
PostgreSQL database (its own per test), and a way to change either behind the log's back."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from console.log import CentralLog, open_log
from console.log_pg import translate

SITE = "hall"
BACKENDS = ("sqlite", "postgresql")


@dataclass
class Backend:
    """An open log, where it is, and the name of its (or its site's) events chain."""

    kind: str
    target: str
    log: CentralLog

    @property
    def events(self) -> str:
        return "events" if self.kind == "sqlite" else f"events/{SITE}"

    def tamper(self, *statements: tuple[str, list[Any]]) -> None:
        """Change the database behind the log's back, in one transaction, as someone with
        the file (or the database's password) would."""
        if self.kind == "sqlite":
            with closing(sqlite3.connect(self.target, isolation_level=None)) as conn:
                conn.execute("BEGIN")
                for sql, params in statements:
                    conn.execute(sql, params)
                conn.execute("COMMIT")
            return
        with psycopg.connect(self.target) as conn:
            for sql, params in statements:
                conn.execute(translate(sql).encode(), params)

    def reopen(self) -> CentralLog:
        self.log.close()
        self.log = open_log(self.target)
        return self.log


@pytest.fixture(name="backend", params=BACKENDS)
def backend_fixture(
    request: pytest.FixtureRequest, tmp_path: Path, pg_database: str
) -> Iterator[Backend]:
    """The log on SQLite, then on PostgreSQL (both fixtures are made: the test is the same)."""
    target = str(tmp_path / "log.db") if request.param == "sqlite" else pg_database
    made = Backend(request.param, target, open_log(target))
    yield made
    made.log.close()
