"""One security line: a gate cut off for real in the rush, a card handed back over the line.

Real parts: mosquitto, one agent process per device, each gate reaching the broker through
a NetCut; the report's line checks are then broken one at a time to show each can fail.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import time
from pathlib import Path

import pytest

from simulator.process import AgentExited
from simulator.report import build_report
from simulator.run import Simulation
from simulator.scenario import Fault, Scenario
from simulator.world import HandedBack

from .city import SMALL, failed, played

pytestmark = pytest.mark.services  # starts mosquitto and a building

GATE = "gate-1f-east"
# Past lunch: people go out by any gate and come back by any other.
DAY = {"date": "2026-12-01", "start": time(7, 30), "end": time(13, 30), "seed": 3, "rooms": False}
FAULTS = [
    Fault(at=time(8, 20), kind="gate_partition", gate=GATE, minutes=6),
    Fault(at=time(8, 23), kind="handed_back_card", gate=GATE),  # while it is cut off
    Fault(at=time(8, 30), kind="handed_back_card", gate=GATE),  # after, holder in meanwhile
]


def _check(sim: Simulation, prefix: str):  # type: ignore[no-untyped-def]
    return next(c for c in build_report(sim).checks if c.name.startswith(prefix))


@pytest.fixture(scope="module")
def hard_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Simulation]:
    """A day whose line refuses on what each gate knows while cut off (the default)."""
    scenario = Scenario.model_validate({**DAY, "faults": FAULTS})
    with played(tmp_path_factory.mktemp("hard"), scenario) as (sim, report):
        assert not failed(report), failed(report)
        yield sim


def test_the_cut_gate_really_lost_its_broker_and_came_back(hard_day: Simulation) -> None:
    cut = hard_day.netcuts[GATE]
    assert cut.cuts == 1
    assert cut.connections >= 2, cut  # the agent reconnected after the heal
    assert [p[0] for p in hard_day.partitions] == [GATE]
    label, *_, ok = hard_day.reconciliations[0]
    assert (label, ok) == (f"the partition of {GATE}", True)


def test_people_leave_and_come_back_by_any_gate(hard_day: Simulation) -> None:
    last_in: dict[str, str] = {}
    out_elsewhere = back_elsewhere = 0
    last_out: dict[str, str] = {}
    for _, staff_no, gate, direction in hard_day.world.truth.line_moves:
        if direction == "out":
            out_elsewhere += last_in.get(staff_no, gate) != gate
            last_out[staff_no] = gate
        else:
            back_elsewhere += last_out.get(staff_no, gate) != gate
            last_in[staff_no] = gate
    assert out_elsewhere > 0
    assert back_elsewhere > 0
    assert _check(hard_day, "nobody on the right side of the line").ok


def test_a_handed_back_card_is_refused_during_and_after_the_partition(
    hard_day: Simulation,
) -> None:
    tried = hard_day.world.truth.handed_back
    assert [(t.decision, t.reason) for t in tried] == [("denied", "anti_passback")] * 2
    # The second holder came in by another gate while this one was cut off: it learned it.
    assert tried[1].after == f"the partition of {GATE}"
    assert hard_day.world.home_gate[tried[1].holder] != GATE
    names = [c.name for c in build_report(hard_day).checks]
    assert any(n.startswith("a card handed back over the line was refused") for n in names)


def test_the_report_sees_a_handed_back_card_granted(hard_day: Simulation) -> None:
    tried = hard_day.world.truth.handed_back
    saved = list(tried)
    tried[1] = replace(saved[1], decision="granted", reason="granted")
    try:
        assert not _check(hard_day, "a card handed back over the line").ok
        # Flagged is right only where the gate was soft at that moment.
        tried[1] = replace(saved[1], decision="granted", reason="granted", violation=True)
        assert not _check(hard_day, "a card handed back over the line").ok
    finally:
        tried[:] = saved
    assert _check(hard_day, "a card handed back over the line").ok


def test_the_report_sees_a_refusal_the_console_never_got(hard_day: Simulation) -> None:
    tried = hard_day.world.truth.handed_back
    saved = list(tried)
    tried.append(HandedBack(saved[-1].at + 60, "gate-1f-west", *_holder(saved[-1])))
    try:
        check = _check(hard_day, "a card handed back over the line")
        assert not check.ok
        assert "not in the console's log" in check.detail
    finally:
        tried[:] = saved


def _holder(t: HandedBack) -> tuple[str, str, str, str, str, bool, bool]:
    return (t.holder, t.technology, t.card_id, "denied", "anti_passback", False, False)


def test_the_report_sees_a_stale_refusal_after_reconciliation(hard_day: Simulation) -> None:
    stale = hard_day.world.truth.stale_refusals
    _, _, until, _, _ = hard_day.reconciliations[-1]
    stale.append((until + 600, GATE, "K20001", "in"))
    try:
        check = _check(hard_day, "nobody on the right side of the line")
        assert not check.ok
        assert "K20001 in at gate-1f-east" in check.detail
        stale[-1] = (until - 1, GATE, "K20001", "in")  # while relearning: counted, not failed
        assert _check(hard_day, "nobody on the right side of the line").ok
    finally:
        stale.pop()


def test_the_report_sees_a_count_that_does_not_add_up(hard_day: Simulation) -> None:
    truth = hard_day.world.truth
    assert _check(hard_day, "the line's head count").ok
    truth.unseen_entries += 1
    try:
        assert not _check(hard_day, "the line's head count").ok
    finally:
        truth.unseen_entries -= 1


def test_the_head_count_is_compared_at_noon_where_an_entry_missed_shows(
    hard_day: Simulation,
) -> None:
    [(at, label, counts, truth)] = hard_day.head_counts
    assert label == "noon"
    assert truth > 0  # busy: a missed entry cannot hide at zero
    zones = {g.inside for g in hard_day.building.gates}
    assert set(counts) == zones
    assert all(c == truth for c in counts.values())
    # One entry the console never counted, at noon, in one gate's zone: seen, and named.
    zone = next(iter(zones))
    hard_day.head_counts[0] = (at, label, {**counts, zone: truth - 1}, truth)
    try:
        check = _check(hard_day, "the line's head count")
        assert not check.ok
        assert "noon:" in check.detail
        assert all(g.device in check.detail for g in hard_day.building.gates if g.inside == zone)
    finally:
        hard_day.head_counts[0] = (at, label, counts, truth)
    assert _check(hard_day, "the line's head count").ok


def test_the_handed_back_card_while_cut_was_one_the_gate_held_inside(
    hard_day: Simulation,
) -> None:
    held = hard_day.cut_held[GATE]
    assert held  # read once the gate knew it was cut
    during = hard_day.world.truth.handed_back[0]
    assert during.holder in held
    notes = " ".join(text for _, text in hard_day.world.truth.notes)
    assert "had not noticed its cut" not in notes


def test_a_gate_that_lost_its_broker_has_not_reconciled_whatever_it_holds(
    hard_day: Simulation,
) -> None:
    """Its fake clock stands still, so it is not cut off yet: only its link can tell."""
    world, cut = hard_day.world, hard_day.netcuts[GATE]
    cut.cut()
    try:
        reply = world.request(GATE, op="wait_link", up=False, timeout=10)
        assert reply is not None
        assert reply["seen"]
        reply = world.request(GATE, op="positions", refs=[])
        assert reply is not None
        assert (reply["cut_off"], reply["connected"]) == (False, False)
        # Nothing to relearn, but it hears nobody: not agreed (a short wait, then no).
        reply = world.request(GATE, op="wait_positions", want={}, timeout=0.5)
        assert reply is not None
        assert (reply["agreed"], reply["wrong"]) == (False, 0)
    finally:
        cut.heal()
    # Healed: it reconnects (real time, paho's backoff) and agrees, waited for, not polled.
    reply = world.request(GATE, op="wait_positions", want={}, timeout=30)
    assert reply is not None
    assert reply["agreed"], reply


def test_wait_positions_needs_what_it_waits_for(hard_day: Simulation) -> None:
    with pytest.raises(AgentExited, match="wait_positions needs want"):
        hard_day.world.request(GATE, op="wait_positions", want=["not", "a", "map"])


def test_the_report_sees_gates_that_never_agreed_again(hard_day: Simulation) -> None:
    saved = list(hard_day.reconciliations)
    hard_day.reconciliations[0] = (*saved[0][:4], False)
    try:
        assert not _check(hard_day, "after each partition, outage or power cut").ok
    finally:
        hard_day.reconciliations[:] = saved


def test_the_report_wants_the_degraded_alarm_where_the_fallback_is_soft(
    hard_day: Simulation,
) -> None:
    assert _check(hard_day, "a gate cut off from the others").ok  # hard: none raised
    spec = hard_day.building.spec
    hard_day.building.spec = spec.model_copy(update={"anti_passback_offline": "soft"})
    try:
        assert not _check(hard_day, "a gate cut off from the others").ok
    finally:
        hard_day.building.spec = spec


def test_a_soft_line_grants_flagged_while_cut_off_then_alarms_the_conflict(
    tmp_path: Path,
) -> None:
    building = tmp_path / "soft-building.toml"
    text = SMALL.read_text(encoding="utf-8")
    building.write_text(
        text.replace("[[gates]]", 'anti_passback_offline = "soft"\n\n[[gates]]', 1),
        encoding="utf-8",
    )
    scenario = Scenario.model_validate({**DAY, "faults": FAULTS})
    with played(tmp_path / "run", scenario, building) as (sim, report):
        assert not failed(report), failed(report)
        during, after = sim.world.truth.handed_back
        assert (during.decision, during.violation, during.soft) == ("granted", True, True)
        assert (after.decision, after.reason) == ("denied", "anti_passback")
        assert report.alarms["anti_passback_degraded/raised"] == 1
        assert report.alarms["anti_passback_degraded/cleared"] == 1
        # The gate that let the holder in hears of the second entry once the partition heals.
        assert report.alarms["anti_passback_conflict/raised"] == 1
        assert report.alarms["anti_passback_violation/raised"] >= 1
