"""The door state machine, scenario by scenario, through the controller."""

from __future__ import annotations

from dataclasses import replace
from datetime import time as clock_time

from edge.core.controller import DeviceState
from edge.core.door import DoorMode
from edge.core.events import (
    CardPresented,
    ContactChanged,
    ExitPressed,
    FireInputChanged,
    ReaderStatusChanged,
    ResetAlarms,
    ResetFire,
    SetHoldOpen,
    SetLockdown,
    UnlockOnce,
)
from edge.core.outputs import EventKind, Indicate, Signal
from edge.core.policy import AccessPolicy
from edge.core.schedule import EVERY_DAY, Schedule, TimeRange, Window
from tests.edge.core.harness import GATE, POLICY, SPEC, Harness, make_harness, records, relay


def alarm_states(outputs: list, type_: str) -> list[str]:  # type: ignore[type-arg]
    return [r["state"] for r in records(outputs, EventKind.ALARM, type_)]


def test_grant_unlocks_then_relocks_when_the_door_closes(h: Harness) -> None:
    out = h.send(CardPresented("gate-in", "ref-bob"))
    assert relay(out, "gate") == ["unlock"]
    assert Indicate("gate", Signal.GRANT, "gate-in") in out
    out = h.send(ContactChanged("gate", True))
    (crossing,) = records(out, EventKind.ACCESS, "crossing")
    assert (crossing["from_zone"], crossing["to_zone"]) == ("lobby", "staff")
    assert relay(out, "gate") == []  # stays released while the leaf is open
    out = h.send(ContactChanged("gate", False))
    assert relay(out, "gate") == ["lock"]
    assert not alarm_states(h.log, "door_forced")


def test_unused_unlock_relocks_after_unlock_s_and_records_no_crossing(h: Harness) -> None:
    h.send(CardPresented("gate-in", "ref-bob"))
    assert relay(h.advance(4.9, step=0.1), "gate") == []
    out = h.advance(0.2, step=0.1)
    assert relay(out, "gate") == ["lock"]
    assert records(out, EventKind.DOOR, "locked")[0]["cause"] == "not_opened"
    h.send(ContactChanged("gate", True))
    assert not records(h.log, EventKind.ACCESS, "crossing")
    assert alarm_states(h.log, "door_forced") == ["raised"]


def test_denied_card_signals_red_and_never_unlocks(h: Harness) -> None:
    out = h.send(CardPresented("gate-in", "ref-visitor"))
    assert relay(out, "gate") == []
    assert Indicate("gate", Signal.DENY, "gate-in") in out


def test_forced_door_alarm_raises_and_clears_on_close(h: Harness) -> None:
    out = h.send(ContactChanged("gate", True))
    assert alarm_states(out, "door_forced") == ["raised"]
    assert Indicate("gate", Signal.ALARM) in out
    out = h.send(ContactChanged("gate", False))
    assert alarm_states(out, "door_forced") == ["cleared"]
    assert Indicate("gate", Signal.QUIET) in out


def test_exit_button_unlocks_without_forced_alarm_even_in_lockdown(h: Harness) -> None:
    h.send(SetLockdown(True))
    out = h.send(ExitPressed("gate"))
    assert relay(out, "gate") == ["unlock"]
    h.send(ContactChanged("gate", True))
    assert not alarm_states(h.log, "door_forced")


def test_held_open_warns_then_alarms_then_clears(h: Harness) -> None:
    h.send(CardPresented("gate-in", "ref-bob"))
    h.send(ContactChanged("gate", True))
    assert alarm_states(h.advance(19), "door_held_open") == []
    out = h.advance(1)  # 20 s = held_open_s - pre_alarm_s
    assert alarm_states(out, "door_held_open") == ["pre_alarm"]
    assert Indicate("gate", Signal.PRE_ALARM) in out
    assert alarm_states(h.advance(9), "door_held_open") == []
    out = h.advance(1)
    assert alarm_states(out, "door_held_open") == ["raised"]
    out = h.send(ContactChanged("gate", False))
    assert alarm_states(out, "door_held_open") == ["cleared"]
    assert relay(out, "gate") == ["lock"]
    assert Indicate("gate", Signal.QUIET) in out


def test_wall_clock_step_does_not_fire_timers(h: Harness) -> None:
    h.send(CardPresented("gate-in", "ref-bob"))
    h.send(ContactChanged("gate", True))
    h.clock.step_wall_clock(3600)  # NTP corrects a clock that was an hour behind
    assert alarm_states(h.advance(1), "door_held_open") == []


def test_alarm_reset_clears_and_supervises_afresh(h: Harness) -> None:
    h.send(ContactChanged("gate", True))
    h.advance(30)
    out = h.send(ResetAlarms("gate", by="guard1"))
    assert alarm_states(out, "door_forced") == ["cleared"]
    assert alarm_states(out, "door_held_open") == ["cleared"]
    assert alarm_states(h.advance(19), "door_held_open") == []
    assert alarm_states(h.advance(11), "door_held_open") == ["pre_alarm", "raised"]


def test_fire_releases_fail_safe_doors_only_and_beats_lockdown(h: Harness) -> None:
    h.send(SetLockdown(True))
    out = h.send(FireInputChanged("stair", True))
    assert relay(out, "stair") == ["unlock"]
    assert relay(out, "gate") == []  # fail-secure: egress by the handle
    assert h.controller.doors["stair"].mode is DoorMode.FIRE_RELEASE
    assert h.controller.doors["gate"].mode is DoorMode.LOCKDOWN
    h.send(ContactChanged("stair", True))
    assert alarm_states(h.advance(120), "door_held_open") == []
    assert not alarm_states(h.log, "door_forced")


