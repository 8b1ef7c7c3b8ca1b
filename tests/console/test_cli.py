"""`edge-console` as a security manager runs it, on a log filled by a real simulated day."""

from __future__ import annotations

import csv
import sqlite3
import time
from datetime import time as clock
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from console.chain import EVENTS, GENESIS, row_hash
from console.cli import cli
from console.log import CentralLog
from console.sessions import SessionStore
from console.users import audit_trail, check_password
from simulator.scenario import Fault, Scenario
from tests.console.commands import edge_console
from tests.simulator.city import played

from .web_fixtures import HOSTILE_DEPARTMENT, HOSTILE_DEVICE, hostile_site

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, set[str]]:
    """A morning on the small building: the console's log, the registry, who is inside."""
    scenario = Scenario.model_validate(
        {
            "date": "2026-12-01",
            "start": clock(7, 30),
            "end": clock(9, 30),
            "seed": 2,
            "faults": [Fault(at=clock(9, 0), kind="door_forced", door="stair-a-2f")],
        }
    )
    run = tmp_path_factory.mktemp("cli")
    with played(run, scenario) as (sim, report):
        assert report.ok
        inside = set(sim.world.truth.inside)
    return run / "console" / "log.db", run / "site" / "registry.db", inside


@pytest.mark.services  # plays a simulated day
def test_muster_lists_exactly_who_is_inside(day: tuple[Path, Path, set[str]]) -> None:
    log, registry, inside = day
    result = edge_console("muster", "--db", str(log), "--registry", str(registry))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[0] == f"inside the security line: {len(inside)}"
    listed = {word for line in result.stdout.splitlines()[1:] for word in line.split()}
    assert inside <= listed
    assert not {w for w in listed if w.startswith("K2") and len(w) == 6} - inside


@pytest.mark.services  # plays a simulated day
def test_log_search_by_person_door_and_result(day: tuple[Path, Path, set[str]]) -> None:
    log, registry, inside = day
    someone = sorted(inside)[0]
    result = edge_console("log", "--db", str(log), "--registry", str(registry), "--person", someone)
    assert result.returncode == 0, result.stderr
    assert someone in result.stdout
    assert "access/crossing" in result.stdout
    forced = edge_console("log", "--db", str(log), "--result", "alarm", "--door", "stair-a-2f")
    assert "alarm/door_forced" in forced.stdout


@pytest.mark.services  # plays a simulated day
def test_export_writes_csv_and_is_audited(day: tuple[Path, Path, set[str]], tmp_path: Path) -> None:
    log, registry, _ = day
    out = tmp_path / "denied.csv"
    result = edge_console(
        "export",
        "--db",
        str(log),
        "--registry",
        str(registry),
        "--result",
        "granted",
        "--out",
        str(out),
        "--by",
        "manager1",
    )
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8-sig")
    assert text.startswith("ts,device,id,kind,type,door,reason,staff_no,name,department")
    assert len(text.splitlines()) > 10
    audit = sqlite3.connect(log).execute("SELECT username, action FROM audit").fetchall()
    assert ("manager1", "export") in audit


@pytest.mark.services  # plays a simulated day
def test_verify_finds_an_edited_a_deleted_and_a_swapped_row(
    day: tuple[Path, Path, set[str]], tmp_path: Path
) -> None:
    log, _, _ = day
    assert edge_console("verify", "--db", str(log)).returncode == 0
    for damage in (
        "UPDATE events SET body = replace(body, '\"seq\":', '\"seq\": ') WHERE row = 40",
        "DELETE FROM events WHERE row = 41",
        "UPDATE events SET row = CASE row WHEN 50 THEN 51 WHEN 51 THEN 50 END "
        "WHERE row IN (50, 51)",
    ):
        copy = tmp_path / f"copy-{abs(hash(damage))}.db"
        source = sqlite3.connect(log)
        target = sqlite3.connect(copy)
        source.backup(target)
        source.close()
        if "CASE row" in damage:  # swap through a free row number (row is the primary key)
            target.executescript(
                "UPDATE events SET row = -1 WHERE row = 50; UPDATE events SET row = 50 "
                "WHERE row = 51; UPDATE events SET row = 51 WHERE row = -1;"
            )
        else:
            target.execute(damage)
        target.commit()
        target.close()
        result = edge_console("verify", "--db", str(copy))
        assert result.returncode == 1, damage
        assert "TAMPERED" in result.stdout


