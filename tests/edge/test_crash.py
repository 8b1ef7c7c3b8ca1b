"""kill -9 at random moments during a burst of taps: nothing acknowledged is lost, seq has no gap.

The agent runs in its own process on simulated hardware; a thread taps cards as fast as
the agent answers, and the test kills the process at a random point of the burst, five
times, restarting it each time.
"""

from __future__ import annotations

import json
import random
import sqlite3
import threading
from pathlib import Path

from edge.cardref import card_reference

from .agent_fixtures import KEY, enrol, felica, sim_config
from .sim_process import AgentProcess

ROUNDS = 5


def burst(
    agent: AgentProcess,
    first: int,
    stop: threading.Event,
    done: threading.Condition,
    acked: list[int],
) -> None:
    """Tap card after card as fast as the agent answers, until stopped or killed."""
    card = first
    while not stop.is_set():
        try:
            reply = agent.request(
                op="tap", reader="gate-east-in", technology="felica", id=felica(card)
            )
        except (OSError, ConnectionError, ValueError):
            return  # killed mid-request: this tap was never acknowledged
        if reply.get("counted") and reply.get("decision") == "granted":
            with done:
                acked.append(card)
                done.notify_all()
        card += 1


def test_kill_minus_nine_loses_nothing(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    enrol(device.store, range(10_000), ["gate-east"])
    rng = random.Random()
    acknowledged: list[int] = []
    next_card = 0
    for _ in range(ROUNDS):
        agent = AgentProcess(device, tmp_path)
        done = threading.Condition()
        stop = threading.Event()
        target = rng.randint(3, 40)
        before = len(acknowledged)
        thread = threading.Thread(target=burst, args=(agent, next_card, stop, done, acknowledged))
        thread.start()
        with done:
            reached = done.wait_for(lambda: len(acknowledged) - before >= target, timeout=30)  # noqa: B023
        assert reached, agent.log()
        agent.kill()  # while the burst is still tapping
        stop.set()
        thread.join(10)
        next_card = max(acknowledged, default=next_card) + 100

    final = AgentProcess(device, tmp_path)
    assert final.request(op="sync")["ok"]
    assert final.terminate() == 0, final.log()

    with sqlite3.connect(device.store) as conn:
        events = [json.loads(p) for (p,) in conn.execute("SELECT payload FROM outbox ORDER BY seq")]
    seqs = [e["seq"] for e in events]
    assert seqs == list(range(1, len(seqs) + 1)), "seq has a gap or a duplicate"
    assert len({e["id"] for e in events}) == len(events)
    granted = [e["card_ref"] for e in events if e["kind"] == "access" and e["type"] == "granted"]
    assert len(granted) == len(set(granted)), "a tap was recorded twice"
    for card in acknowledged:
        assert card_reference(KEY, "felica", felica(card)) in granted, (
            f"card {card} acknowledged, then lost"
        )
    starts = [e for e in events if e["type"] == "started"]
    assert len(starts) == ROUNDS + 1
