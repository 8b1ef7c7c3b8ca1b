"""Reading TOML files: syntax errors, unreadable files, the hash, the logged config."""

import datetime
import json
import pickle
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import firmware_config
from edge.errors import EdgeError
from firmware_config.errors import ConfigError, Problem
from firmware_config.loader import (
    config_hash,
    load_config,
    masked,
    parse_config,
    validate_config,
)
from firmware_config.model import DeviceConfig, SimReader

GATE = (Path(firmware_config.__file__).parent / "examples" / "security-gate.toml").read_text(
    encoding="utf-8"
)

MINIMAL = """\
[site]
id = "test-site"

[device]
id = "node-1"
role = "sensor-node"

[[zones]]
id = "booth"
name = "Booth"
kind = "booth"

[[presence]]
id = "booth-pir"
pin = 17
zone = "booth"
"""


def _only_problem(text: str) -> Problem:
    with pytest.raises(ConfigError) as caught:
        parse_config(text)
    assert len(caught.value.problems) == 1
    return caught.value.problems[0]


def test_bad_toml_syntax_names_the_line_and_column() -> None:
    text = MINIMAL.replace('role = "sensor-node"', "role = sensor-node")

    problem = _only_problem(text)

    assert problem.path == "line 6, column 8"
    assert "role = sensor-node" in problem.message
    assert "double quotes" in problem.fix


def test_a_table_declared_twice_is_a_syntax_error_with_a_fix() -> None:
    problem = _only_problem(MINIMAL + '\n[device]\nid = "node-2"\n')

    assert problem.path == f"line {len(MINIMAL.splitlines()) + 2}, column 8"
    assert problem.message.startswith("cannot declare [device] twice")
    assert "[[doors]]" in problem.fix


def test_a_time_without_seconds_gets_a_hint() -> None:
    problem = _only_problem(
        MINIMAL.replace('kind = "booth"', 'kind = "booth"\nanti_passback_forgive_at = 03:00')
    )

    assert "03:00:00" in problem.fix


@pytest.mark.parametrize("written", ["03:00:00", '"03:00"'])
def test_forgive_time_is_a_toml_time_or_text(written: str) -> None:
    config = parse_config(
        MINIMAL.replace('kind = "booth"', f'kind = "booth"\nanti_passback_forgive_at = {written}')
    )

    assert config.zones[0].anti_passback_forgive_at == datetime.time(3, 0)


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_text(MINIMAL, encoding="utf-8")

    assert load_config(path).device.id == "node-1"


def test_a_missing_file_is_a_config_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert caught.value.source == str(path)
    assert str(path) in str(caught.value)


def test_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path)


def test_a_shift_jis_file_is_refused_with_a_fix(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(MINIMAL.replace('"Booth"', '"相談ブース"').encode("shift_jis"))

    with pytest.raises(ConfigError, match="UTF-8"):
        load_config(path)


def test_a_utf8_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(b"\xef\xbb\xbf" + MINIMAL.encode("utf-8"))

    assert load_config(path).site.id == "test-site"


def test_defaults_are_filled_in() -> None:
    config = parse_config(MINIMAL)

    assert config.site.timezone == "Asia/Tokyo"
    assert config.site.closure_days[0] == "12-29"
    assert config.device.fire_reset == "manual"
    assert config.mqtt.port == 1883
    assert config.store.path == Path("/var/lib/edge/agent.db")


def test_config_hash_ignores_comments_and_layout() -> None:
    rewritten = "# a comment\n" + MINIMAL.replace(
        'id = "test-site"', 'id   =   "test-site"   # site'
    )

    assert config_hash(parse_config(rewritten)) == config_hash(parse_config(MINIMAL))


def test_config_hash_sees_written_defaults_as_the_same_config() -> None:
    explicit = MINIMAL.replace(
        'role = "sensor-node"', 'role = "sensor-node"\nfire_reset = "manual"'
    )

    assert config_hash(parse_config(explicit)) == config_hash(parse_config(MINIMAL))


def test_config_hash_changes_with_any_value() -> None:
    changed = MINIMAL.replace("pin = 17", "pin = 18")

    digest = config_hash(parse_config(MINIMAL))
    assert config_hash(parse_config(changed)) != digest
    assert len(digest) == 16
    int(digest, 16)


def test_masked_is_plain_data_for_the_start_log() -> None:
    config = parse_config(GATE)

    logged = json.loads(json.dumps(masked(config)))

    assert logged["mqtt"]["password_file"] == "/etc/edge/mqtt-password"
    assert logged["readers"][0]["kind"] == "pcsc"
    assert DeviceConfig.model_validate(logged) == config


def test_the_model_is_frozen() -> None:
    config = parse_config(MINIMAL)

    with pytest.raises(ValidationError):
        config.device.id = "other"  # type: ignore[misc]


def test_pins_lists_every_pin_in_use() -> None:
    config = parse_config(GATE)

    pins = config.pins()

    assert pins[17] == "doors[0].relay.pin"
    assert pins[16] == "indicators[1].buzzer_pin"
    assert len(pins) == 9


def test_a_config_built_in_code_is_cross_checked(gate_data: dict[str, Any]) -> None:
    config = validate_config(gate_data)
    stray = SimReader(kind="sim", id="stray", door="gate-z", direction="in")

    with pytest.raises(ValidationError, match='no door "gate-z"'):
        DeviceConfig(
            site=config.site,
            device=config.device,
            zones=config.zones,
            doors=config.doors,
            readers=(*config.readers, stray),
        )


def test_problem_reads_as_one_line_with_its_fix() -> None:
    problem = Problem(
        "doors[1].relay.pin", "40", "GPIO 40 does not exist on a Raspberry Pi", "use 2 to 27"
    )

    assert (
        str(problem)
        == "doors[1].relay.pin = 40: GPIO 40 does not exist on a Raspberry Pi; fix: use 2 to 27"
    )


def test_config_error_is_a_value_error_and_an_edge_error() -> None:
    error = ConfigError([Problem("a", "1", "m", "f")])

    assert isinstance(error, ValueError)
    assert isinstance(error, EdgeError)


def test_config_error_survives_pickling() -> None:
    error = ConfigError([Problem("b", "2", "m", "f"), Problem("a", "1", "m", "f")], source="x.toml")

    copy = pickle.loads(pickle.dumps(error))

    assert copy.problems == error.problems
    assert [problem.path for problem in copy.problems] == ["a", "b"]
    assert copy.source == "x.toml"
