"""`edge-rooms`: every command's help, documented; check, releases and status on real files."""

from __future__ import annotations

import logging
import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
import httpx
import pytest
from click.testing import CliRunner

from rooms.checkin import Decision
from rooms.cli import cli, set_up_logging
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


def test_run_stops_with_a_clear_word_when_the_web_port_is_taken(tmp_path: Path) -> None:
    config = service_config(tmp_path)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        path = write_config(tmp_path, config)
        port = taken.getsockname()[1]
        path.write_text(path.read_text() + f'[web]\nhost = "127.0.0.1"\nport = {port}\n')
        result = CliRunner().invoke(cli, ["run", "--config", str(path)])
    finally:
        taken.close()
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    assert result.exit_code == 1, result.output
    assert f"cannot serve the floor view on 127.0.0.1:{port}" in result.output
    assert "--no-web" in result.output


def test_the_http_clients_request_lines_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200)

    caplog.set_level(logging.INFO)
    set_up_logging()
    try:
        with httpx.Client(transport=httpx.MockTransport(answer)) as client:
            client.put("https://matrix.city.example/_matrix/client/v3/presence/@tanaka:city/status")
    finally:
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.NOTSET)
    assert "@tanaka" not in caplog.text


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('[[calendars]]\nkind = "caldav"\nid = "c"\nurl = "http://cal.city.example/"\n'
         'username = "u"\npassword_file = "p"\n', "url"),
        ('[[calendars]]\nkind = "garoon"\nid = "g"\nbase_url = "http://grn.city.example/"\n'
         'username = "u"\npassword_file = "p"\n', "base_url"),
        ('[[calendars]]\nkind = "graph"\nid = "m"\ntenant = "t"\nclient_id = "c"\n'
         'client_secret_file = "s"\ntoken_url = "http://login.example/{tenant}/token"\n',
         "token_url"),
        ('[[presence]]\nkind = "matrix"\nbase_url = "http://matrix.city.example"\n'
         'admin_token_file = "t"\n', "base_url"),
    ],
)  # fmt: skip
def test_a_secret_is_never_sent_over_plain_http_beyond_loopback(
    tmp_path: Path, table: str, key: str
) -> None:
    path = write_config(tmp_path, service_config(tmp_path))
    path.write_text(path.read_text() + table)
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 2, result.output
    assert key in result.output
    assert "use https://" in result.output
    loopback = table.replace("cal.city.example", "127.0.0.1").replace("grn.city.example", "[::1]")
    loopback = loopback.replace("login.example", "localhost").replace(
        "matrix.city.example", "127.0.0.2"
    )
    path.write_text(write_config(tmp_path, service_config(tmp_path)).read_text() + loopback)
    assert CliRunner().invoke(cli, ["check", str(path)]).exit_code == 0


def test_matrix_presence_is_refreshed_before_synapse_lets_it_lapse(tmp_path: Path) -> None:
    path = write_config(tmp_path, service_config(tmp_path))
    path.write_text(
        path.read_text()
        + '[[presence]]\nkind = "matrix"\nbase_url = "https://matrix.city.example"\n'
        'admin_token_file = "t"\nrefresh_s = 30\n'
    )
    result = CliRunner().invoke(cli, ["check", str(path)])
    assert result.exit_code == 2, result.output
    assert "refresh_s" in result.output
