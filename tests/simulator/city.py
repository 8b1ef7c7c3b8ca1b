"""Run a simulated building for a test: real mosquitto, real agents, the console's collector."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from simulator.building import load_building
from simulator.report import Report, build_report
from simulator.run import Simulation
from simulator.scenario import Scenario

SMALL = Path(__file__).with_name("small-building.toml")


@contextmanager
def played(
    run_dir: Path, scenario: Scenario, building: Path = SMALL, speed: float | None = None
) -> Iterator[tuple[Simulation, Report]]:
    """Set up, play and finish a day; yield the simulation (still open) and its report."""
    sim = Simulation(load_building(building), scenario, run_dir, speed=speed)
    try:
        sim.setup()
        sim.play()
        sim.finish()
        yield sim, build_report(sim)
    finally:
        sim.close()


def failed(report: Report) -> list[str]:
    """Return the checks that failed, with their evidence."""
    return [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
