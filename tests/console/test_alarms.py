"""Live alarms from the log: lasting ones until cleared, one-shots until acknowledged, gaps."""

from __future__ import annotations

from pathlib import Path

from console.alarms import acknowledge, active
from console.log import CentralLog
from console.users import audit_trail


def alarm(device: str, seq: int, type_: str, state: str = "raised", **data: object) -> dict:
    return {
        "v": 1,
        "id": f"{device}:{seq}",
        "seq": seq,
        "device": device,
        "ts": f"2026-12-01T00:00:{seq:02d}.000Z",
        "kind": "alarm",
        "type": type_,
        "state": state,
        **data,
    }


def test_alarms_come_and_go_as_a_guard_expects(tmp_path: Path) -> None:
    log = CentralLog(tmp_path / "log.db")
    log.append(
        [
            alarm("gate", 1, "door_forced", door="gate-east"),
            alarm("gate", 2, "lost_card_used", door="gate-east", card_ref="ab" * 32),
            alarm("stair", 1, "door_held_open", "pre_alarm", door="stair-a-2f"),
        ],
        "now",
    )
    types = {(a.device, a.type, a.state) for a in active(log)}
    assert types == {
        ("gate", "door_forced", "raised"),
        ("gate", "lost_card_used", "raised"),
        ("stair", "door_held_open", "pre_alarm"),
    }
    # The forced door is closed again: that alarm ends; the held-open one becomes an alarm.
    log.append(
        [
            alarm("gate", 3, "door_forced", "cleared", door="gate-east"),
            alarm("stair", 2, "door_held_open", "raised", door="stair-a-2f"),
        ],
        "now",
    )
    now = {(a.device, a.type, a.state) for a in active(log)}
    assert ("gate", "door_forced", "raised") not in now
    assert ("stair", "door_held_open", "raised") in now
    # A one-shot alarm has no end of its own: it goes when someone acknowledges it.
    lost = next(a for a in active(log) if a.type == "lost_card_used")
    assert lost.detail.startswith("card abababababab")  # never the whole reference
    assert acknowledge(log, lost.key, "guard1")
    assert "lost_card_used" not in {a.type for a in active(log)}
    assert not acknowledge(log, "gate:99", "guard1")  # not an active alarm
    # A lasting alarm acknowledged stays listed (it is still true), marked with who and when.
    held = next(a for a in active(log) if a.type == "door_held_open")
    acknowledge(log, held.key, "guard2")
    marked = next(a for a in active(log) if a.type == "door_held_open")
    assert marked.acked_by == "guard2"
    assert [row[2] for row in audit_trail(log)].count("alarm acknowledged") == 2


def test_a_gap_in_a_devices_sequence_is_an_alarm_until_it_is_filled(tmp_path: Path) -> None:
    log = CentralLog(tmp_path / "log.db")
    log.append([alarm("gate", n, "reader_offline", "cleared") for n in (1, 2, 5)], "now")
    missing = [a for a in active(log) if a.type == "missing_events"]
    assert len(missing) == 1
    assert missing[0].device == "gate"
    assert missing[0].detail == "seq 3, 4"
    log.append([alarm("gate", n, "reader_offline", "cleared") for n in (3, 4)], "later")
    assert [a for a in active(log) if a.type == "missing_events"] == []
