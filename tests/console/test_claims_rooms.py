"""A sensor node may claim only its own room doors, and latches only of rooms it has a door of."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console.claims import Claims, Registry
from tests.console.test_claims import NOT_PRESENCE, SITE, sensor_toml
from tests.console.test_log import event

ROOM_NODE = (
    sensor_toml("rooms-3f")
    + """
[[zones]]
id = "hall"
name = "Hall"
kind = "area"

[[room_doors]]
id = "booth-1-door"
zone = "booth-1"
pin = 5
"""
)


@pytest.fixture
def node(tmp_path: Path) -> Claims:
    (tmp_path / "devices").mkdir()
    (tmp_path / "devices" / "rooms-3f.toml").write_text(ROOM_NODE)
    claims = Registry(tmp_path, SITE).claims("rooms-3f")
    assert claims is not None
    return claims


def presence(**fields: Any) -> dict[str, Any]:
    body = event("rooms-3f", 1, {"kind": "presence", **fields})
    return {k: v for k, v in body.items() if k not in NOT_PRESENCE}


@pytest.mark.parametrize(
    ("fields", "why"),
    [
        ({"type": "room_door_opened", "room_door": "booth-1-door", "zone": "booth-1"}, None),
        ({"type": "room_door_closed", "room_door": "booth-1-door"}, None),
        ({"type": "room_latched", "zone": "booth-1"}, None),
        ({"type": "room_unlatched", "zone": "booth-1"}, None),
        (
            {"type": "room_door_opened", "room_door": "vault-door", "zone": "booth-1"},
            "room door vault-door is not one of its room doors",
        ),
        ({"type": "room_door_closed", "zone": "booth-1"}, "names no room door of its own"),
        (
            {"type": "room_door_opened", "room_door": "booth-1-door", "zone": "hall"},
            "room door booth-1-door does not close that zone",
        ),
        ({"type": "room_latched", "zone": "hall"}, "zone hall of a room_latched is not a room"),
        ({"type": "room_unlatched"}, "zone None of a room_unlatched is not a room"),
        ({"type": "room_latched", "zone": "vault"}, "zone vault is not one of its zones"),
    ],
)
def test_room_doors_and_latches_are_claimed_only_as_provisioned(
    node: Claims, fields: dict[str, Any], why: str | None
) -> None:
    problem = node.event("presence", presence(**fields))
    if why is None:
        assert problem is None
    else:
        assert why in str(problem), problem


def test_the_claims_know_the_room_doors_and_their_rooms(node: Claims) -> None:
    assert dict(node.room_doors) == {"booth-1-door": "booth-1"}