def test_manual_fire_reset_holds_release_until_an_operator_resets(h: Harness) -> None:
    h.send(FireInputChanged("stair", True))
    out = h.send(FireInputChanged("stair", False))
    assert records(out, EventKind.ALARM, "fire")[0]["reset_required"] is True
    assert relay(out, "stair") == []
    assert h.controller.doors["stair"].unlocked
    h.send(FireInputChanged("stair", True))
    refused = h.send(ResetFire(by="op"))
    assert records(refused, EventKind.SYSTEM, "fire_reset_refused")
    assert h.controller.doors["stair"].unlocked
    h.send(FireInputChanged("stair", False))
    assert relay(h.send(ResetFire(by="op")), "stair") == ["lock"]


def test_auto_fire_reset_relocks_when_the_input_clears() -> None:
    h = make_harness(fire_reset_manual=False)
    assert relay(h.send(FireInputChanged("stair", True)), "stair") == ["unlock"]
    assert relay(h.send(FireInputChanged("stair", False)), "stair") == ["lock"]


def test_fire_from_any_input_releases_the_device(h: Harness) -> None:
    h.send(FireInputChanged("gate", True))
    h.send(FireInputChanged("stair", True))
    h.send(FireInputChanged("gate", False))
    assert h.controller.fire_inputs == {"stair"}
    assert h.controller.doors["stair"].unlocked


def test_hold_open_by_command_and_lockdown_suppresses_it(h: Harness) -> None:
    assert relay(h.send(SetHoldOpen("gate", True, by="op")), "gate") == ["unlock"]
    h.send(ContactChanged("gate", True))
    assert alarm_states(h.advance(60), "door_held_open") == []
    out = h.send(SetLockdown(True))
    assert relay(out, "gate") == ["lock"]
    assert alarm_states(h.advance(30), "door_held_open") == ["pre_alarm", "raised"]
    out = h.send(SetLockdown(False))
    assert relay(out, "gate") == ["unlock"]
    assert alarm_states(out, "door_held_open") == ["cleared"]


def test_lockdown_cancels_a_pending_unlock(h: Harness) -> None:
    h.send(CardPresented("gate-in", "ref-bob"))
    assert relay(h.send(SetLockdown(True)), "gate") == ["lock"]


def test_unlock_once_by_command(h: Harness) -> None:
    out = h.send(UnlockOnce("gate", by="console"))
    assert relay(out, "gate") == ["unlock"]
    assert records(out, EventKind.DOOR, "unlocked")[0]["cause"] == "command:console"
    assert relay(h.advance(6), "gate") == ["lock"]


def test_door_without_contact_counts_the_crossing_at_the_grant() -> None:
    spec = replace(SPEC, doors=(replace(GATE, has_contact=False), SPEC.doors[1]))
    h = make_harness(spec=spec)
    out = h.send(CardPresented("gate-in", "ref-bob"))
    assert records(out, EventKind.ACCESS, "crossing")
    assert relay(h.advance(6), "gate") == ["lock"]


def test_mode_changes_are_recorded(h: Harness) -> None:
    out = h.send(SetLockdown(True, by="console"))
    modes = records(out, EventKind.DOOR, "mode")
    assert {(m["door"], m["mode"], m["previous"]) for m in modes} == {
        ("gate", "lockdown", "normal"),
        ("stair", "lockdown", "normal"),
    }


def test_reader_offline_alarm_raises_once_and_clears() -> None:
    h = make_harness()
    out = h.send(ReaderStatusChanged("gate-in", False, "unplugged"))
    assert alarm_states(out, "reader_offline") == ["raised"]
    assert h.send(ReaderStatusChanged("gate-in", False)) == []
    assert alarm_states(h.send(ReaderStatusChanged("gate-in", True)), "reader_offline") == [
        "cleared"
    ]
    assert h.send(ReaderStatusChanged("gate-in", True)) == []


def test_a_stuck_open_contact_does_not_keep_the_lock_released(h: Harness) -> None:
    h.send(ContactChanged("gate", True))  # the contact reads open (stuck, or a propped door)
    assert relay(h.send(ExitPressed("gate")), "gate") == ["unlock"]
    out = h.advance(5.5, step=0.5)
    assert relay(out, "gate") == ["lock"]  # already open at the unlock: relock at unlock_s
    assert records(out, EventKind.DOOR, "locked")[0]["cause"] == "unlock_time_over"


def test_a_door_left_open_after_a_grant_relocks_after_held_open_s(h: Harness) -> None:
    h.send(CardPresented("gate-in", "ref-bob"))
    h.send(ContactChanged("gate", True))
    assert relay(h.advance(30, step=1), "gate") == []  # 5 s unlock + up to 30 s held open
    out = h.advance(6, step=1)
    assert relay(out, "gate") == ["lock"]
    assert records(out, EventKind.DOOR, "locked")[0]["cause"] == "held_open"


def test_a_schedule_held_door_open_at_start_is_not_forced() -> None:
    open_all_day = Schedule(
        "lobby-hours", (Window(EVERY_DAY, TimeRange(clock_time(0))),), (TimeRange(clock_time(0)),)
    )
    policy = AccessPolicy(
        rules=POLICY.rules,
        schedules={**POLICY.schedules, "lobby-hours": open_all_day},
        door_schedules={"gate": "lobby-hours"},
    )
    h = make_harness(policy=policy)
    out = h.controller.restore(h.clock.now(), DeviceState())
    assert relay(out, "gate") == ["unlock"]
    assert not alarm_states(h.send(ContactChanged("gate", True)), "door_forced")
