"""Presence sensor kinds and room doors in the device configuration: good files and mistakes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firmware_config.errors import ConfigError
from firmware_config.loader import validate_config
from firmware_config.model import Ld2410Presence, MmwavePresence, PirPresence


def node(**extra: Any) -> dict[str, Any]:
    """Return a sensor node with a booth, a hall and one PIR in the booth."""
    data: dict[str, Any] = {
        "site": {"id": "kamakura-city-hall"},
        "device": {"id": "sensors-3f", "role": "sensor-node"},
        "zones": [
            {"id": "booth-1", "name": "Booth 1", "kind": "booth"},
            {"id": "hall", "name": "Hall", "kind": "area"},
        ],
        "presence": [{"id": "booth-1-pir", "pin": 17, "zone": "booth-1"}],
    }
    data.update(extra)
    return data


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        validate_config(data)
    return [str(p) for p in caught.value.problems]


def test_a_sensor_without_kind_is_a_pir_with_its_long_hold() -> None:
    (sensor,) = validate_config(node()).presence
    assert isinstance(sensor, PirPresence)
    assert (sensor.kind, sensor.hold_s) == ("pir", 60)


def test_an_mmwave_output_pin_has_a_short_hold() -> None:
    config = validate_config(
        node(presence=[{"id": "r", "kind": "mmwave", "pin": 22, "zone": "booth-1"}])
    )
    (sensor,) = config.presence
    assert isinstance(sensor, MmwavePresence)
    assert sensor.hold_s == 10


def test_an_ld2410_on_the_uart_takes_its_defaults() -> None:
    config = validate_config(
        node(presence=[{"id": "r", "kind": "ld2410-uart", "zone": "booth-1", "max_gate": 2}])
    )
    (sensor,) = config.presence
    assert isinstance(sensor, Ld2410Presence)
    assert (sensor.port, sensor.baud, sensor.max_gate) == (Path("/dev/serial0"), 256000, 2)
    assert config.pins() == {}
    # Without max_gate, a booth's reach: 3 gates of 0.75 m, not the radar's 6 m.
    config = validate_config(node(presence=[{"id": "r", "kind": "ld2410-uart", "zone": "booth-1"}]))
    (sensor,) = config.presence
    assert isinstance(sensor, Ld2410Presence)
    assert sensor.max_gate == 3


def test_a_room_door_of_a_booth_with_a_sensor_is_valid() -> None:
    config = validate_config(node(room_doors=[{"id": "booth-1-door", "zone": "booth-1", "pin": 5}]))
    (door,) = config.room_doors
    assert (door.open_when, door.pull, door.latch_after_s, door.settle_s) == ("high", "up", 10, 300)
    assert config.pins()[5] == "room_doors[0].pin"


@pytest.mark.parametrize(
    ("edits", "words"),
    [
        (
            {"room_doors": [{"id": "d", "zone": "hall", "pin": 5}]},
            ["room_doors[0].zone", '"area"', 'kind = "booth" or "meeting-room"'],
        ),
        (
            {"room_doors": [{"id": "d", "zone": "nowhere", "pin": 5}]},
            ["room_doors[0].zone", 'no zone "nowhere"', '"booth-1"'],
        ),
        (
            {
                "zones": [{"id": "room-2", "name": "Room 2", "kind": "meeting-room"}],
                "presence": [{"id": "p", "pin": 17, "zone": "room-2"}],
                "room_doors": [{"id": "d", "zone": "room-2", "pin": 17}],
            },
            ["room_doors[0].pin", "GPIO 17", "already used by presence[0].pin"],
        ),
        (
            {
                "zones": [
                    {"id": "room-2", "name": "Room 2", "kind": "meeting-room"},
                    {"id": "booth-1", "name": "Booth 1", "kind": "booth"},
                ],
                "room_doors": [{"id": "d", "zone": "room-2", "pin": 5}],
            },
            ["room_doors[0].zone", "no presence sensor", "add a [[presence]] table"],
        ),
        (
            {"room_doors": [{"id": "d", "zone": "booth-1", "pin": 5, "open_when": "open"}]},
            ["room_doors[0].open_when", '"high"', '"low"'],
        ),
        (
            {"presence": [{"id": "r", "kind": "ld2410-uart", "zone": "booth-1", "pin": 4}]},
            ["presence[0].pin", 'only for kind = "pir", "mmwave"'],
        ),
        (
            {"presence": [{"id": "r", "kind": "radar", "zone": "booth-1"}]},
            ["presence[0].kind", '"pir"', '"mmwave"', '"ld2410-uart"'],
        ),
        (
            {"presence": [{"id": "r", "kind": "ld2410-uart", "zone": "booth-1", "baud": 250000}]},
            ["presence[0].baud", "256000"],
        ),
        (
            {"presence": [{"id": "r", "kind": "ld2410-uart", "zone": "booth-1", "max_gate": 9}]},
            ["presence[0].max_gate", "9"],
        ),
        (
            {
                "presence": [
                    {"id": "a", "kind": "ld2410-uart", "zone": "booth-1"},
                    {"id": "b", "kind": "ld2410-uart", "zone": "booth-1"},
                ]
            },
            ["presence[1].port", "/dev/serial0", "own serial port"],
        ),
    ],
)
def test_mistakes_name_the_place_and_the_fix(edits: dict[str, Any], words: list[str]) -> None:
    found = "\n".join(problems(node(**edits)))
    for word in words:
        assert word in found, f"{word!r} not in:\n{found}"
    assert "Traceback" not in found


def test_a_room_door_may_not_take_the_id_of_a_locked_door() -> None:
    data = node(
        device={"id": "door-3f", "role": "door"},
        doors=[
            {
                "id": "booth-1-door",
                "name": "x",
                "outside_zone": "hall",
                "inside_zone": "booth-1",
                "fail": "secure",
                "relay": {"pin": 4},
            }
        ],
        room_doors=[{"id": "booth-1-door", "zone": "booth-1", "pin": 5}],
    )
    found = "\n".join(problems(data))
    assert "room_doors[0].id" in found
    assert "own id" in found
