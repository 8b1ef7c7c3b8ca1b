"""The `edge-agent` command line: check, schema, and help on every command."""

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import firmware_config
from edge.cli import EXIT_INVALID_CONFIG, cli, main
from firmware_config.loader import config_hash, json_schema, load_config

EXAMPLES = sorted((Path(firmware_config.__file__).parent / "examples").glob("*.toml"))

BROKEN = """\
[site]
id = "test-site"
card_key_file = "/etc/edge/card-key"

[device]
id = "gate-1"
role = "gate"

[[zones]]
id = "lobby"
name = "Lobby"
kind = "area"

[[doors]]
id = "gate-a"
outside_zone = "lobby"
inside_zone = "staff"
fail = "secure"
relay = { pin = 40 }

[[readers]]
id = "gate-a-in"
kind = "sim"
door = "gate-b"
direction = "in"
"""


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path under a group, the group itself first, nested groups included."""
    found = [prefix]
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            found += _commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


COMMANDS = _commands(cli)


def test_the_examples_are_found() -> None:
    assert EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_check_accepts_each_example(path: Path) -> None:
    config = load_config(path)

    result = CliRunner().invoke(cli, ["check", "--config", str(path)])

    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert config.device.id in result.stdout
    assert f"role {config.device.role}" in result.stdout
    assert config_hash(config) in result.stdout


def test_check_summary_counts_the_parts() -> None:
    gate = next(path for path in EXAMPLES if path.name == "security-gate.toml")

    result = CliRunner().invoke(cli, ["check", "--config", str(gate)])

    for words in ("1 door,", "2 readers", "0 presence sensors", "2 zones"):
        assert words in result.stdout


def test_check_summary_counts_room_doors_and_names_the_radars() -> None:
    node = next(path for path in EXAMPLES if path.name == "sensor-node.toml")

    result = CliRunner().invoke(cli, ["check", "--config", str(node)])

    assert result.exit_code == 0, result.output
    for words in ("0 doors,", "2 room doors,", "0 readers,", "6 presence sensors and 5 zones"):
        assert words in result.stdout
    radars = result.stdout.split("radars: ", 1)[1].split(";", 1)[0]
    assert radars == (
        "phone-booth-3f-radar (OUT pin on GPIO 22), "
        "focus-3f-1-radar (serial /dev/serial0 at 256000 baud)"
    )


def test_check_summary_names_no_room_doors_or_radars_where_there_are_none() -> None:
    gate = next(path for path in EXAMPLES if path.name == "security-gate.toml")

    result = CliRunner().invoke(cli, ["check", "--config", str(gate)])

    assert "room door" not in result.stdout
    assert "radars" not in result.stdout


def test_check_lists_every_problem_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(BROKEN, encoding="utf-8")

    result = CliRunner().invoke(cli, ["check", "--config", str(path)])

    assert result.exit_code == EXIT_INVALID_CONFIG == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"{path}: 3 problems:"
    assert [line.split(" ")[2] for line in lines[1:]] == [
        "doors[0].inside_zone",
        "doors[0].relay.pin",
        "readers[0].door",
    ]


def test_check_on_a_missing_file_exits_2_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "missing.toml"

    result = CliRunner().invoke(cli, ["check", "--config", str(path)])

    assert result.exit_code == 2
    assert f"{path}: 1 problem:" in result.stderr
    assert "cannot read" in result.stderr


def test_check_requires_a_config() -> None:
    result = CliRunner().invoke(cli, ["check"])

    assert result.exit_code == 2
    assert "--config" in result.stderr


def test_schema_prints_the_device_config_json_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])

    assert result.exit_code == 0
    printed = json.loads(result.stdout)
    assert printed["title"] == "DeviceConfig"
    assert printed == json_schema()


def test_there_are_commands_to_document() -> None:
    assert {"check", "schema"} <= {path[-1] for path in COMMANDS if path}


@pytest.mark.parametrize("path", COMMANDS, ids=lambda path: " ".join(("edge-agent", *path)))
def test_help_works_and_says_something(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])

    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: ")
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    assert command.help
    assert command.help.split("\n")[0] in result.stdout


def test_main_is_the_console_entry_point(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])

    assert caught.value.code == 0
    assert "Usage: edge-agent" in capsys.readouterr().out


def test_the_module_runs_as_a_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "schema"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )

    assert json.loads(result.stdout)["title"] == "DeviceConfig"
