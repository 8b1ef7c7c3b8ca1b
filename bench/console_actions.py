"""Console actions end to end: a guard's click -> the door's relay, and a lockdown -> every ack.

Real parts: edge-provision, mosquitto with the generated ACL, one agent process per device
(simulated hardware, real clock), the console's collector, uvicorn, Debian's chromium
(Playwright) logged in as a guard on the doors page.

* click -> relay released: from the click on "unlock once" until the agent's relay pin reads
  back released (the agent stamps the change with the machine's monotonic clock, the one this
  script reads at the click), rotating over the small building's four doors (each relocks
  after 5 s); also click -> the page shows "accepted".
* lockdown: every gate of the default building (37 devices running) locked down and lifted
  again through console.actions (the page's own path without the HTTP round trip): from send
  until every gate has answered.

Printed, never asserted.

    python bench/console_actions.py [--clicks 40] [--lockdowns 20]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright

from console.actions import Commander, load_command_key, perform
from console.mqtt import ConsoleClient
from simulator.building import DEFAULT_BUILDING
from tests.console.doors_site import CLI_ACCOUNT, DoorsSite, doors_site
from tests.console.web_fixtures import CHROMIUM, PASSWORDS

DOORS = {
    "gate-1f-east": "gate-1f-east",
    "gate-1f-west": "gate-1f-west",
    "stair-a-1f": "stair-a-1f",
    "stair-a-2f": "stair-a-2f",
}


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def show(name: str, values_s: list[float]) -> None:
    ms = [v * 1000 for v in values_s]
    print(
        f"{name:<44} n={len(ms):<3} p50 {statistics.median(ms):7.1f} ms  "
        f"p95 {pct(ms, 95):7.1f} ms  p99 {pct(ms, 99):7.1f} ms  max {max(ms):7.1f} ms"
    )


def wait_locked(site: DoorsSite, device: str, door: str, timeout_s: float = 15) -> None:
    deadline = time.monotonic() + timeout_s
    while site.agents[device].request(op="relay", door=door)["unlocked"]:
        if time.monotonic() > deadline:
            raise SystemExit(f"{door} did not relock within {timeout_s} s")
        time.sleep(0.05)


def clicks(n: int) -> tuple[list[float], list[float]]:
    released, shown = [], []
    with (
        tempfile.TemporaryDirectory() as tmp,
        doors_site(Path(tmp)) as site,
        sync_playwright() as p,
    ):
        browser = p.chromium.launch(executable_path=CHROMIUM)
        page = browser.new_page()
        page.goto(f"{site.url}/login")
        page.fill("input[name=username]", "guard1")
        page.fill("input[name=password]", PASSWORDS["guard1"])
        page.click("button[type=submit]")
        page.goto(f"{site.url}/doors")
        names = list(DOORS)
        for i in range(n + 2):  # the first two warm up the page and the broker link
            door = names[i % len(names)]
            device = DOORS[door]
            wait_locked(site, device, door)
            site.relays(device, door)  # forget earlier read-back
            button = f'#door-rows tr[data-door="{door}"] button[data-action="unlock"]'
            page.wait_for_selector(button)
            began = time.monotonic()
            page.click(button)
            page.wait_for_selector(f'#result li[data-device="{device}"][data-result="accepted"]')
            answered = time.monotonic()
            reply = site.agents[device].request(op="relay", door=door)
            at = next(a for a, d, u in reply["relays"] if d == door and u)
            if i >= 2:
                released.append(at - began)
                shown.append(answered - began)
        browser.close()
    return released, shown


def lockdowns(n: int) -> tuple[list[float], list[float], int]:
    on, off = [], []
    with (
        tempfile.TemporaryDirectory() as tmp,
        doors_site(Path(tmp), building_file=DEFAULT_BUILDING) as site,
    ):
        gates = sorted(d for d in site.agents if d.startswith("gate-"))
        password = (site.site_dir / "accounts" / f"{CLI_ACCOUNT}.password").read_text().strip()
        client = ConsoleClient(
            "127.0.0.1",
            site.port,
            client_id=CLI_ACCOUNT,
            username=CLI_ACCOUNT,
            password=password,
            persistent=False,
        )
        commander = Commander(
            client, load_command_key(site.key), site=site.site, account=CLI_ACCOUNT
        )
        log = site.log()
        try:
            for i in range(n + 1):
                for state, samples in ((True, on), (False, off)):
                    began = time.monotonic()
                    result = perform(
                        log,
                        commander,
                        user="bench",
                        action="lockdown",
                        target="bench",
                        devices=gates,
                        name="lockdown",
                        args={"on": state},
                    )
                    took = time.monotonic() - began
                    if result.failed:
                        raise SystemExit(f"lockdown {state}: not done on {result.failed}")
                    if i:  # the first pair opens the broker link
                        samples.append(took)
        finally:
            commander.close()
            log.close()
    return on, off, len(gates)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=40)
    parser.add_argument("--lockdowns", type=int, default=20)
    args = parser.parse_args()
    print(f"{platform.node()}: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs")
    released, shown = clicks(args.clicks)
    show("click -> relay released (small building)", released)
    show("click -> page shows accepted", shown)
    on, off, gates = lockdowns(args.lockdowns)
    show(f"lockdown on, {gates} gates all acknowledged", on)
    show(f"lockdown off, {gates} gates all acknowledged", off)


if __name__ == "__main__":
    main()
