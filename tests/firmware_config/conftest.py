"""A small valid gate configuration that tests copy and break one way at a time."""

from typing import Any

import pytest


@pytest.fixture
def gate_data() -> dict[str, Any]:
    """Return a fresh, valid configuration of a gate as parsed TOML would give it."""
    return {
        "site": {"id": "test-site", "card_key_file": "/etc/edge/card-key"},
        "device": {"id": "gate-1", "role": "gate"},
        "zones": [
            {"id": "lobby", "name": "ロビー", "kind": "area"},
            {"id": "staff", "name": "Staff", "kind": "area", "anti_passback": "hard"},
        ],
        "doors": [
            {
                "id": "gate-a",
                "outside_zone": "lobby",
                "inside_zone": "staff",
                "fail": "secure",
                "relay": {"pin": 17},
                "contact": {"pin": 27},
                "exit_button": {"pin": 22},
            }
        ],
        "readers": [
            {
                "id": "gate-a-in",
                "kind": "pcsc",
                "door": "gate-a",
                "direction": "in",
                "match": "Reader 00 00",
            },
            {
                "id": "gate-a-out",
                "kind": "pcsc",
                "door": "gate-a",
                "direction": "out",
                "match": "Reader 01 00",
            },
        ],
        "indicators": [
            {"id": "gate-a-in-led", "reader": "gate-a-in", "green_pin": 5, "red_pin": 6}
        ],
    }
