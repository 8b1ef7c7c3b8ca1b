"""A sensor node runs without the site card key; a device with readers cannot."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from gpiozero.pins.mock import MockFactory

from edge.errors import EdgeError
from edge.probe import probe
from edge.service import device_card_key, serve
from edge.system import SystemClock
from firmware_config.loader import load_config

from .agent_fixtures import KEY, sim_config


def sensor_node(tmp_path: Path) -> Path:
    """Return a sensor node's configuration with no card key file named and none on disk."""
    device = sim_config(tmp_path, "sensor-node.toml")
    text = re.sub(r"^card_key_file = .*\n", "", device.config.read_text(), flags=re.MULTILINE)
    device.config.write_text(text)
    (tmp_path / "card-key").unlink()
    return device.config


def test_a_sensor_node_reads_no_card_key(tmp_path: Path) -> None:
    config = load_config(sensor_node(tmp_path))
    assert device_card_key(config) is None
    found = {f.item: f for f in probe(config, str(tmp_path / "gpiochip*"))}
    assert found["card key"].ok
    assert "no readers" in found["card key"].detail


def test_a_sensor_node_naming_a_key_file_still_reads_none(tmp_path: Path) -> None:
    device = sim_config(tmp_path, "sensor-node.toml")
    (tmp_path / "card-key").unlink()  # named in the file, absent on disk: never opened
    assert device_card_key(load_config(device.config)) is None


def test_a_gate_reads_its_card_key(tmp_path: Path) -> None:
    assert device_card_key(load_config(sim_config(tmp_path).config)) == KEY


def test_serving_readers_without_a_card_key_is_refused(tmp_path: Path) -> None:
    config = load_config(sim_config(tmp_path).config)
    with pytest.raises(EdgeError, match=r"set site\.card_key_file"):
        serve(
            config,
            card_key=None,
            pin_factory=MockFactory(),
            clock=SystemClock(),
            clock_synced=lambda: True,
            link=False,
        )
