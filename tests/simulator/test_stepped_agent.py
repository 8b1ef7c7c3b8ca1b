"""A real agent process on a stepped clock: timers fire at their own simulated time."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from simulator.engine import Engine, Process
from simulator.process import AgentProcess
from tests.edge.agent_fixtures import enrol, felica, sim_config

START = datetime(2026, 12, 1, 8, 0, tzinfo=ZoneInfo("Asia/Tokyo"))  # a Tuesday


@pytest.fixture
def agent(tmp_path: Path):  # type: ignore[no-untyped-def]
    device = sim_config(tmp_path)  # no broker: port 9, the agent runs offline
    enrol(device.store, range(5), ["gate-east"], lost=range(4, 5))
    process = AgentProcess(device.config, tmp_path, start=START)
    yield process
    process.terminate()


def test_an_unused_unlock_relocks_at_exactly_unlock_s_however_far_time_jumps(agent) -> None:  # type: ignore[no-untyped-def]
    tap = agent.request(
        op="tap", reader="gate-east-in", technology="felica", id=felica(1), at=100.0
    )
    assert (tap["decision"], tap["relays"]) == ("granted", [[100.0, "gate-east", True]])
    # An hour passes in one request; the relock still happens 5 s after the grant.
    later = agent.request(op="sync", at=3700.0)
    assert later["relays"] == [[105.0, "gate-east", False]]


def test_held_open_alarms_come_at_their_times_and_the_relay_history_is_the_hardwares(
    agent,  # type: ignore[no-untyped-def]
) -> None:
    agent.request(op="tap", reader="gate-east-in", technology="felica", id=felica(2), at=10.0)
    opened = agent.request(op="door", door="gate-east", open=True, at=11.0)
    assert opened["relays"] == []  # still released: the leaf is open
    held = agent.request(op="sync", at=500.0)
    # A leaf left open does not keep the lock released: it relocks held_open_s (30 s)
    # after unlock_s (5 s), at its own simulated time although time jumped to 500 s.
    assert held["relays"] == [[45.0, "gate-east", False]]
    closed = agent.request(op="door", door="gate-east", open=False, at=600.0)
    assert closed["relays"] == []
    relay = agent.request(op="relay", door="gate-east")
    assert relay["unlocked"] is False


def test_a_lost_card_is_denied_and_a_bad_request_is_answered(agent) -> None:  # type: ignore[no-untyped-def]
    lost = agent.request(op="tap", reader="gate-east-in", technology="felica", id=felica(4))
    assert (lost["decision"], lost["reason"]) == ("denied", "revoked")
    assert lost["relays"] == []
    wrong = agent.request(op="door", door="no-such-door", open=True)
    assert wrong["ok"] is False
    assert "gate-east" in wrong["error"]
    unknown = agent.request(op="teleport")
    assert "unknown op" in unknown["error"]
    stats = agent.request(op="stats")
    assert stats["last_seq"] >= 2


def test_the_engine_runs_processes_in_time_order() -> None:
    engine = Engine()
    seen: list[tuple[float, str]] = []

    def walker(name: str, steps: list[float]) -> Process:
        for step in steps:
            yield step
            seen.append((engine.now, name))

    engine.spawn(walker("a", [5, 5]))
    engine.spawn(walker("b", [3, 3, 3]), at=1.0)
    engine.call_at(6.5, lambda: seen.append((engine.now, "call")))
    engine.run_until(8.0)
    assert seen == [(4.0, "b"), (5.0, "a"), (6.5, "call"), (7.0, "b")]
    assert engine.now == 8.0
    engine.run_until(20.0)
    assert seen[-2:] == [(10.0, "a"), (10.0, "b")]
