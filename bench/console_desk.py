"""Lost card marked -> denied at the door: from the desk's click until the card's next tap
is refused `revoked`.

Real parts: the simulated building (mosquitto on loopback, one agent process per device,
the console's collector), the console's web app served by uvicorn with the site directory
and the broker, a guard's HTTP session posting the confirmation form as the page does.
Each round marks another person's card lost (the registry changes, every device's snapshot
is built, signed and published, the answer waits up to 3 s for the devices to apply it),
then taps the card at the person's gate until it is refused; the card is reinstated
between rounds. Baseline in the same run: click -> the page's answer. Printed, never
asserted (goal: p95 <= 2 s).

    python bench/console_desk.py [--rounds 20] [--speed 30]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import time as clock
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.log import CentralLog
from console.users import add_user
from console.web import Settings, create_app
from console.web_context import BrokerAccess
from simulator.building import load_building
from simulator.control_channel import send
from simulator.run import Simulation
from simulator.scenario import Scenario
from tests.console.web_fixtures import Client, serve
from tests.simulator.city import SMALL, play_in_thread


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def sim_time(sim: Simulation) -> float:
    """The simulated time (the agents' and the console's), as seconds since the epoch."""
    return (sim.start + timedelta(seconds=sim.engine.now)).timestamp()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--speed", type=float, default=30.0, help="simulated s per real s")
    args = parser.parse_args()
    # Long enough a day for the rounds (about 2 s each) at this speed.
    minutes = max(30, int(args.rounds * 4 * args.speed / 60) + 10)
    start = clock(8, 0)
    end = clock(8 + minutes // 60, minutes % 60)
    day = Scenario.model_validate({"date": "2026-12-01", "start": start, "end": end, "seed": 5})
    tmp = Path(tempfile.mkdtemp(prefix="bench-desk-"))
    run_dir = tmp / "run"
    run_dir.mkdir()
    sim = Simulation(load_building(SMALL), day, run_dir, speed=args.speed)
    player = play_in_thread(sim)
    marked: list[float] = []
    denied: list[float] = []
    taps: list[int] = []
    try:
        assert player.ready.wait(180)
        assert not player.errors, player.errors
        log_path = run_dir / "console" / "log.db"
        add_user(CentralLog(log_path), "guard1", "guard", "bench-password-1", by="bench")
        settings = Settings(
            log_path,
            run_dir / "site" / "registry.db",
            tmp / "session.key",
            secure_cookies=False,
            clock=lambda: sim_time(sim),
            idle_s=30 * 24 * 3600,
            lifetime_s=30 * 24 * 3600,
            site_dir=run_dir / "site",
            broker=BrokerAccess("127.0.0.1", sim.broker.port, sim.building.spec.site, "console"),
        )
        people = [
            p for p in sim.people if not p.case and p.profile == "uid" and "staff" in p.groups
        ][: args.rounds]
        with serve(create_app(settings)) as url:
            guard = Client(url)
            guard.login("guard1", "bench-password-1")
            csrf = guard.csrf("/cards")
            for person in people:
                form = {"staff_no": person.staff_no, "csrf": csrf}
                began = time.perf_counter()
                answer = guard.post("/cards/lost", form)
                assert answer.status == 200, answer.text[:300]
                marked.append((time.perf_counter() - began) * 1000)
                tries = 0
                while True:
                    tries += 1
                    tap = {"door": person.gate, "direction": "in", "staff_no": person.staff_no}
                    reply = send(run_dir, "tap", tap)
                    if reply.get("reason") == "revoked":
                        break
                    assert tries < 200, reply
                denied.append((time.perf_counter() - began) * 1000)
                taps.append(tries)
                assert guard.post("/cards/reinstate", form).status == 200
    finally:
        player.thread.join(minutes * 60 / args.speed + 120)
        sim.close()
    print(
        f"# {platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
        f"small building ({len(sim.agents)} agents), mosquitto on loopback, speed {args.speed:g}"
    )
    for name, values in (
        ("click -> page answered", marked),
        ("click -> denied at the door", denied),
    ):
        print(
            f"{name:<28} p50 {statistics.median(values):6.0f} ms  p95 {pct(values, 95):6.0f} ms  "
            f"p99 {pct(values, 99):6.0f} ms  max {max(values):6.0f} ms  (n={len(values)})"
        )
    print(f"taps until refused: {statistics.mean(taps):.2f} on average (1 = the first tap)")


if __name__ == "__main__":
    main()
