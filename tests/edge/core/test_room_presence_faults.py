"""Rooms whose sensors fault, radars that see nobody, still people a PIR lost, and restarts."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.core.controller import DeviceState
from edge.core.events import PresenceChanged, PresenceSensorStatus, RoomDoorChanged, Tick
from edge.core.outputs import EventKind
from edge.core.spec import PresenceSpec, RoomDoorSpec
from edge.core.zone_presence import RADAR_CLEAR_HOLDS
from tests.edge.core.harness import Harness, make_harness, records
from tests.edge.core.test_room_latch import (
    BOOTH_SPEC,
    HOLD_S,
    LATCH_AFTER_S,
    SETTLE_S,
    booth,
    door,
    last_occupancy,
    occupied,
    pir,
)

RADAR_HOLD_S = 10.0
RADAR_SPEC = replace(
    BOOTH_SPEC,
    presence=(PresenceSpec("booth-radar", "booth", hold_s=RADAR_HOLD_S, kind="ld2410-uart"),),
    room_doors=(
        RoomDoorSpec("booth-door", "booth", latch_after_s=LATCH_AFTER_S, settle_s=SETTLE_S),
    ),
)
RADAR_CLEAR_S = RADAR_CLEAR_HOLDS * RADAR_HOLD_S


def radar_booth() -> Harness:
    """A booth watched by an LD2410 alone, its door read closed and the radar heard at start."""
    h = make_harness(RADAR_SPEC)
    h.send(RoomDoorChanged("booth-door", is_open=False))
    radar(h, False)
    return h


def radar(h: Harness, active: bool) -> None:
    h.send(PresenceChanged("booth-radar", active))


def radar_status(h: Harness, ok: bool) -> None:
    h.send(PresenceSensorStatus("booth-radar", ok=ok, detail="" if ok else "no report for 5 s"))


def test_a_sensor_in_fault_never_latches_a_room() -> None:
    h = booth()
    door(h, True)
    pir(h, True)  # someone inside, seen
    h.send(PresenceSensorStatus("booth-pir", ok=False, detail="no report for 5 s"))
    door(h, False)  # they walk out and shut the door; the sensor's last word was "someone"
    h.advance(LATCH_AFTER_S + 1)
    assert records(h.log, EventKind.PRESENCE, "room_latched") == []


def test_a_radar_that_faulted_while_on_does_not_hold_a_room_its_person_left() -> None:
    h = radar_booth()
    door(h, True)
    radar(h, True)  # someone in the booth
    radar_status(h, ok=False)  # the radar falls silent while it sees them
    door(h, False)  # they walk out and shut the door
    h.advance(20)
    radar_status(h, ok=True)  # it reports again: no target
    radar(h, False)
    h.advance(RADAR_CLEAR_S - 1)
    assert occupied(h)
    h.advance(1)
    assert not occupied(h)
    assert last_occupancy(h)["occupied"] is False
    assert last_occupancy(h)["sensor_ok"] is True


def test_a_shut_rooms_radar_seeing_nobody_long_enough_clears_its_latch() -> None:
    h = radar_booth()
    h.advance(1)
    radar(h, True)  # someone seen after the close
    assert records(h.log, EventKind.PRESENCE, "room_latched")
    h.advance(600, step=10)
    radar(h, False)
    h.advance(RADAR_CLEAR_S - 5)
    radar(h, True)  # seen again before the time ran out: the quiet starts over
    radar(h, False)
    h.advance(RADAR_CLEAR_S - 1)
    assert occupied(h)
    assert records(h.log, EventKind.PRESENCE, "room_unlatched") == []
    h.advance(1)
    (unlatched,) = records(h.log, EventKind.PRESENCE, "room_unlatched")
    assert unlatched["zone"] == "booth"
    assert not occupied(h)
    radar(h, True)  # someone was there after all: latched again, the door still shut
    assert len(records(h.log, EventKind.PRESENCE, "room_latched")) == 2
    assert occupied(h)


def test_a_radar_in_fault_never_clears_a_latch() -> None:
    h = radar_booth()
    h.advance(1)
    radar(h, True)
    radar(h, False)
    radar_status(h, ok=False)
    h.advance(10 * RADAR_CLEAR_S, step=10)
    assert occupied(h)
    radar_status(h, ok=True)  # back, seeing nobody: the quiet counts from now
    h.advance(RADAR_CLEAR_S - 1)
    assert occupied(h)
    h.advance(1)
    assert not occupied(h)


def test_an_ld2410_is_not_ok_until_its_first_report() -> None:
    h = make_harness(RADAR_SPEC)
    assert h.controller.presence.sensor_ok("booth") is False
    out = h.send(PresenceChanged("booth-radar", False))
    (occupancy,) = records(out, EventKind.OCCUPANCY)
    assert (occupancy["zone"], occupancy["occupied"], occupancy["sensor_ok"]) == (
        "booth",
        False,
        True,
    )
    # A PIR has no report to wait for.
    assert make_harness(BOOTH_SPEC).controller.presence.sensor_ok("booth") is True


@settings(max_examples=60, deadline=None)
@given(drop_s=st.floats(0.0, LATCH_AFTER_S - 0.1), still_s=st.floats(HOLD_S, SETTLE_S - 12))
def test_a_person_sitting_still_after_shutting_the_door_is_never_shown_vacant(
    drop_s: float, still_s: float
) -> None:
    h = booth()
    door(h, True)
    pir(h, True)  # they step in
    door(h, False)  # and shut the door behind them
    h.advance(drop_s)
    pir(h, False)  # the PIR drops before the latch's check, and they sit still
    for _ in range(int(still_s // 5)):
        h.advance(5)
        assert occupied(h)
        assert last_occupancy(h)["occupied"] is True
    pir(h, True)  # they move
    pir(h, False)
    assert records(h.log, EventKind.PRESENCE, "room_latched")
    h.advance(3600, step=60)
    assert occupied(h)
    assert all(r["occupied"] for r in records(h.log, EventKind.OCCUPANCY))


def test_a_restart_sends_every_presence_zones_occupancy_again() -> None:
    h = booth()
    h.advance(1)
    pir(h, True)
    pir(h, False)
    state = h.controller.snapshot()
    again = make_harness(BOOTH_SPEC)
    out = again.controller.restore(again.clock.now(), state)
    sent = {r["zone"]: (r["occupied"], r["sensor_ok"]) for r in records(out, EventKind.OCCUPANCY)}
    assert sent == {"booth": (True, True), "hall": (False, True)}
    # And with nothing saved, every presence zone still says where it stands now.
    fresh = make_harness(RADAR_SPEC)
    out = fresh.controller.restore(fresh.clock.now(), DeviceState())
    sent = {r["zone"]: (r["occupied"], r["sensor_ok"]) for r in records(out, EventKind.OCCUPANCY)}
    assert sent == {"booth": (False, False)}  # the radar has not reported yet


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("door"), st.booleans()),
            st.tuples(st.just("radar"), st.booleans()),
            st.tuples(st.just("ok"), st.booleans()),
            st.tuples(st.just("wait"), st.floats(0.1, 4 * RADAR_CLEAR_S)),
        ),
        max_size=30,
    ),
    fraction=st.floats(0.0, 0.999),
)
def test_a_radar_rooms_timers_are_all_in_the_next_deadline(
    steps: list[tuple[str, object]], fraction: float
) -> None:
    """The simulator skips time up to next_deadline(): the radar's clearing must be in it."""
    h = radar_booth()
    for action, value in steps:
        if action == "door":
            door(h, bool(value))
        elif action == "radar":
            radar(h, bool(value))
        elif action == "ok":
            radar_status(h, bool(value))
        else:
            h.advance(float(value))
    deadline = h.controller.next_deadline()
    now = h.clock.now()
    horizon = now.mono + 3600 if deadline is None else deadline
    before = occupied(h)
    h.clock.advance((horizon - now.mono) * fraction)
    out = h.send(Tick())
    assert records(out, EventKind.PRESENCE) == []
    assert occupied(h) == before
