"""`edge-rooms`: every command's help, documented; check, releases and status on real files."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from rooms.checkin import Decision
from rooms.cli import cli
from rooms.config import ServiceConfig
from rooms.journal import OK, Journal
from rooms.view import BuildingView, RoomView
from tests.rooms.service_site import MEETING, NODE, service_config

DOCS = Path(__file__).resolve().parents[2] / "docs" / "rooms.md"
T0 = datetime(2031, 4, 1, 1, 0, tzinfo=UTC)


def commands() -> list[tuple[str, click.Command]]:
    return sorted(cli.commands.items())


@pytest.mark.parametrize(("name", "command"), commands())
def test_every_command_has_help_and_is_documented(name: str, command: click.Command) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    guide = DOCS.read_text()
    assert f"### `edge-rooms {name}" in guide, f"{name} is not in docs/rooms.md"
    for param in command.params:
        for option in getattr(param, "opts", []):
            if option.startswith("--") and option != "--help":
                assert option in guide, f"{name} {option} is not in docs/rooms.md"


def test_the_guide_s_example_validates(tmp_path: Path) -> None:
    [example] = re.findall(r"```toml\n(.*?)```", DOCS.read_text(), re.DOTALL)
    path = tmp_path / "rooms.toml"
    path.write_text(example)
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert "3 rooms (2 bookable), 1 areas, 1 calendars" in result.output


def test_a_bad_file_names_the_key_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "rooms.toml"
    path.write_text('site = "Kamakura City Hall"\nname = "x"\nstate_path = "r.db"\n')
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 2
    assert "site" in result.output
    assert "mqtt" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(cli, ["check", str(tmp_path / "missing.toml")])
    assert result.exit_code == 2
    assert "cannot read it" in result.output


def journal_with_a_release(tmp_path: Path) -> ServiceConfig:
    config = service_config(tmp_path)
    journal = Journal(config.state_path)
    evidence = {"device": NODE, "vacant_since": "not seen occupied", "grace_min": "10"}
    for uid, at in (("old", T0 - timedelta(days=2)), ("b1", T0 + timedelta(minutes=10))):
        release = Decision(
            "released", "cal", uid, at - timedelta(minutes=10), at + timedelta(minutes=50),
            MEETING, at, "nobody came within 10 min of the start; the room is free again",
            evidence,
        )  # fmt: skip
        journal.record(release, OK)
    room = RoomView(
        zone=MEETING, name="Meeting room 2F-1", kind="meeting-room", floor=2,
        status="released", occupied=False, reason="nobody came",
    )  # fmt: skip
    view = BuildingView(site=config.site, name=config.name, at=T0, rooms=(room,))
    journal.save_view(view.model_dump_json())
    journal.close()
    return config


def write_config(tmp_path: Path, config: ServiceConfig) -> Path:
    path = tmp_path / "rooms.toml"
    path.write_text(
        f'site = "{config.site}"\nname = "{config.name}"\nstate_path = "{config.state_path}"\n'
        f'[mqtt]\npassword_file = "{config.mqtt.password_file}"\n'
    )
    return path


def test_releases_lists_the_evidence(tmp_path: Path) -> None:
    path = write_config(tmp_path, journal_with_a_release(tmp_path))
    result = CliRunner().invoke(cli, ["releases", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "2 released" in result.output
    assert "2031-04-01 10:10 meeting-2f-1 booking 10:00-11:00" in result.output
    assert f"device: {NODE}" in result.output
    since = CliRunner().invoke(cli, ["releases", "--config", str(path), "--since", "2031-04-01"])
    assert "1 released" in since.output
    bad = CliRunner().invoke(cli, ["releases", "--config", str(path), "--since", "yesterday"])
    assert bad.exit_code == 2
    assert "--since" in bad.output


def test_status_shows_the_last_view(tmp_path: Path) -> None:
    path = write_config(tmp_path, journal_with_a_release(tmp_path))
    result = CliRunner().invoke(cli, ["status", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "Kamakura City Hall at 2031-04-01 10:00" in result.output
    assert re.search(r"meeting-2f-1\s+released\s+vacant \(nobody came\)", result.output)


def test_no_journal_yet_is_said_plainly(tmp_path: Path) -> None:
    path = write_config(tmp_path, service_config(tmp_path))
    for command in ("releases", "status"):
        result = CliRunner().invoke(cli, [command, "--config", str(path)])
        assert result.exit_code == 1
        assert "edge-rooms run has not run" in result.output
