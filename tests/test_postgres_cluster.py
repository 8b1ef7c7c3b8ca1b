"""The private PostgreSQL the central-log tests use: it starts, answers, and keeps data apart."""

from __future__ import annotations

import tempfile
from pathlib import Path

import psycopg
import pytest

from simulator.postgres import PostgresCluster
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)


def test_each_test_gets_an_empty_database_of_its_own(
    postgres: PostgresCluster,  # noqa: F811
    pg_database: str,  # noqa: F811
) -> None:
    with psycopg.connect(pg_database, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (n integer)")
        conn.execute("INSERT INTO t VALUES (1), (2)")
        assert conn.execute("SELECT sum(n) FROM t").fetchone() == (3,)
        version = conn.execute("SHOW server_version").fetchone()
        assert version is not None
        assert version[0].startswith("15.")
    with psycopg.connect(postgres.url) as conn:
        found = conn.execute("SELECT to_regclass('public.t')").fetchone()
        assert found == (None,)  # the table is in the test's database only


@pytest.mark.services
def test_a_cluster_stops_with_clients_connected_and_starts_again() -> None:
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="edge-pg-")))
    cluster.start()
    try:
        client = psycopg.connect(cluster.url, autocommit=True)
        client.execute("CREATE TABLE kept (n integer)")
        client.execute("INSERT INTO kept VALUES (7)")
        cluster.stop()  # a connected client must not hold the shutdown up
        cluster.start()
        with psycopg.connect(cluster.url) as again:
            assert again.execute("SELECT n FROM kept").fetchone() == (7,)
        client.close()
    finally:
        cluster.remove()
