"""Only a device with readers names the site card key; one with readers must."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

import firmware_config
from firmware_config.errors import ConfigError
from firmware_config.loader import load_config, validate_config

EXAMPLES = Path(firmware_config.__file__).parent / "examples"


def test_readers_without_a_card_key_file_are_refused_with_the_fix(
    gate_data: dict[str, Any],
) -> None:
    del gate_data["site"]["card_key_file"]
    with pytest.raises(ConfigError) as caught:
        validate_config(gate_data)
    (problem,) = caught.value.problems
    assert problem.path == "site.card_key_file"
    assert "readers" in problem.message
    assert 'card_key_file = "/etc/edge/card-key"' in problem.fix
    assert "device bundle" in problem.fix


def test_the_sensor_node_example_validates_without_a_card_key() -> None:
    path = EXAMPLES / "sensor-node.toml"
    assert "card_key_file" not in tomllib.loads(path.read_text(encoding="utf-8"))["site"]
    config = load_config(path)
    assert config.readers == ()
    assert config.site.card_key_file is None


@pytest.mark.parametrize("example", ["security-gate.toml", "stairway-door.toml"])
def test_examples_with_readers_name_the_card_key(example: str) -> None:
    config = load_config(EXAMPLES / example)
    assert config.readers
    assert config.site.card_key_file == Path("/etc/edge/card-key")
