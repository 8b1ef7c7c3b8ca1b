"""edge-provision for the rooms service: its account, its ACL, and the id no device may take."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from provisioning.cli import cli

SITE = "kamakura-city-hall"


def provision(directory: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, [*args, "--dir", str(directory)])
    return result.exit_code, result.output


def test_the_rooms_account_and_its_acl(tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert provision(site, "site", "init", "--site", SITE)[0] == 0
    code, out = provision(site, "account", "add", "rooms", "--role", "rooms")
    assert code == 0, out
    assert (site / "accounts" / "rooms.password").stat().st_mode & 0o077 == 0
    code, out = provision(site, "broker", "config", "--out", str(tmp_path / "broker"))
    assert code == 0, out
    acl = (tmp_path / "broker" / "acl").read_text()
    block = acl.split("user rooms\n")[1].split("\n\n")[0].splitlines()
    assert block == [
        f"topic read edge/{SITE}/+/status",
        f"topic read edge/{SITE}/+/occupancy/#",
        f"topic read edge/{SITE}/+/events/access",
        f"topic read edge/{SITE}/+/events/door",
        f"topic write edge/{SITE}/rooms/status",
        f"topic write edge/{SITE}/rooms/view",
        f"topic write edge/{SITE}/rooms/ha/#",
        "topic write homeassistant/binary_sensor/+/config",
        "topic write homeassistant/sensor/+/config",
        "topic read homeassistant/status",
    ]


def test_no_device_may_be_named_rooms(tmp_path: Path) -> None:
    site = tmp_path / "site"
    provision(site, "site", "init", "--site", SITE)
    code, out = provision(site, "device", "add", "rooms", "--role", "sensor-node")
    assert code == 2
    assert "reserved" in out
    assert "pick another id" in out
    code, out = provision(site, "account", "add", "rooms", "--role", "device")
    assert code == 2
    assert "reserved" in out
    assert provision(site, "device", "add", "rooms-sensors-2f", "--role", "sensor-node")[0] == 0
