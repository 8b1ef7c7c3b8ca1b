"""Published snapshots carry PIN hashes to devices with a keypad, and the PIN groups."""

from __future__ import annotations

import re
from pathlib import Path

from edge.core.events import PinOutcome
from edge.pin_hash import check_pin
from edge.signing import load_public_key
from edge.snapshot import parse
from provisioning.publish import build_all
from provisioning.registry import Registry
from tests.provisioning.commands import provision

CSV = (
    "staff_no,name,department,card_tech,card_id,groups,valid_from,valid_until,pin,duress_pin\n"
    "S001,佐藤 花子,総務課,felica,0114A1B2C3D4E5F6,staff;finance,,,2580,2581\n"
    "S002,鈴木 太郎,財政課,felica,0114A1B2C3D4E5F7,staff,,,,\n"
)


def site_with_pins(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    for step in [
        ("site", "init", "--site", "kamakura-city-hall"),
        ("device", "add", "gate-1f-east", "--role", "gate"),
        ("rules", "add", "staff", "--doors", "gate-east"),
        ("rules", "require-pin", "finance"),
    ]:
        result = provision(*step, "--dir", str(site))
        assert result.returncode == 0, (step, result.stderr)
    csv = tmp_path / "staff.csv"
    csv.write_text(CSV, encoding="utf-8")
    result = provision("cards", "import", str(csv), "--dir", str(site))
    assert result.returncode == 0, result.stderr
    assert "2580" not in result.stdout + result.stderr
    return site


def snapshot(site: Path):  # type: ignore[no-untyped-def]
    registry = Registry(site / "registry.db")
    try:
        (built,) = build_all(registry, site, ["gate-1f-east"])
    finally:
        registry.close()
    public = load_public_key(site / "keys" / "credentials.pub")
    return parse(built.data, public, site="kamakura-city-hall", device="gate-1f-east")


def test_pins_reach_only_a_device_with_a_keypad(tmp_path: Path) -> None:
    site = site_with_pins(tmp_path)
    without = snapshot(site)
    assert without.policy.pin_groups == frozenset({"finance"})
    # finance names no door here, yet the device must know who is in it to ask for the PIN.
    alice = next(c for c in without.credentials if "finance" in c.groups)
    assert alice.pin is None  # no keypad on this device: no PIN hash
    config = site / "devices" / "gate-1f-east.toml"
    text = config.read_text(encoding="utf-8")
    usb = '{kind = "usb", device = "/dev/input/by-id/usb-keypad-event-kbd"}'
    text = re.sub(r'(id = "gate-east-in"\n)', rf"\1keypad = {usb}\n", text, count=1)
    config.write_text(text, encoding="utf-8")
    published = snapshot(site)
    pins = {frozenset(c.groups): c.pin for c in published.credentials}
    alice_pin = pins[frozenset({"staff", "finance"})]
    assert alice_pin is not None
    assert check_pin(alice_pin, "2581") is PinOutcome.DURESS
    assert pins[frozenset({"staff"})] is None
