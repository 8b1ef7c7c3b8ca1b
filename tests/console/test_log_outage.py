"""The log's database down: the web page answers 503 with a plain message in the reader's
language, the command line a message and exit status 75, neither a traceback; and
`verify` takes a PostgreSQL site's own chain head as an anchor.

Real parts: a private PostgreSQL per test (stopped by the test), uvicorn on loopback.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from console.cli import EX_TEMPFAIL, cli
from console.cli_users import log_at
from console.log import open_log
from console.web import Settings, create_app
from simulator.postgres import PostgresCluster
from tests.console.sites_fixtures import BRANCH, HOME, NOW, fill, registry
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)

from .web_fixtures import Client, FakeClock, serve

ENGLISH = "The log's database cannot be reached; try again shortly"
JAPANESE = "記録のデータベースに接続できません"


@pytest.fixture
def stoppable() -> Iterator[PostgresCluster]:
    """A PostgreSQL of the test's own: the test stops it, never the session's."""
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="edge-pg-")))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def served(tmp_path: Path, stoppable: PostgresCluster) -> Iterator[str]:
    log = open_log(stoppable.url)
    fill(log, HOME)
    log.close()
    settings = Settings(
        stoppable.url,
        registry(tmp_path / "registry.db"),
        tmp_path / "session.key",
        secure_cookies=False,
        clock=FakeClock(datetime.fromisoformat(NOW).timestamp()),
    )
    with serve(create_app(settings)) as url:
        yield url


@pytest.mark.services
def test_the_page_answers_503_while_the_database_is_down(
    served: str, stoppable: PostgresCluster
) -> None:
    guard = Client(served)
    assert guard.login("guard1").status == 303
    assert guard.get(f"/muster?site={BRANCH}").status == 200
    stoppable.stop()
    down = guard.get(f"/muster?site={BRANCH}")
    assert down.status == 503
    assert JAPANESE in down.text  # Japanese unless the reader chose English
    assert "Traceback" not in down.text
    assert "psycopg" not in down.text
    assert down.headers["retry-after"].isdigit()
    guard.cookies["lang"] = "en"
    again = guard.get("/alarms")
    assert (again.status, again.text.strip()) == (503, ENGLISH)
    asked = guard.get("/alarms", headers={"Accept": "application/json"})
    assert asked.status == 503
    assert json.loads(asked.text) == {"error": "log_unavailable", "detail": ENGLISH}


@pytest.mark.services
def test_a_command_ends_with_a_message_and_status_75_while_the_database_is_down(
    stoppable: PostgresCluster,
) -> None:
    @cli.command("outage-probe")
    def probe() -> None:
        log = log_at(stoppable.url)  # opened while the database runs
        stoppable.stop()
        click.echo(log.count())

    try:
        result = CliRunner().invoke(cli, ["outage-probe"])
    finally:
        cli.commands.pop("outage-probe")
    assert result.exit_code == EX_TEMPFAIL, result.output
    assert ENGLISH in result.output
    assert "Traceback" not in result.output
    assert result.exception is not None
    assert isinstance(result.exception, SystemExit)


def test_verify_takes_a_postgresql_sites_own_anchor(pg_database: str) -> None:  # noqa: F811
    log = open_log(pg_database)
    fill(log, HOME)
    log.close()
    heads = CliRunner().invoke(cli, ["head", "--all", "--db", pg_database])
    assert heads.exit_code == 0, heads.output
    branch = next(line for line in heads.output.split() if line.startswith(f"events/{BRANCH}:"))
    held = CliRunner().invoke(cli, ["verify", "--db", pg_database, "--anchor", branch])
    assert held.exit_code == 0, held.output
    assert "log intact" in held.output
    chain, row, _ = branch.rsplit(":", 2)
    forged = CliRunner().invoke(
        cli, ["verify", "--db", pg_database, "--anchor", f"{chain}:{row}:{'0' * 64}"]
    )
    assert forged.exit_code == 1
    assert "TAMPERED" in forged.output
