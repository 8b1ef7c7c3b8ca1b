"""Publish to a floor of devices: 40 agents on one mosquitto, time until each applies.

Each agent is a real `python -m simulator.agent` process with its own store and broker
account, configured by edge-provision. The figure is publish start -> the device's retained
status shows the new version, per device (p50/p95/max). Printed, never asserted.

    python bench/publish.py [--devices 40] [--cards 1500]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.link import topics
from tests.broker import Broker, Subscriber
from tests.edge.agent_fixtures import SimDevice, sim_config
from tests.edge.sim_process import AgentProcess
from tests.provisioning.commands import provision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=40)
    parser.add_argument("--cards", type=int, default=1500)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    site = tmp / "site"
    ids = [f"gate-{i:02d}" for i in range(args.devices)]
    steps = [
        ("site", "init", "--site", "kamakura-city-hall"),
        ("account", "add", "operator", "--role", "operator"),
        # The watcher's own account: the broker uses the account name as the client id, so
        # watching as the operator would be taken over by the publish command.
        ("account", "add", "console", "--role", "console"),
    ]
    for device in ids:
        steps += [
            ("account", "add", device, "--role", "device"),
            ("device", "add", device, "--role", "gate"),
        ]
    steps += [("rules", "add", "staff", "--doors", "gate-east")]
    for step in steps:
        assert provision(*step, "--dir", str(site)).returncode == 0, step
    csv = tmp / "staff.csv"
    rows = [f"S{i:05d},職員 {i},総務課,felica,0114{i:012X},staff,," for i in range(args.cards)]
    csv.write_text(
        "staff_no,name,department,card_tech,card_id,groups,valid_from,valid_until\n"
        + "\n".join(rows)
        + "\n",
        encoding="utf-8",
    )
    assert provision("cards", "import", str(csv), "--dir", str(site)).returncode == 0
    files = tmp / "broker-files"
    assert provision("broker", "config", "--dir", str(site), "--out", str(files)).returncode == 0
    (tmp / "broker").mkdir()
    broker = Broker(tmp / "broker", acl=(files / "acl").read_text(), passwords=files / "passwd")
    broker.start()
    agents = []
    try:
        for device in ids:
            home = tmp / device
            home.mkdir()
            config = sim_config(home, broker_port=broker.port)
            text = config.config.read_text().replace('id = "gate-1f-east"', f'id = "{device}"', 1)
            password = site / "accounts" / f"{device}.password"
            text += f'username = "{device}"\npassword_file = "{password}"\n'
            config.config.write_text(text)
            for name in ("card-key", "credentials.pub", "commands.pub"):
                (home / name).write_bytes((site / "keys" / name).read_bytes())
            (home / "card-key").chmod(0o600)
            agents.append(AgentProcess(SimDevice(config.config, config.store), home))
        console = (site / "accounts" / "console.password").read_text().strip()
        watch = Subscriber(
            broker.port,
            topics.status_filter(topics.DEFAULT_ROOT, "kamakura-city-hall"),
            client_id="console",
            username="console",
            password=console,
        )
        applied: dict[str, float] = {}
        start = time.perf_counter()
        result = provision(
            "publish", "--dir", str(site), "--port", str(broker.port), "--wait", "120"
        )
        total = time.perf_counter() - start
        for message, arrived in zip(watch.messages, watch.arrivals, strict=True):
            body = json.loads(message.payload)
            if (body.get("credentials") or {}).get("version") == 1 and body[
                "device"
            ] not in applied:
                applied[body["device"]] = (arrived - start) * 1000
        watch.close()
        times = sorted(applied.values())
        p95 = times[min(len(times) - 1, int(0.95 * len(times)))] if times else float("nan")
        print(
            f"# {platform.machine()} Python {sys.version.split()[0]}; {args.devices} agents, {args.cards} cardholders"
        )
        print(
            f"publish start -> device applied: p50 {statistics.median(times):.0f} ms, p95 {p95:.0f} ms, "
            f"max {times[-1]:.0f} ms ({len(times)}/{args.devices} devices); whole command {total:.2f} s, "
            f"exit {result.returncode}"
        )
    finally:
        for agent in agents:
            agent.terminate()
        broker.stop()


if __name__ == "__main__":
    main()
