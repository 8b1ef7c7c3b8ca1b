"""`edge-agent check --probe`: each missing part is found and named, with what to do."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.probe import probe
from firmware_config.loader import load_config

from .agent_fixtures import sim_config
from .test_ld2410 import STILL


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


# -- an LD2410 on a serial port: a real pseudo-terminal the test speaks the radar's side of --


@pytest.fixture
def radar_line() -> Iterator[tuple[int, Path]]:
    """A pseudo-terminal: the test writes report frames to its master; the probe opens the slave."""
    master, slave = os.openpty()
    yield master, Path(os.ttyname(slave))
    os.close(master)
    os.close(slave)


def radar_findings(tmp_path: Path, port: Path, listen_s: float = 1.0) -> tuple[bool, str]:
    device = sim_config(tmp_path, "sensor-node.toml")
    text = device.config.read_text()
    assert 'port = "/dev/serial0"' in text
    device.config.write_text(text.replace('port = "/dev/serial0"', f'port = "{port}"'))
    found = {
        f.item: (f.ok, f.detail)
        for f in probe(load_config(device.config), str(tmp_path / "gpiochip*"), listen_s)
    }
    return found["radar focus-3f-1-radar"]


def test_a_radar_that_reports_is_found(tmp_path: Path, radar_line: tuple[int, Path]) -> None:
    master, port = radar_line
    stop = threading.Event()

    def radar() -> None:
        # About ten reports a second, as the radar sends them unasked; pyserial drops what
        # arrived before it opened the port.
        while not stop.is_set():
            os.write(master, STILL)
            stop.wait(0.05)

    sender = threading.Thread(target=radar, daemon=True)
    sender.start()
    try:
        ok, detail = radar_findings(tmp_path, port)
    finally:
        stop.set()
        sender.join(timeout=5)
    assert ok, detail
    assert detail == f"{port} at 256000 baud: a report arrived (target still)"


def test_a_silent_radar_fails_within_the_listening_time(
    tmp_path: Path, radar_line: tuple[int, Path]
) -> None:
    master, port = radar_line
    os.write(master, b"\x00\x13 noise, not a frame")
    ok, detail = radar_findings(tmp_path, port, listen_s=0.3)
    assert not ok
    assert "no LD2410 report came within 0.3 s" in detail
    assert "serial console is off" in detail


def test_a_radar_port_that_is_not_a_serial_port_is_named(tmp_path: Path) -> None:
    not_a_tty = tmp_path / "serial0"
    not_a_tty.write_text("")
    ok, detail = radar_findings(tmp_path, not_a_tty)
    assert not ok
    assert detail.startswith(f"cannot read {not_a_tty}: serial port {not_a_tty}")


def test_a_radar_port_that_is_gone_is_named(tmp_path: Path) -> None:
    gone = tmp_path / "ttyUSB9"
    gone.touch()  # the configuration names a port that is there when it is loaded
    device = sim_config(tmp_path, "sensor-node.toml")
    text = device.config.read_text().replace('port = "/dev/serial0"', f'port = "{gone}"')
    device.config.write_text(text)
    config = load_config(device.config)
    gone.unlink()  # then the adapter is unplugged
    found = {f.item: (f.ok, f.detail) for f in probe(config, str(tmp_path / "gpiochip*"))}
    ok, detail = found["radar focus-3f-1-radar"]
    assert not ok
    assert detail.startswith(f"{gone} does not exist: enable the UART")
