"""Drive a running simulation from outside, over MQTT `sim/{site}/control/{op}` topics.

    edge-sim tap gate-1f-east --staff-no K20100
    edge-sim fault fire --minutes 3

The request is a JSON object, sent from the control account (`sim-control`: it may only
send requests and read answers); with `reply_to` (a topic under `sim/{site}/reply/`) the
simulation answers there. It is carried out by the simulation's own thread, at its
current simulated time, between two happenings of the day (`simulator.control_server`).
"""

from __future__ import annotations

import json
import secrets
import threading
from pathlib import Path
from typing import Any

from console.mqtt import ConsoleClient, Message
from edge.errors import EdgeError
from simulator import sim_topics
from simulator.provision import CONTROL_ACCOUNT


class ControlError(EdgeError, RuntimeError):
    """No simulation answers, or it refused the request; the message says why."""


def running(run_dir: Path) -> dict[str, Any]:
    """Return what a running simulation wrote about itself (its broker port, its site)."""
    state = run_dir / "sim.json"
    if not state.exists():
        raise ControlError(
            f"no simulation is running with run directory {run_dir}; start one with "
            "edge-sim demo (or edge-sim run), or pass its --run-dir"
        )
    info: dict[str, Any] = json.loads(state.read_text())
    return info


def send(run_dir: Path, op: str, body: dict[str, Any], timeout_s: float = 30.0) -> dict[str, Any]:
    """Send one request to the running simulation and wait for its answer."""
    info = running(run_dir)
    site = info["site"]
    account = run_dir / "site" / "accounts" / f"{CONTROL_ACCOUNT}.password"
    password = account.read_text().strip()
    client = ConsoleClient(
        "127.0.0.1",
        int(info["port"]),
        client_id=CONTROL_ACCOUNT,  # the broker uses the account name whatever we send
        username=CONTROL_ACCOUNT,
        password=password,
        persistent=False,
    )
    reply_to = sim_topics.reply(site, secrets.token_hex(8))
    answer: list[dict[str, Any]] = []
    got = threading.Event()

    def on_reply(message: Message) -> None:
        answer.append(json.loads(message.payload))
        got.set()

    client.subscribe(reply_to, handler=on_reply)
    client.start()
    try:
        client.publish(
            sim_topics.control(site, op), json.dumps({**body, "reply_to": reply_to}).encode()
        )
        if not got.wait(timeout_s):
            raise ControlError(f"the simulation did not answer within {timeout_s:g} s")
        return answer[0]
    finally:
        client.close()
