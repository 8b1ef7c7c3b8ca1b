"""The agent as a service: systemd notification and watchdog, SIGTERM, start-up refusals."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .agent_fixtures import sim_config
from .sim_process import AgentProcess

UNIT = Path(__file__).resolve().parents[2] / "firmware_config" / "deploy" / "edge-agent.service"


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is missing: ./check installs it (apt-get install systemd)")
    # The unit names the Pi's install path; point it at this checkout's command to verify.
    unit = tmp_path / "edge-agent.service"
    unit.write_text(
        UNIT.read_text().replace(
            "/opt/edge/venv/bin/edge-agent", shutil.which("edge-agent") or sys.executable
        )
    )
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False
    )
    problems = [line for line in result.stderr.splitlines() if "edge-agent.service" in line]
    assert not problems, result.stderr
    text = UNIT.read_text()
    for setting in (
        "Type=notify",
        "WatchdogSec=",
        "Restart=always",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "KillSignal=SIGTERM",
    ):
        assert setting in text


def test_ready_watchdog_and_stopping_reach_systemd(tmp_path: Path) -> None:
    address = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(address))
    listener.settimeout(10)
    os.environ["NOTIFY_SOCKET"] = str(address)
    os.environ["WATCHDOG_USEC"] = "400000"
    try:
        agent = AgentProcess(sim_config(tmp_path), tmp_path)
    finally:
        del os.environ["NOTIFY_SOCKET"], os.environ["WATCHDOG_USEC"]
    messages: list[str] = []

    def receive_until(wanted: str) -> None:
        deadline = time.monotonic() + 10
        while wanted not in messages:
            assert time.monotonic() < deadline, f"no {wanted} from the agent; got {messages}"
            messages.append(listener.recv(256).decode())

    receive_until("READY=1")
    receive_until("WATCHDOG=1")
    assert agent.terminate() == 0
    receive_until("STOPPING=1")
    listener.close()
    log = agent.log()
    assert log.count("starting device gate-1f-east") == 1  # effective config, once
    assert "relays de-energised" in log


def run_agent(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_run_refuses_a_missing_card_key(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    (tmp_path / "card-key").unlink()
    result = run_agent(device.config)
    assert result.returncode == 2
    assert "card key file" in result.stderr
    assert "device bundle" in result.stderr


def test_run_refuses_a_card_key_others_can_read(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    (tmp_path / "card-key").chmod(0o644)
    result = run_agent(device.config)
    assert result.returncode == 2
    assert "chmod 600" in result.stderr
    assert device.key.hex() not in result.stderr + result.stdout


def test_run_refuses_a_bad_config_before_starting(tmp_path: Path) -> None:
    bad = tmp_path / "agent.toml"
    bad.write_text('[site]\nid = "x"\n[device]\nid = "d"\nrole = "gate"\n')
    result = run_agent(bad)
    assert result.returncode == 2
    assert "problem" in result.stderr


def test_run_refuses_simulated_readers_on_real_hardware(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    env = {**os.environ, "GPIOZERO_PIN_FACTORY": "mock"}
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "run", "--config", str(device.config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert result.returncode == 2
    assert "runs only under the simulator" in result.stderr
