"""The scripted morning: every case happens, and the roll call matches the crossings."""

from __future__ import annotations

from collections import Counter

import pytest

from edge.core.outputs import EventKind
from simulator import demo
from simulator.morning import Morning, build


@pytest.fixture(scope="module")
def morning() -> Morning:
    m = build(bytes(range(32)), staff_count=24, seed=7)
    m.timeline.run_for(62 * 60)
    return m


def payloads(m: Morning, kind: EventKind, type_: str | None = None) -> list[dict[str, object]]:
    return [
        r.event.payload()
        for _, r in m.records
        if r.event.kind is kind and (type_ is None or r.event.type == type_)
    ]


def test_every_awkward_case_happens(morning: Morning) -> None:
    reasons = Counter(
        p["reason"] for p in payloads(morning, EventKind.ACCESS) if p["type"] != "crossing"
    )
    for reason in ("no_rule", "expired", "revoked", "not_yet_valid", "anti_passback", "lockdown"):
        assert reasons[reason] >= 1, reason
    alarms = {(p["type"], p["state"]) for p in payloads(morning, EventKind.ALARM)}
    assert {
        ("lost_card_used", "raised"),
        ("door_forced", "raised"),
        ("door_held_open", "raised"),
        ("door_held_open", "cleared"),
        ("fire", "raised"),
        ("fire", "cleared"),
    } <= alarms


def test_roll_call_matches_the_gate_count_and_the_crossings(morning: Morning) -> None:
    inside: set[object] = set()
    for p in payloads(morning, EventKind.ACCESS, "crossing"):
        if p["door"] == morning.gate:
            if p["direction"] == "in":
                inside.add(p["card_ref"])
            else:
                inside.discard(p["card_ref"])
    gate = morning.timeline.devices["gate-1f-east"]
    assert len(morning.inside) == len(inside) == gate.counts.count("staff-area")
    assert len(inside) >= 20


def test_fire_released_the_stairway_but_not_the_gate(morning: Morning) -> None:
    modes = [(p["door"], p["mode"]) for p in payloads(morning, EventKind.DOOR, "mode")]
    assert (morning.stair, "fire_release") in modes
    assert (morning.gate, "fire_release") not in modes
    assert not morning.timeline.devices["stair-b-2f"].doors[morning.stair].unlocked


def test_no_raw_card_id_in_any_record(morning: Morning) -> None:
    raw_ids = {p.card_id for p in [*morning.staff, *morning.others.values()]}
    text = repr([r.event.payload() for _, r in morning.records])
    assert not [i for i in raw_ids if i in text]


def test_demo_prints_decisions_and_roll_call(capsys: pytest.CaptureFixture[str]) -> None:
    assert demo.main(["--no-colour", "--staff", "12"]) == 0
    out = capsys.readouterr().out
    assert "DENIED   lost" not in out
    assert "revoked" in out
    assert "ALARM  lost_card_used raised" in out
    assert "lockdown override" in out
    assert "FIRE — roll call" in out
    assert "\033[" not in out
