"""A simulated staff day at the city hall: wall time, events/s, agents per core.

Plays the default building (37 agent processes, 1,500 staff) twice in the same run: the
demo's day with its faults, and the same day with no fault (the baseline). For each:
set-up, play and catch-up wall time, events the devices produced, events/s, how many
times faster than real time. Then the agents' CPU: what the 37 processes used over the
whole day (utime+stime from /proc), and so how many such agents one core would carry at
real-time pace. Printed, never asserted.

    python bench/sim.py [--staff 1500] [--no-baseline]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from simulator.building import load_building
from simulator.report import build_report
from simulator.run import Simulation
from simulator.scenario import load_scenario

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def play(staff: int, faults: bool) -> dict[str, float]:
    scenario = load_scenario()
    scenario = scenario.model_copy(
        update={"staff": staff, "faults": scenario.faults if faults else []}
    )
    sim = Simulation(load_building(), scenario, Path(tempfile.mkdtemp(prefix="bench-sim-")))
    began = time.perf_counter()
    try:
        sim.setup()
        sim.play()
        sim.finish()
        total = time.perf_counter() - began
        report = build_report(sim)
        cpu = [cpu_seconds(a.proc.pid) for a in sim.agents.values()]
    finally:
        sim.close()
    events = report.figures["events"]
    return {
        "ok": float(report.ok),
        "agents": len(cpu),
        "total_s": total,
        "setup_s": sim.timing.setup_s,
        "play_s": sim.timing.play_s,
        "finish_s": sim.timing.finish_s,
        "events": events,
        "events_per_s": events / sim.timing.play_s,
        "speedup": sim.length / sim.timing.play_s,
        "day_s": sim.length,
        "agent_cpu_s": sum(cpu),
        "busiest_cpu_s": max(cpu),
        "tap_p50_ms": report.figures["tap_p50_ms"],
        "tap_p99_ms": report.figures["tap_p99_ms"],
        "deliver_p95_ms": report.figures["deliver_p95_ms"],
    }


def show(name: str, r: dict[str, float]) -> None:
    per_agent = r["agent_cpu_s"] / r["agents"]
    print(
        f"{name}: {r['total_s']:.1f} s wall (set-up {r['setup_s']:.1f}, play {r['play_s']:.1f}, "
        f"catch-up {r['finish_s']:.1f}); {r['events']:.0f} events, {r['events_per_s']:.0f} events/s, "
        f"{r['speedup']:.0f}x real time; checks {'passed' if r['ok'] else 'FAILED'}"
    )
    print(
        f"  agents' CPU over the day: {r['agent_cpu_s']:.1f} s for {r['agents']:.0f} agents "
        f"({per_agent:.2f} s each, busiest {r['busiest_cpu_s']:.2f} s) for a {r['day_s'] / 3600:.0f} h day"
        f" -> at real-time pace one core carries ~{r['day_s'] / per_agent:,.0f} average agents, "
        f"~{r['day_s'] / r['busiest_cpu_s']:,.0f} of the busiest"
    )
    print(
        f"  tap -> decision p50 {r['tap_p50_ms']:.1f} ms, p99 {r['tap_p99_ms']:.1f} ms; "
        f"tap -> console p95 {r['deliver_p95_ms']:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--staff", type=int, default=1500)
    parser.add_argument("--no-baseline", action="store_true")
    args = parser.parse_args()
    print(
        f"# {platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
        f"default building, {args.staff} staff"
    )
    with_faults = play(args.staff, faults=True)
    show(f"day with {len(load_scenario().faults)} faults", with_faults)
    if not args.no_baseline:
        baseline = play(args.staff, faults=False)
        show("same day, no fault (baseline)", baseline)
        print(
            f"faults cost: play time x{with_faults['play_s'] / baseline['play_s']:.2f}, "
            f"events/s x{with_faults['events_per_s'] / baseline['events_per_s']:.2f}"
        )


if __name__ == "__main__":
    main()
