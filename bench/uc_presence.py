"""UC presence: from a gate's crossing to the person's status readable at a real Synapse.

A private mosquitto and Synapse, a registry with `--people` opted-in people, and the rooms
service running with the real clock (`Service.run`). Each round a gate publishes a granted
crossing of the security line for one person (alternately in and out) and the time until that
person's own client reads the new presence at Synapse is taken. Prints median, p95 and p99;
never asserted.

    python bench/uc_presence.py [--crossings 200] [--people 10]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.system import SystemClock
from rooms.service import build_service
from tests.broker import start_broker
from tests.rooms.service_site import MemoryCalendar
from tests.rooms.service_site import service_config as base_config
from tests.rooms.synapse_server import SynapseServer, running_synapse
from tests.rooms.test_uc_presence_live import LINE, Devices
from tests.rooms.uc_site import CARDS, make_site

WAIT_S = 15.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crossings", type=int, default=200)
    parser.add_argument("--people", type=int, default=3, help="at most 3 (the test site's)")
    args = parser.parse_args()
    people = sorted(CARDS)[: max(1, min(args.people, len(CARDS)))]
    with tempfile.TemporaryDirectory(prefix="uc-bench-") as scratch:
        tmp = Path(scratch)
        (tmp / "synapse").mkdir()
        with running_synapse(tmp / "synapse") as synapse:
            site = make_site(tmp)
            users = {s: synapse.register(s.lower())[0] for s in people}
            for staff_no, user in users.items():
                site.provision("people", "uc-presence", staff_no, "--on", "--uc-id", user)
            broker = start_broker(tmp / "broker")
            matrix = {"kind": "matrix", "base_url": synapse.url,
                      "admin_token_file": str(synapse.admin_token_file)}  # fmt: skip
            config = base_config(
                tmp,
                port=broker.port,
                registry=str(site.registry),
                line_zone=LINE,
                presence=[matrix],
            )
            service = build_service(config, SystemClock(), adapters={"cal": MemoryCalendar()})
            stop = threading.Event()
            runner = threading.Thread(target=service.run, args=(stop, 0.05), daemon=True)
            devices = Devices(broker.port)
            try:
                service.start()
                runner.start()
                times = _rounds(args.crossings, people, users, site.refs, devices, synapse)
            finally:
                stop.set()
                runner.join(10)
                service.close()
                devices.close()
                broker.stop()
    _report(times, args.crossings, len(people))


def _rounds(
    count: int,
    people: list[str],
    users: dict[str, str],
    refs: dict[str, str],
    devices: Devices,
    synapse: SynapseServer,
) -> list[float]:
    inside = dict.fromkeys(people, False)
    times: list[float] = []
    for n in range(count):
        staff_no = people[n % len(people)]
        inside[staff_no] = not inside[staff_no]
        want = ("online", "in the building") if inside[staff_no] else ("offline", "")
        started = time.perf_counter()
        devices.cross(refs[staff_no], inside[staff_no])
        deadline = started + WAIT_S
        while synapse.presence(users[staff_no]) != want:
            if time.perf_counter() > deadline:
                raise SystemExit(f"crossing {n}: presence not {want} after {WAIT_S} s")
        times.append((time.perf_counter() - started) * 1000)
    return times


def _report(times: list[float], crossings: int, people: int) -> None:
    cut = statistics.quantiles(times, n=100)
    print(f"UC presence, crossing -> status readable at Synapse ({platform.python_version()})")
    print(f"  {crossings} crossings of {people} opted-in people over mosquitto and the service")
    print(
        f"  median {statistics.median(times):.1f} ms  p95 {cut[94]:.1f} ms  "
        f"p99 {cut[98]:.1f} ms  max {max(times):.1f} ms"
    )


if __name__ == "__main__":
    main()
