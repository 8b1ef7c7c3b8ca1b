"""Alarm -> browser: from a device publishing an alarm until a guard's page shows it.

Real parts: mosquitto on loopback, the console's collector (shared subscription, commit
then acknowledge), the web page served by uvicorn, Debian's chromium (Playwright) logged in
as a guard on the live alarms page. A fake device publishes `door_forced` alarms (QoS 1)
one at a time; the figure is publish -> the row is in the page's DOM (no reload: Server-Sent
Events, then the rows are fetched). Baseline in the same run: publish -> the collector has
stored it. Printed, never asserted (goal: browser p95 <= 1 s).

    python bench/console_alarm.py [--alarms 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn
from playwright.sync_api import sync_playwright

from console.collector import Collector
from console.log import CentralLog
from console.mqtt import ConsoleClient
from console.users import add_user
from console.web import Settings, create_app
from edge.link import topics
from simulator.broker import Broker
from tests.console.test_claims import provision

SITE = "bench-hall"


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def event(seq: int) -> bytes:
    ts = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    return json.dumps(
        {
            "v": 1,
            "id": f"gate-b:{seq}",
            "seq": seq,
            "device": "gate-b",
            "ts": ts,
            "clock_synced": True,
            "kind": "alarm",
            "type": "door_forced",
            "door": "gate-b",
            "state": "raised",
        }
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--alarms", type=int, default=40)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-alarm-"))
    broker = Broker(tmp / "broker")
    broker.start()
    log_path = tmp / "log.db"
    site_dir = provision(tmp / "site", gates=("gate-b",), site=SITE)
    collector = Collector(
        log_path, site_dir=site_dir, host="127.0.0.1", port=broker.port, site=SITE
    )
    collector.start()
    add_user(CentralLog(log_path), "guard1", "guard", "bench-password-1", by="bench")
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    app = create_app(Settings(log_path, None, tmp / "session.key", secure_cookies=False))
    server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
    threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True).start()
    device = ConsoleClient("127.0.0.1", broker.port, client_id="gate-b", persistent=False)
    device.start()
    topic = topics.event(topics.DEFAULT_ROOT, SITE, "gate-b", "alarm")
    to_browser: list[float] = []
    to_log: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
            page = browser.new_page()
            page.goto(f"{url}/login")
            page.fill("input[name=username]", "guard1")
            page.fill("input[name=password]", "bench-password-1")
            page.click("button[type=submit]")
            page.wait_for_url(f"{url}/alarms")
            for seq in range(1, args.alarms + 1):
                began = time.perf_counter()
                device.publish(topic, event(seq))
                collector.wait_for(lambda log, n=seq: log.count() >= n, 10)
                to_log.append((time.perf_counter() - began) * 1000)
                page.wait_for_selector(f"tr[data-key='gate-b:{seq}']", timeout=10_000)
                to_browser.append((time.perf_counter() - began) * 1000)
            browser.close()
    finally:
        server.should_exit = True
        device.close()
        collector.close()
        broker.stop()
    print(f"# {platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    for name, values in (
        ("alarm -> console log", to_log),
        ("alarm -> guard's browser", to_browser),
    ):
        print(
            f"{name:<26} p50 {statistics.median(values):6.0f} ms  p95 {pct(values, 95):6.0f} ms  "
            f"p99 {pct(values, 99):6.0f} ms  max {max(values):6.0f} ms  (n={len(values)})"
        )


if __name__ == "__main__":
    main()
