"""A private PostgreSQL cluster for the tests that need one (`postgres`, one per session).

Its directory is made under the system's temporary directory, not pytest's: pytest's are
private to root, and the server runs as the `postgres` user. Each test gets a database of
its own from `pg_database` (created from the cluster's, dropped after).
"""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from simulator.postgres import PostgresCluster, PostgresError

_names = itertools.count(1)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """Start one PostgreSQL for the session (each xdist worker has its own)."""
    workdir = Path(tempfile.mkdtemp(prefix="edge-pg-"))
    cluster = PostgresCluster(workdir)
    try:
        cluster.start()
    except PostgresError as error:
        shutil.rmtree(workdir, ignore_errors=True)
        pytest.fail(str(error))
    yield cluster
    cluster.remove()


@pytest.fixture
def pg_database(postgres: PostgresCluster) -> Iterator[str]:
    """Return the URL of a new, empty database on the session's cluster; drop it after."""
    name = f"test_{next(_names)}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield postgres.url.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
