"""Fixtures for the MQTT tests: a private mosquitto per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.broker import Broker, start_broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """Start a private mosquitto on a free loopback port for one test."""
    workdir = tmp_path / "broker"
    workdir.mkdir()
    b = start_broker(workdir)
    yield b
    b.stop()
