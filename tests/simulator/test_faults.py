"""Each fault on a small building: the report's invariants hold, and the fault shows.

Real parts: mosquitto (started here), one `simulator.agent` process per device on a stepped
clock, edge-provision's files, the console's collector. Only hardware and people are made up.
"""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from edge.cardref import card_reference
from simulator.report import build_report
from simulator.scenario import Fault, Scenario

from .city import failed, played

pytestmark = pytest.mark.services  # starts mosquitto, pcscd, an emulated card or a building

# The security line's faults: the rooms service and its calendars stay off (tests/simulator/
# test_rooms_day.py and the demo play them).
DAY = {"date": "2026-12-01", "start": time(7, 30), "end": time(11, 0), "seed": 3, "rooms": False}

FAULTS = {
    "broker_outage": Fault(at=time(8, 30), kind="broker_outage", minutes=5),
    "reader_unplugged": Fault(
        at=time(8, 20), kind="reader_unplugged", reader="gate-1f-west-in", minutes=20
    ),
    "door_forced": Fault(at=time(9, 50), kind="door_forced", door="stair-a-2f"),
    "door_held_open": Fault(at=time(9, 50), kind="door_held_open", door="stair-a-1f", minutes=3),
    "fire": Fault(at=time(9, 45), kind="fire", minutes=4),
    "lockdown": Fault(at=time(8, 35), kind="lockdown", minutes=10),
    "lost_card_used": Fault(at=time(9, 0), kind="lost_card_used", gate="gate-1f-east"),
    "cloned_card": Fault(at=time(9, 10), kind="cloned_card", gate="gate-1f-west"),
    "duress": Fault(at=time(10, 30), kind="duress", gate="gate-1f-east"),
    "power_cut": Fault(at=time(8, 40), kind="power_cut", device="gate-1f-west", minutes=10),
    "clock_unsynchronised": Fault(
        at=time(9, 0), kind="clock_unsynchronised", device="sensors-2f-booths", minutes=90
    ),
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_each_fault_keeps_every_invariant(tmp_path: Path, kind: str) -> None:
    scenario = Scenario.model_validate({**DAY, "faults": [FAULTS[kind]]})
    with played(tmp_path, scenario) as (sim, report):
        assert not failed(report), failed(report)
        alarms, decisions = report.alarms, report.decisions
        notes = " | ".join(report.notes)
        # Tap -> console is measured on the wall clock: never more than the whole run took.
        wall_ms = 1000 * (sim.timing.setup_s + sim.timing.play_s + 60)
        f = report.figures
        assert 0 <= f["deliver_p50_ms"] <= f["deliver_max_ms"] < wall_ms, f
        match kind:
            case "broker_outage":
                assert sim.outages, notes
                assert 0 <= f["deliver_outage_max_ms"] < wall_ms, f
                assert sim.recovery_s, notes
                assert "the broker is back; the console had every stored event" in notes
            case "reader_unplugged":
                assert alarms["reader_offline/raised"] == alarms["reader_offline/cleared"] == 1
            case "door_forced":
                assert alarms["door_forced/raised"] == 1
            case "door_held_open":
                assert alarms["door_held_open/pre_alarm"] == alarms["door_held_open/raised"] == 1
                assert alarms["door_held_open/cleared"] == 1
            case "fire":
                names = [c.name for c in report.checks]
                assert any(n.startswith("fire released every stairway door") for n in names)
                assert any(n.startswith("roll call at fire") for n in names)
                assert alarms["fire/raised"] == len(sim.building.stair_doors)
            case "lockdown":
                assert decisions.get("denied/lockdown", 0) > 0, decisions
            case "lost_card_used":
                assert alarms["lost_card_used/raised"] == 1
            case "cloned_card":
                assert alarms["clone_suspected/raised"] == 1
                assert decisions["denied/card_not_authenticated"] == 1, decisions
                check = next(c for c in report.checks if c.name.startswith("copies of proving"))
                assert "tried 1" in check.detail
                assert not [n for n in report.notes if "GRANTED" in n]
                # The guards' own proving cards kept working: their proven taps were granted.
                proving = {
                    card_reference(sim.card_key, p.technology, p.card_id)
                    for p in sim.people
                    if p.profile != "uid"
                }
                granted = [
                    e
                    for e in sim.collector.log.entries()
                    if e.kind == "access"
                    and e.type == "granted"
                    and e.body.get("card_ref") in proving
                ]
                assert granted, "no guard's proving card was granted all day"
            case "duress":
                assert alarms["duress/raised"] == 1
                check = next(c for c in report.checks if c.name.startswith("duress:"))
                assert "keyed 1" in check.detail
                assert "doors opened 1" in check.detail
                assert "duress alarms in the log 1" in check.detail
                assert not [n for n in report.notes if "did NOT open" in n]
                pin_denials = {"denied/wrong_pin", "denied/pin_timeout", "denied/no_pin"}
                assert not pin_denials & set(decisions), decisions
                assert not [k for k in sim.world.truth.taps if k.endswith("/pin_wanted")]
                # The guards keyed their own PIN at the keypad's reader and went in.
                guards = {
                    card_reference(sim.card_key, p.technology, p.card_id)
                    for p in sim.people
                    if p.pin is not None
                }
                at_keypad = [
                    e.body.get("reason")
                    for e in sim.collector.log.entries()
                    if e.kind == "access"
                    and e.type in ("granted", "denied")
                    and e.body.get("reader") == "gate-1f-east-in"
                    and e.body.get("card_ref") in guards
                ]
                assert len(at_keypad) >= 2, at_keypad  # the duress tap and the guards' own
                assert set(at_keypad) == {"granted"}, at_keypad
            case "power_cut":
                assert sim.restarts == {"gate-1f-west": 1}
                assert "gate-1f-west powered up again" in notes
            case "clock_unsynchronised":
                check = next(c for c in report.checks if "clock_synced=false" in c.name)
                assert "sensors-2f-booths" in check.detail


@pytest.fixture(scope="module")
def tampered_day(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """One clean day, left open so each test can break one thing and re-check."""
    scenario = Scenario.model_validate({**DAY, "faults": [FAULTS["fire"], FAULTS["door_forced"]]})
    with played(tmp_path_factory.mktemp("day"), scenario) as (sim, report):
        assert not failed(report), failed(report)
        yield sim


def _check(sim, prefix: str):  # type: ignore[no-untyped-def]
    return next(c for c in build_report(sim).checks if c.name.startswith(prefix))


def test_the_report_sees_a_lost_event(tampered_day) -> None:  # type: ignore[no-untyped-def]
    sim = tampered_day
    db = sim.collector.log.db
    row = db.execute("SELECT id, device, seq FROM events WHERE seq = 5 LIMIT 1").fetchone()
    saved = db.execute("SELECT * FROM events WHERE id = ?", [row[0]]).fetchone()
    db.execute("DELETE FROM events WHERE id = ?", [row[0]])
    db.execute("UPDATE devices SET contiguous = 4 WHERE device = ?", [row[1]])
    try:
        assert not _check(sim, "every event arrived exactly once").ok
    finally:
        db.execute(f"INSERT INTO events VALUES ({','.join('?' * len(saved))})", saved)
        sim.collector.log.append([], "restore")
        db.execute("UPDATE devices SET contiguous = max_seq WHERE device = ?", [row[1]])
    assert _check(sim, "every event arrived exactly once").ok


def test_the_report_sees_a_release_without_a_reason(tampered_day) -> None:  # type: ignore[no-untyped-def]
    sim = tampered_day
    relays = sim.world.truth.relays["gate-1f-east"]
    relays.append((sim.engine.now - 1234.5, True))
    try:
        assert not _check(sim, "no lock released without").ok
    finally:
        relays.pop()


def test_the_report_sees_a_wrong_roll_call(tampered_day) -> None:  # type: ignore[no-untyped-def]
    sim = tampered_day
    checks_before = len(sim.checks)
    someone = next(p for p in sim.people if p.staff_no not in sim.world.truth.inside)
    sim.world.truth.inside[someone.staff_no] = someone  # the truth says they are inside
    try:
        sim.roll_call_check("tampering")
        assert not sim.checks[-1].ok
        assert someone.staff_no in sim.checks[-1].detail
    finally:
        del sim.world.truth.inside[someone.staff_no]
        del sim.checks[checks_before:]


def test_the_report_sees_a_missing_fire_release(tampered_day) -> None:  # type: ignore[no-untyped-def]
    sim = tampered_day
    door = sim.building.stair_doors[0].id
    saved = list(sim.world.truth.relays[door])
    sim.world.truth.relays[door] = [c for c in saved if c[0] < sim.fire_at]
    try:
        assert not _check(sim, "fire released every stairway door").ok
    finally:
        sim.world.truth.relays[door] = saved


def test_the_report_sees_an_unexpected_alarm(tampered_day) -> None:  # type: ignore[no-untyped-def]
    sim = tampered_day
    saved = list(sim.expected_alarms)
    sim.expected_alarms[:] = [a for a in saved if a[2] != "door_forced"]
    try:
        assert not _check(sim, "no alarm the faults did not call for").ok
    finally:
        sim.expected_alarms[:] = saved
    sim.expected_alarms.append((sim.engine.now - 60, "gate-1f-east", "door_forced"))
    try:
        assert not _check(sim, "every fault raised its alarm").ok
    finally:
        sim.expected_alarms[:] = saved
    assert _check(sim, "every fault raised its alarm").ok
