"""Keypads and PIN settings on readers: accepted shapes, and mistakes that say how to fix them."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from firmware_config.errors import ConfigError
from firmware_config.loader import validate_config
from firmware_config.readers import MatrixKeypad, UsbKeypad

EXAMPLE = Path(__file__).parents[2] / "firmware_config" / "examples" / "security-gate.toml"


def gate(**reader: Any) -> dict[str, Any]:
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    raw["readers"][0].update(reader)
    return raw


def problem(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as refused:
        validate_config(raw)
    return str(refused.value)


def test_a_matrix_and_a_usb_keypad_are_accepted() -> None:
    matrix = {"kind": "matrix", "rows": [2, 3, 4, 7], "cols": [8, 9, 10]}
    config = validate_config(gate(pin="always", keypad=matrix, pin_timeout_s=15.0))
    reader = config.readers[0]
    assert isinstance(reader.keypad, MatrixKeypad)
    assert (reader.pin, reader.pin_timeout_s, reader.pin_attempts) == ("always", 15.0, 3)
    usb = {"kind": "usb", "device": "/dev/input/by-id/usb-0c45_USB_Keypad-event-kbd"}
    assert isinstance(validate_config(gate(keypad=usb)).readers[0].keypad, UsbKeypad)
    assert validate_config(gate()).readers[0].pin == "never"


def test_pin_always_without_a_keypad_says_how_to_fix_it() -> None:
    text = problem(gate(pin="always"))
    assert "readers[0].pin" in text
    assert "needs a keypad" in text
    assert 'set pin = "never"' in text


@pytest.mark.parametrize(
    ("keypad", "words"),
    [
        ({"kind": "matrix", "rows": [2, 3, 4], "cols": [8, 9, 10]}, "readers[0].keypad.rows"),
        ({"kind": "matrix", "rows": [2, 3, 4, 7], "cols": [8, 9, 9]}, "GPIO 9 is used by two"),
        ({"kind": "matrix", "rows": [2, 3, 4, 40], "cols": [8, 9, 10]}, "GPIO 40"),
        ({"kind": "bluetooth"}, "readers[0].keypad"),
    ],
)
def test_bad_keypads(keypad: dict[str, Any], words: str) -> None:
    assert words in problem(gate(keypad=keypad))


def test_attempts_and_timeout_are_bounded() -> None:
    assert "readers[0].pin_attempts" in problem(gate(pin_attempts=0))
    assert "readers[0].pin_timeout_s" in problem(gate(pin_timeout_s=0.0))


def test_a_keypad_line_on_a_pin_another_part_uses_is_named_with_both_places() -> None:
    relay = gate()["doors"][0]["relay"]["pin"]
    text = problem(gate(keypad={"kind": "matrix", "rows": [2, 3, 4, relay], "cols": [8, 9, 10]}))
    assert f"GPIO {relay} is already used by doors[0].relay.pin" in text
    assert "readers[0].keypad.rows[3]" in text


def test_pin_lockout_has_a_safe_default_and_is_bounded() -> None:
    assert validate_config(gate()).readers[0].pin_lockout_s == 300.0
    assert validate_config(gate(pin_lockout_s=0)).readers[0].pin_lockout_s == 0
    for bad in (-1.0, 86401.0, "300"):
        assert "readers[0].pin_lockout_s" in problem(gate(pin_lockout_s=bad))
