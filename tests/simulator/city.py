"""Run a simulated building for a test: real mosquitto, real agents, the console's collector."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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


@dataclass
class Player:
    """A simulation set up and played on its own thread (for tests that act while it runs)."""

    sim: Simulation
    ready: threading.Event
    errors: list[BaseException]
    thread: threading.Thread


def play_in_thread(sim: Simulation) -> Player:
    """Set up and play `sim` on a thread; `ready` is set once it is set up (or has failed)."""
    ready = threading.Event()
    errors: list[BaseException] = []

    def play() -> None:
        try:
            sim.setup()
            ready.set()
            sim.play()
            sim.finish()
        except BaseException as error:
            errors.append(error)
            ready.set()

    thread = threading.Thread(target=play, name="sim")
    thread.start()
    return Player(sim, ready, errors, thread)


def failed(report: Report) -> list[str]:
    """Return the checks that failed, with their evidence."""
    return [f"{c.name}: {c.detail}" for c in report.checks if not c.ok]
