"""The Pi install script, run for real into a private prefix (no apt, no systemd, no user)."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "firmware_config" / "deploy" / "install.sh"


def test_install_script_builds_a_working_agent(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(SCRIPT), "--prefix", str(tmp_path), "--no-apt", "--no-systemd", "--no-user"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    agent = tmp_path / "venv" / "bin" / "edge-agent"
    check = subprocess.run(
        [
            str(agent),
            "check",
            "--config",
            str(ROOT / "firmware_config/examples/stairway-door.toml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, check.stderr
    assert "device stair-b-2f" in check.stdout
    imports = subprocess.run(
        [
            str(tmp_path / "venv/bin/python"),
            "-c",
            "import smartcard, nfc, gpiozero, lgpio, sqlite_utils",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert imports.returncode == 0, imports.stderr


def test_install_script_refuses_unknown_options() -> None:
    result = subprocess.run(
        [str(SCRIPT), "--frobnicate"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "unknown option --frobnicate" in result.stderr