@pytest.mark.services  # plays a simulated day
def test_a_log_rewritten_from_start_to_end_fails_its_anchor(
    day: tuple[Path, Path, set[str]], tmp_path: Path
) -> None:
    log, _, _ = day
    anchor = edge_console("head", "--db", str(log)).stdout.strip()
    row, digest = anchor.split(":")
    assert len(digest) == 64
    copy = tmp_path / "rewritten.db"
    source, target = sqlite3.connect(log), sqlite3.connect(copy)
    source.backup(target)
    source.close()
    # Someone with write access edits a row and recomputes every hash after it: the chain
    # itself is valid again, only the anchor kept outside can tell.
    target.execute("UPDATE events SET body = replace(body, '\"seq\":', '\"seq\": ') WHERE row = 3")
    previous = GENESIS
    target.row_factory = sqlite3.Row
    for stored in target.execute("SELECT * FROM events ORDER BY row").fetchall():
        previous = row_hash(previous, EVENTS, dict(stored))
        target.execute("UPDATE events SET hash = ? WHERE row = ?", [previous, stored["row"]])
    target.execute("UPDATE chain_heads SET hash = ? WHERE chain = 'events'", [previous])
    target.commit()
    target.close()
    assert edge_console("verify", "--db", str(copy)).returncode == 0  # the chain alone: fooled
    anchored = edge_console("verify", "--db", str(copy), "--anchor", anchor)
    assert anchored.returncode == 1
    assert f"row {row}" in anchored.stdout
    assert "rewritten" in anchored.stdout
    assert edge_console("verify", "--db", str(log), "--anchor", anchor).returncode == 0


def test_users_add_role_list_and_bad_input(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    added = edge_console(
        "users",
        "add",
        "guard1",
        "--role",
        "guard",
        "--db",
        str(db),
        stdin="a long enough password\n",
    )
    assert added.returncode == 0, added.stderr
    weak = edge_console(
        "users", "add", "guard2", "--role", "guard", "--db", str(db), stdin="short\n"
    )
    assert weak.returncode == 2
    assert "at least 12 characters" in weak.stderr
    assert edge_console("users", "role", "guard1", "manager", "--db", str(db)).returncode == 0
    listed = edge_console("users", "list", "--db", str(db))
    assert "guard1" in listed.stdout
    assert "manager" in listed.stdout
    stored = sqlite3.connect(db).execute("SELECT password_hash FROM users").fetchone()[0]
    assert stored.startswith("$argon2id$")
    assert "a long enough password" not in stored
    missing = edge_console("users", "role", "nobody", "guard", "--db", str(db))
    assert missing.returncode == 2


def test_every_command_has_help() -> None:
    def walk(group: click.Group, prefix: list[str]) -> list[list[str]]:
        found = [prefix]
        for name, command in group.commands.items():
            found += (
                walk(command, [*prefix, name])
                if isinstance(command, click.Group)
                else [[*prefix, name]]
            )
        return found

    # In this process: a process per command took past the test timeout on a busy machine.
    assert edge_console("--help").returncode == 0
    for path in walk(cli, []):
        result = CliRunner().invoke(cli, [*path, "--help"], catch_exceptions=False)
        assert result.exit_code == 0, path
        assert "Usage:" in result.output


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["log", "--before", "²"], "--before"),
        (["log", "--before", "9223372036854775808"], "--before"),
        (["log", "--since", "0001-01-01"], "--since"),
        (["log", "--until", "9999-12-31T23:59:59-12:00"], "--until"),
        (["log", "--since", "yesterday"], "--since"),
        (["log", "--result", "everything"], "--result"),
        (["log", "--person", "x" * 101], "--person"),
        (["export", "--out", "out.csv", "--since", "2026-13-01"], "--since"),
    ],
)
def test_bad_search_options_get_a_usage_error_not_a_traceback(
    tmp_path: Path, args: list[str], option: str
) -> None:
    result = edge_console(*args, "--db", str(tmp_path / "log.db"))
    assert result.returncode == 2, result.stderr
    assert f"Invalid value for {option}: " in result.stderr
    assert "Traceback" not in result.stderr
    assert "Warning" not in result.stderr
    assert "use" in result.stderr  # says what is accepted


