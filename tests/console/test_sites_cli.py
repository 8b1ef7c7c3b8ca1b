"""`edge-console sites`, `devices`, `muster --site` and `log --site` on a log of two sites,
SQLite and PostgreSQL alike (the command run in this process, its output captured)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from console.cli import cli
from console.log import open_log
from tests.console.sites_fixtures import BRANCH, HOME, fill, registry
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def log_and_registry(request: pytest.FixtureRequest, tmp_path: Path) -> list[str]:
    """`--db` and `--registry` of the two sites' log (SQLite, or PostgreSQL)."""
    if request.param == "sqlite":
        target, home = str(tmp_path / "log.db"), None
    else:
        target, home = request.getfixturevalue("pg_database"), HOME
    log = open_log(target)
    fill(log, home, with_users=False)
    log.close()
    return ["--db", target, "--registry", str(registry(tmp_path / "registry.db"))]


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_sites_lists_each_sites_link_and_devices_online(log_and_registry: list[str]) -> None:
    result = run("sites", *log_and_registry)
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line.split() for line in result.output.splitlines()[1:]}
    assert lines[BRANCH][1] == "CUT"
    assert "42" in lines[BRANCH]
    assert lines[BRANCH][-1] == "0/1"
    assert lines[HOME][1] == "unknown"
    assert lines[HOME][-1] == "1/1"


def test_muster_of_one_site_lists_only_its_people(log_and_registry: list[str]) -> None:
    branch = run("muster", *log_and_registry, "--site", BRANCH)
    assert branch.exit_code == 0, branch.output
    assert branch.output.splitlines()[:2] == ["inside the security line: 1", f"site {BRANCH}: 1"]
    assert "K10001" in branch.output
    assert "K10002" not in branch.output
    every = run("muster", *log_and_registry)
    assert [line for line in every.output.splitlines() if line.startswith("site ")] == [
        f"site {BRANCH}: 1",
        f"site {HOME}: 2",
    ]


def test_devices_and_log_keep_to_the_site_asked_for(log_and_registry: list[str]) -> None:
    devices = run("devices", *log_and_registry, "--site", BRANCH)
    assert devices.exit_code == 0, devices.output
    assert devices.output.splitlines()[0] == f"site {BRANCH}"
    assert "gate-h1" in devices.output
    assert "gate-1 " not in devices.output
    found = run("log", *log_and_registry, "--site", HOME)
    assert found.exit_code == 0, found.output
    assert {line.split()[1] for line in found.output.splitlines()} == {"gate-1"}


def test_a_site_the_log_lacks_is_a_usage_error_naming_its_sites(
    log_and_registry: list[str],
) -> None:
    for command in ("muster", "devices", "log"):
        result = run(command, *log_and_registry, "--site", "zushi")
        assert result.exit_code == 2, command
        assert "--site" in result.output
        assert f"use one of: {BRANCH}, {HOME}" in result.output


def test_alarms_of_one_site_or_every_site_named_by_site(log_and_registry: list[str]) -> None:
    branch = run("alarms", *log_and_registry, "--site", BRANCH)
    assert branch.exit_code == 0, branch.output
    assert [line.split("  ")[3] for line in branch.output.splitlines()] == ["gate-h1"]
    every = run("alarms", *log_and_registry)
    assert sorted(line.split("  ")[3] for line in every.output.splitlines()) == [
        f"{BRANCH}/gate-h1",
        f"{HOME}/gate-1",
    ]


def test_verify_names_a_dropped_table_instead_of_a_traceback(
    log_and_registry: list[str],
) -> None:
    log = open_log(log_and_registry[1])
    with log.transaction() as conn:
        conn.execute("DROP TABLE devices")
    log.close()
    result = run("verify", *log_and_registry[:2])
    assert result.exit_code == 1, result.output
    assert "TAMPERED: devices: cannot be read (" in result.output
