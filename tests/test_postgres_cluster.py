"""The private PostgreSQL the central-log tests use: it starts, answers, and keeps data apart."""

from __future__ import annotations

import psycopg

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
        assert conn.execute("SHOW server_version").fetchone()[0].startswith("15.")
    with psycopg.connect(postgres.url) as conn:
        found = conn.execute("SELECT to_regclass('public.t')").fetchone()
        assert found == (None,)  # the table is in the test's database only