def test_hostile_names_and_device_fields_reach_neither_terminal_nor_spreadsheet(
    tmp_path: Path,
) -> None:
    log, registry = hostile_site(tmp_path)
    where = ["--db", str(log), "--registry", str(registry)]
    for command in (["log"], ["muster"], ["log", "--person", "K90001"]):
        result = edge_console(*command, *where)
        assert result.returncode == 0, result.stderr
        assert "Mallory" in result.stdout
        printed = result.stdout + result.stderr
        assert not [c for c in printed if (ord(c) < 32 and c != "\n") or 0x7F <= ord(c) <= 0x9F]
        assert "\u202e" not in printed
    out = tmp_path / "hostile.csv"
    exported = edge_console("export", *where, "--out", str(out), "--by", "manager1")
    assert exported.returncode == 0, exported.stderr
    rows = list(csv.DictReader(out.read_text(encoding="utf-8-sig").splitlines()))
    mallory = [r for r in rows if r["staff_no"] == "K90001"]
    assert len(mallory) == 3
    for row in mallory:
        assert row["name"].startswith("'=HYPERLINK(")
        assert row["department"] == "'" + HOSTILE_DEPARTMENT
    assert {r["device"] for r in mallory} == {"gate-2", "'" + HOSTILE_DEVICE}
    for row in rows:
        assert not any(cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())


def test_users_disable_enable_remove_and_password_end_web_sessions(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    for name in ("guard1", "guard2"):
        added = edge_console(
            "users", "add", name, "--role", "guard", "--db", str(db), stdin="a long password!\n"
        )
        assert added.returncode == 0, added.stderr
    log = CentralLog(db)
    sessions = SessionStore(log, time.time, idle_s=600, lifetime_s=3600)

    def session_of(user: str) -> str:
        token, _ = sessions.start(user)
        assert sessions.find(token) is not None
        return token

    token = session_of("guard1")
    disabled = edge_console("users", "disable", "guard1", "--db", str(db), "--by", "chief")
    assert disabled.returncode == 0, disabled.stderr
    assert "1 web sessions ended" in disabled.stdout
    assert sessions.find(token) is None
    assert check_password(log, "guard1", "a long password!") is None
    assert "disabled" in edge_console("users", "list", "--db", str(db)).stdout
    assert edge_console("users", "enable", "guard1", "--db", str(db)).returncode == 0
    assert check_password(log, "guard1", "a long password!") == "guard"

    token = session_of("guard1")
    changed = edge_console(
        "users", "password", "guard1", "--db", str(db), stdin="a new long password\n"
    )
    assert changed.returncode == 0, changed.stderr
    assert sessions.find(token) is None
    assert check_password(log, "guard1", "a new long password") == "guard"
    short = edge_console("users", "password", "guard1", "--db", str(db), stdin="short\n")
    assert short.returncode == 2
    assert "at least 12 characters" in short.stderr

    token = session_of("guard2")
    removed = edge_console("users", "remove", "guard2", "--db", str(db))
    assert removed.returncode == 0, removed.stderr
    assert sessions.find(token) is None
    assert "guard2" not in edge_console("users", "list", "--db", str(db)).stdout
    missing = edge_console("users", "remove", "nobody", "--db", str(db))
    assert missing.returncode == 2
    assert "no user 'nobody'" in missing.stderr
    actions = [a for _, who, a, _ in audit_trail(log)]
    for action in ("user disabled", "user enabled", "password changed", "user removed"):
        assert action in actions
    log.close()
