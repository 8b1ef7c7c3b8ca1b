"""Every example configuration validates, so installers can start from any of them."""

from pathlib import Path

import pytest

import firmware_config
from firmware_config.loader import load_config

EXAMPLES = sorted((Path(firmware_config.__file__).parent / "examples").glob("*.toml"))


def test_there_are_examples_to_check() -> None:
    assert len(EXAMPLES) >= 3


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_validates(path: Path) -> None:
    config = load_config(path)

    assert config.site.id == "kamakura-city-hall"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda path: path.name)
def test_example_explains_itself_with_comments(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()

    assert sum(line.lstrip().startswith("#") for line in lines) >= 3


@pytest.mark.parametrize(
    ("name", "role"),
    [
        ("security-gate.toml", "gate"),
        ("stairway-door.toml", "door"),
        ("sensor-node.toml", "sensor-node"),
    ],
)
def test_there_is_an_example_for_each_role(name: str, role: str) -> None:
    paths = {path.name: path for path in EXAMPLES}

    assert load_config(paths[name]).device.role == role


def test_gate_example_keeps_its_two_readers_apart() -> None:
    config = load_config(next(path for path in EXAMPLES if path.name == "security-gate.toml"))

    assert sorted(reader.direction for reader in config.readers) == ["in", "out"]
    assert {zone.id: zone.anti_passback for zone in config.zones}["staff-area"] == "hard"


def test_the_security_line_takes_proven_cards_only() -> None:
    config = load_config(next(path for path in EXAMPLES if path.name == "security-gate.toml"))

    assert config.device.role == "gate"
    assert {reader.id: reader.security for reader in config.readers} == {
        "gate-east-in": "authenticated",
        "gate-east-out": "authenticated",
    }
