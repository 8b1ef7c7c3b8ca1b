"""`edge-agent check --probe`: each missing part is found and named, with what to do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from edge.probe import probe
from firmware_config.loader import load_config

from .agent_fixtures import sim_config


def findings(config_path: Path, chips: str) -> dict[str, tuple[bool, str]]:
    return {f.item: (f.ok, f.detail) for f in probe(load_config(config_path), chips)}


def test_a_complete_device_probes_clean(tmp_path: Path) -> None:
    (tmp_path / "gpiochip0").touch()
    found = findings(sim_config(tmp_path).config, str(tmp_path / "gpiochip*"))
    assert all(ok for ok, _ in found.values()), found
    assert set(found) == {"GPIO", "store", "card key", "credentials key", "commands key"}


def test_missing_parts_are_named(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    (tmp_path / "card-key").unlink()
    (tmp_path / "commands.pub").write_text("not a key")
    found = findings(device.config, str(tmp_path / "no-such-chip*"))
    assert found["GPIO"][0] is False
    assert "not a Raspberry Pi" in found["GPIO"][1]
    assert found["card key"] == (False, found["card key"][1])
    assert "device bundle" in found["card key"][1]
    assert found["commands key"][0] is False
    assert "64 hexadecimal digits" in found["commands key"][1]
    assert found["credentials key"][0] is True


def test_an_nfc_reader_that_is_not_there(tmp_path: Path) -> None:
    device = sim_config(tmp_path, "stairway-door.toml")
    text = device.config.read_text().replace(
        'kind = "sim"', 'kind = "nfc"\npath = "usb:ffff:fffe"', 1
    )
    device.config.write_text(text)
    found = findings(device.config, str(tmp_path / "gpiochip*"))
    reader = next(v for k, v in found.items() if k.startswith("reader "))
    assert reader[0] is False
    assert "cannot open usb:ffff:fffe" in reader[1]


def test_check_probe_exit_status(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "check", "--config", str(device.config), "--probe"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1  # no GPIO chip on a test machine
    assert "FAIL  GPIO" in result.stdout
    assert "ok    card key" in result.stdout
    assert "probes failed" in result.stderr
