"""What a device may claim: its provisioned doors, readers, zones, sensors and event types,
read from the site directory's device configurations (and read again when they change)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from console.claims import Claims, Registry
from tests.console.test_log import event

SITE = "test-hall"
NOT_PRESENCE = ("door", "card_ref", "reason")


def gate_toml(device: str, site: str = SITE, door: str | None = None, fire: bool = False) -> str:
    """A gate with one door (named after the device unless `door`) between lobby and staff."""
    door = door or device
    fire_input = "\n[doors.fire_input]\npin = 23\n" if fire else ""
    return f"""
[site]
id = "{site}"
timezone = "Asia/Tokyo"
card_key_file = "/etc/edge/card-key"

[device]
id = "{device}"
role = "{"door" if fire else "gate"}"

[[zones]]
id = "lobby"
name = "Lobby"
kind = "area"

[[zones]]
id = "staff-area"
name = "Staff"
kind = "area"

[[doors]]
id = "{door}"
outside_zone = "lobby"
inside_zone = "staff-area"
fail = "{"safe" if fire else "secure"}"

[doors.relay]
pin = 17

[doors.contact]
pin = 27
{fire_input}
[[readers]]
id = "{door}-in"
kind = "sim"
door = "{door}"
direction = "in"

[[readers]]
id = "{door}-out"
kind = "sim"
door = "{door}"
direction = "out"
"""


def sensor_toml(device: str, site: str = SITE, zone: str = "booth-1") -> str:
    """A sensor node watching one booth zone with one presence sensor."""
    return f"""
[site]
id = "{site}"
timezone = "Asia/Tokyo"

[device]
id = "{device}"
role = "sensor-node"

[[zones]]
id = "{zone}"
name = "Booth"
kind = "booth"

