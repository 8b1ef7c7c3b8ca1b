"""The README's main command, and driving a running simulation from outside."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import time
from pathlib import Path

import click
import pytest

from simulator.building import load_building
from simulator.cli import cli
from simulator.report import build_report
from simulator.run import Simulation
from simulator.scenario import Scenario

from .city import SMALL, failed, play_in_thread

pytestmark = pytest.mark.services  # starts mosquitto, pcscd, an emulated card or a building

ROOT = Path(__file__).resolve().parents[2]


def edge_sim(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "simulator.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
    )


@pytest.mark.timeout(480)  # a whole day of 37 agents and the rooms service: ~190 s on 2 busy cores
def test_the_demo_plays_the_whole_city_hall_and_every_check_passes(tmp_path: Path) -> None:
    out = tmp_path / "report"
    run_dir = str(tmp_path / "run")
    # Within the test's own timeout: the other xdist worker shares the two cores meanwhile.
    result = edge_sim("demo", "--out", str(out), "--run-dir", run_dir, timeout=450)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "ALL CHECKS PASSED" in result.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["agents"] == 37
    assert report["people"] == 1500
    assert [c["name"] for c in report["checks"] if not c["ok"]] == []
    names = " ".join(c["name"] for c in report["checks"])
    for expected in ("roll call at fire", "exactly once", "fire released", "clock_synced"):
        assert expected in names
    for expected in ("no-show", "used without a booking", "reported vacant", "shown released"):
        assert expected in names
    assert report["rooms"]["releases"] > 10
    assert report["rooms"]["check_ins"] > 100
    assert report["rooms"]["ad_hoc_bookings"] > 0
    assert report["decisions"]["granted/granted"] > 5000
    assert report["decisions"]["denied/lockdown"] > 0
    assert (out / "occupancy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "report.txt").read_text().endswith("ALL CHECKS PASSED\n")


def test_a_running_simulation_takes_taps_and_faults_from_outside(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    scenario = Scenario.model_validate(
        {"date": "2026-12-01", "start": time(8, 0), "end": time(10, 0), "seed": 5}
    )
    sim = Simulation(load_building(SMALL), scenario, run_dir, speed=240)
    started = play_in_thread(sim)
    ready, errors, player = started.ready, started.errors, started.thread
    try:
        assert ready.wait(120)
        assert not errors, errors
        someone = sim.people[30]
        tapped = edge_sim(
            "tap", "gate-1f-east", "--staff-no", someone.staff_no, "--run-dir", str(run_dir)
        )
        assert tapped.returncode == 0, tapped.stderr
        answer = json.loads(tapped.stdout)
        assert (answer["decision"], answer["reason"]) == ("granted", "granted")
        clone = edge_sim(
            "tap", "gate-1f-east", "--card", "felica:0114FFFFFFFFFFFF", "--run-dir", str(run_dir)
        )
        assert json.loads(clone.stdout)["reason"] == "unknown_card"
        assert clone.returncode == 0
        forced = edge_sim("fault", "door_forced", "--door", "stair-a-2f", "--run-dir", str(run_dir))
        assert json.loads(forced.stdout)["ok"] is True, forced.stdout
        bad = edge_sim("fault", "door_forced", "--door", "no-such-door", "--run-dir", str(run_dir))
        assert bad.returncode == 1
        assert "not in the building" in json.loads(bad.stdout)["error"]
        player.join(300)
        assert not errors, errors
        report = build_report(sim)
        assert not failed(report), failed(report)
        assert report.alarms["door_forced/raised"] == 1
    finally:
        player.join(300)
        sim.close()
    gone = edge_sim("tap", "gate-1f-east", "--staff-no", "K20030", "--run-dir", str(run_dir))
    assert gone.returncode == 2
    assert "no simulation is running" in gone.stderr


def test_every_command_has_help() -> None:
    assert isinstance(cli, click.Group)
    for name in [None, *cli.commands]:
        result = edge_sim(*([name] if name else []), "--help", timeout=30)
        assert result.returncode == 0, name
        assert "Usage:" in result.stdout


def test_a_bad_scenario_is_refused_with_the_field_and_a_fix(tmp_path: Path) -> None:
    bad = tmp_path / "day.toml"
    bad.write_text('[[faults]]\nat = "10:00"\nkind = "meteor"\n')
    result = edge_sim("run", "--scenario", str(bad), "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "faults.0.kind" in result.stderr
    assert "broker_outage" in result.stderr  # says which kinds exist
