"""Device bundles hold the site card key only for devices with readers (in process, no CLI)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from provisioning.devices import bundle, config_from_example
from provisioning.keys import generate


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    generate(site / "keys")
    for role, device in (("sensor-node", "sensors-3f"), ("gate", "gate-1f"), ("door", "stair-2f")):
        (site / "devices").mkdir(exist_ok=True)
        (site / "devices" / f"{device}.toml").write_text(
            config_from_example(role, "test-site", device), encoding="utf-8"
        )
        (site / "accounts").mkdir(exist_ok=True)
        (site / "accounts" / f"{device}.password").write_text("not-a-real-password\n")
    return site


def members(site: Path, device: str) -> tuple[list[str], str]:
    out = site / "bundles" / f"{device}.tar.gz"
    names = bundle(site, device, out)
    with tarfile.open(out) as tar:
        assert sorted(tar.getnames()) == sorted(names)
        instructions = tar.extractfile("INSTALL.txt").read().decode()  # type: ignore[union-attr]
    return names, instructions


def test_a_sensor_node_bundle_holds_no_card_key(site: Path) -> None:
    names, instructions = members(site, "sensors-3f")
    assert "etc/edge/card-key" not in names
    assert "etc/edge/mqtt-password" in names
    assert "card-key" not in instructions
    assert "card key" not in instructions


@pytest.mark.parametrize("device", ["gate-1f", "stair-2f"])
def test_a_device_with_readers_gets_the_card_key(site: Path, device: str) -> None:
    names, instructions = members(site, device)
    assert "etc/edge/card-key" in names
    assert "chown edge /etc/edge/card-key" in instructions
    with tarfile.open(site / "bundles" / f"{device}.tar.gz") as tar:
        key = tar.extractfile("etc/edge/card-key").read()  # type: ignore[union-attr]
        assert tar.getmember("etc/edge/card-key").mode == 0o600
    assert key == (site / "keys" / "card-key").read_bytes()