[[presence]]
id = "{zone}-pir"
pin = 17
zone = "{zone}"
"""


def provision(
    site_dir: Path,
    gates: tuple[str, ...] = (),
    sensors: tuple[str, ...] = (),
    site: str = SITE,
) -> Path:
    """Write device configurations as edge-provision keeps them (SITE/devices/{device}.toml)."""
    devices = site_dir / "devices"
    devices.mkdir(parents=True, exist_ok=True)
    for device in gates:
        (devices / f"{device}.toml").write_text(gate_toml(device, site))
    for device in sensors:
        (devices / f"{device}.toml").write_text(sensor_toml(device, site))
    return site_dir


@pytest.fixture
def registry(tmp_path: Path) -> Registry:
    return Registry(provision(tmp_path, gates=("gate-1",), sensors=("booth-3f",)), SITE)


def gate(registry: Registry) -> Claims:
    claims = registry.claims("gate-1")
    assert claims is not None
    return claims


def crossing(device: str, door: str, to_zone: str = "staff-area", **more: Any) -> dict[str, Any]:
    other = "lobby" if to_zone == "staff-area" else "staff-area"
    return event(
        device,
        1,
        {"type": "crossing", "door": door, "from_zone": other, "to_zone": to_zone, **more},
    )


def test_a_gate_may_claim_its_own_door_readers_and_zones(registry: Registry) -> None:
    claims = gate(registry)
    assert claims.event("access", event("gate-1", 1, {"reader": "gate-1-in"})) is None
    assert claims.event("access", crossing("gate-1", "gate-1", reader="gate-1-out")) is None
    forced = event("gate-1", 2, {"kind": "alarm", "type": "door_forced", "state": "raised"})
    assert claims.event("alarm", forced) is None
    assert claims.occupancy("staff-area", {"count": 3, "occupied": True}) is None


@pytest.mark.parametrize(
    ("kind", "changes", "why"),
    [
        ("access", {"door": "stair-b-2f"}, "not one of its doors"),
        ("access", {"reader": "stair-b-2f-in"}, "not one of its readers"),
        ("access", {"reader": ["gate-1-in"]}, "not one of its readers"),
        ("access", {"type": "crossing", "from_zone": "lobby", "to_zone": "vault"}, "vault"),
        ("alarm", {"kind": "alarm", "type": "fire", "state": "raised"}, "fire input"),
        ("presence", {"kind": "presence", "type": "occupied"}, "does not report presence"),
        ("access", {"type": "teleported"}, "does not report access teleported"),
        ("door", {"type": "opened"}, "sent on events/door"),
        ("access", {"card_ref": "0123 4567 raw"}, "not a card reference"),
        ("access", {"device": "gate-2"}, "another device"),
        ("access", {"data": {"door": "stair-b-2f"}}, "not one of its doors"),
    ],
)
def test_a_gate_may_not_claim_what_it_was_not_provisioned_with(
    registry: Registry, kind: str, changes: dict[str, Any], why: str
) -> None:
    problem = gate(registry).event(kind, event("gate-1", 1, changes))
    assert why in str(problem), problem


def test_a_sensor_node_cannot_report_a_crossing_a_door_alarm_or_another_zone(
    registry: Registry,
) -> None:
    sensor = registry.claims("booth-3f")
    assert sensor is not None
    out_of_staff = crossing("booth-3f", "gate-1", to_zone="lobby", ts="9999-12-31T23:59:59.000Z")
    assert "does not report access events" in str(sensor.event("access", out_of_staff))
    forced = event("booth-3f", 2, {"kind": "alarm", "type": "door_forced", "door": "gate-1"})
    assert "does not report alarm door_forced" in str(sensor.event("alarm", forced))
    assert "not one of its zones" in str(sensor.occupancy("staff-area", {"count": 0}))
    occupied = {"kind": "presence", "type": "occupied", "sensor": "booth-1-pir", "zone": "booth-1"}
    presence = {k: v for k, v in event("booth-3f", 3, occupied).items() if k not in NOT_PRESENCE}
    assert sensor.event("presence", presence) is None
    assert "count" in str(sensor.occupancy("booth-1", {"count": 2**63}))


def test_an_unknown_device_has_no_claims_and_a_new_one_is_read_when_it_appears(
    tmp_path: Path, registry: Registry
) -> None:
    assert registry.claims("gate-9") is None
    (tmp_path / "devices" / "gate-9.toml").write_text(gate_toml("gate-9"))
    registry.rescan()
    assert registry.claims("gate-9") is not None


def test_a_changed_configuration_is_read_again(tmp_path: Path, registry: Registry) -> None:
    path = tmp_path / "devices" / "gate-1.toml"
    path.write_text(gate_toml("gate-1", door="gate-east"))
    os.utime(path, (1, 1))  # a different mtime, whatever the file system's resolution
    registry.rescan()
    assert "not one of its doors" in str(gate(registry).event("access", event("gate-1", 1)))
    assert gate(registry).event("access", event("gate-1", 1, {"door": "gate-east"})) is None


def test_a_configuration_for_another_site_or_device_or_invalid_is_refused(tmp_path: Path) -> None:
    devices = tmp_path / "devices"
    devices.mkdir()
    (devices / "gate-1.toml").write_text(gate_toml("gate-1", site="other-hall"))
    (devices / "gate-2.toml").write_text(gate_toml("gate-3"))
    (devices / "gate-4.toml").write_text("role = [")
    registry = Registry(tmp_path, SITE)
    assert [registry.claims(d) for d in ("gate-1", "gate-2", "gate-4")] == [None, None, None]


def test_a_fire_is_claimed_only_by_a_door_with_a_fire_input(tmp_path: Path) -> None:
    devices = tmp_path / "devices"
    devices.mkdir()
    (devices / "stair-b.toml").write_text(gate_toml("stair-b", fire=True))
    claims = Registry(tmp_path, SITE).claims("stair-b")
    assert claims is not None
    fire = {"kind": "alarm", "type": "fire", "state": "raised", "input": "stair-b"}
    assert claims.event("alarm", event("stair-b", 1, fire)) is None
    elsewhere = {**fire, "input": "gate-1"}
    assert "fire input" in str(claims.event("alarm", event("stair-b", 1, elsewhere)))
