"""The room latch ("wasp in a box") and presence sensor faults, in the pure core."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.core.controller import Controller, DeviceState
from edge.core.events import PresenceChanged, PresenceSensorStatus, RoomDoorChanged, Tick
from edge.core.outputs import EventKind
from edge.core.spec import PresenceSpec, RoomDoorSpec, ZoneSpec
from tests.edge.core.harness import SPEC, Harness, make_harness, records

HOLD_S = 60.0
LATCH_AFTER_S = 10.0
SETTLE_S = 300.0
BOOTH_SPEC = replace(
    SPEC,
    zones=(*SPEC.zones, ZoneSpec("hall")),
    presence=(
        PresenceSpec("booth-pir", "booth", hold_s=HOLD_S),
        PresenceSpec("hall-pir", "hall", hold_s=HOLD_S),
    ),
    room_doors=(
        RoomDoorSpec("booth-door", "booth", latch_after_s=LATCH_AFTER_S, settle_s=SETTLE_S),
    ),
)


def booth() -> Harness:
    """A harness whose booth has a PIR and a door contact, read closed at start."""
    h = make_harness(BOOTH_SPEC)
    h.send(RoomDoorChanged("booth-door", is_open=False))
    return h


def occupied(h: Harness, zone: str = "booth") -> bool:
    return h.controller.presence.occupied(zone)


def last_occupancy(h: Harness, zone: str = "booth") -> dict[str, object]:
    return [r for r in records(h.log, EventKind.OCCUPANCY) if r["zone"] == zone][-1]


def pir(h: Harness, active: bool, sensor: str = "booth-pir") -> None:
    h.send(PresenceChanged(sensor, active))


def door(h: Harness, is_open: bool) -> None:
    h.send(RoomDoorChanged("booth-door", is_open))


def test_presence_after_the_door_closed_keeps_the_booth_occupied_for_hours() -> None:
    h = booth()
    h.advance(1)
    pir(h, True)
    pir(h, False)
    assert records(h.log, EventKind.PRESENCE, "room_latched") == [
        {
            "kind": "presence",
            "type": "room_latched",
            "ts": "2026-11-30T23:30:01.000Z",  # MORNING + 1 s, when the PIR saw them
            "zone": "booth",
        }
    ]
    h.advance(3 * 3600, step=60)
    assert occupied(h)
    assert last_occupancy(h)["occupied"] is True
    # The sensor itself went vacant after its hold; the room stays occupied by the latch.
    assert [r["type"] for r in records(h.log, EventKind.PRESENCE) if r.get("sensor")] == [
        "occupied",
        "vacant",
    ]


def test_opening_the_door_clears_the_latch_and_the_hold_runs_from_the_opening() -> None:
    h = booth()
    h.advance(1)
    pir(h, True)
    pir(h, False)
    h.advance(600, step=10)
    door(h, True)
    assert records(h.log, EventKind.PRESENCE, "room_unlatched")
    assert occupied(h)  # someone is walking out: the hold starts now
    h.advance(HOLD_S - 1)
    assert occupied(h)
    h.advance(1)
    assert not occupied(h)
    assert last_occupancy(h)["occupied"] is False


def test_someone_still_inside_after_the_door_opened_keeps_it_occupied() -> None:
    h = booth()
    h.advance(1)
    pir(h, True)
    pir(h, False)
    h.advance(600, step=10)
    door(h, True)
    h.advance(30)
    pir(h, True)  # the person who stayed moves
    pir(h, False)
    h.advance(HOLD_S - 1)
    assert occupied(h)


def test_a_door_opening_by_itself_never_makes_the_room_occupied() -> None:
    h = booth()
    for _ in range(5):
        door(h, True)
        h.advance(5)
        door(h, False)
        h.advance(5)
    assert not occupied(h)
    assert all(r["occupied"] is False for r in records(h.log, EventKind.OCCUPANCY))
    types = [r["type"] for r in records(h.log, EventKind.PRESENCE)]
    assert set(types) == {"room_door_opened", "room_door_closed"}
    assert not any("card_ref" in r for r in records(h.log, EventKind.PRESENCE))


def test_someone_walking_out_and_shutting_the_door_does_not_latch_it() -> None:
    h = booth()
    door(h, True)
    pir(h, True)  # the person inside, leaving
    door(h, False)  # shut behind them; the PIR output is still on for a moment
    h.advance(2)
    pir(h, False)
    h.advance(HOLD_S + 5)
    assert occupied(h)  # the window after the close: nobody may be sitting still inside
    h.advance(SETTLE_S - HOLD_S - 8)
    assert occupied(h)
    h.advance(1)
    assert records(h.log, EventKind.PRESENCE, "room_latched") == []
    assert not occupied(h)
    assert last_occupancy(h)["occupied"] is False


def test_a_radar_still_on_after_the_close_latches_the_room() -> None:
    h = booth()
    door(h, True)
    pir(h, True)  # a radar's output: on for a still person, it never rises again
    door(h, False)
    h.advance(LATCH_AFTER_S - 1)
    assert records(h.log, EventKind.PRESENCE, "room_latched") == []
    h.advance(1)
    assert len(records(h.log, EventKind.PRESENCE, "room_latched")) == 1


def test_the_latch_holds_only_its_own_zone() -> None:
    h = booth()
    h.advance(1)
    pir(h, True, "hall-pir")
    pir(h, False, "hall-pir")
    h.advance(HOLD_S + 1)
    assert not occupied(h, "hall")
    assert not occupied(h)


def test_a_restart_keeps_a_latched_booth_occupied_until_its_door_opens() -> None:
    h = booth()
    h.advance(1)
    pir(h, True)
    pir(h, False)
    state = h.controller.snapshot()
    assert state.latched_rooms == ("booth",)
    again = make_harness(BOOTH_SPEC)
    again.clock.advance(3600)
    again.controller.restore(again.clock.now(), state)
    again.send(RoomDoorChanged("booth-door", is_open=False))  # read at start: still shut
    again.send(PresenceChanged("booth-pir", False))
    again.advance(2 * HOLD_S)
    assert occupied(again)
    again.send(RoomDoorChanged("booth-door", is_open=True))
    again.advance(HOLD_S)
    assert not occupied(again)


def test_a_restart_holds_an_occupied_sensor_again_from_the_start() -> None:
    h = make_harness(BOOTH_SPEC)
    h.controller.restore(h.clock.now(), DeviceState(occupied_sensors=("booth-pir",)))
    h.send(PresenceChanged("booth-pir", False))  # the PIR, read at start, sees no movement
    h.advance(HOLD_S - 1)
    assert occupied(h)
    h.advance(1)
    assert not occupied(h)


def test_a_sensor_in_fault_never_turns_its_zone_vacant() -> None:
    h = make_harness(BOOTH_SPEC)
    pir(h, True)
    out = h.send(PresenceSensorStatus("booth-pir", ok=False, detail="no report for 5 s"))
    alarm = records(out, EventKind.ALARM, "presence_sensor_fault")[0]
    assert (alarm["state"], alarm["sensor"], alarm["zone"]) == ("raised", "booth-pir", "booth")
    assert records(out, EventKind.OCCUPANCY)[0]["sensor_ok"] is False
    h.advance(10 * HOLD_S, step=10)
    assert occupied(h)
    assert h.controller.next_deadline() is None
    out = h.send(PresenceSensorStatus("booth-pir", ok=True))
    assert records(out, EventKind.ALARM)[0]["state"] == "cleared"
    assert records(out, EventKind.OCCUPANCY)[0]["sensor_ok"] is True
    pir(h, False)
    h.advance(HOLD_S)
    assert not occupied(h)


def test_sensor_ok_is_none_for_a_zone_without_sensors() -> None:
    h = make_harness(BOOTH_SPEC)
    h.send(PresenceSensorStatus("booth-pir", ok=False))
    assert h.controller.presence.sensor_ok("lobby") is None
    assert h.controller.presence.sensor_ok("hall") is True
    assert h.controller.presence.sensor_ok("booth") is False


def test_unknown_room_doors_and_sensors_are_recorded_not_raised() -> None:
    h = make_harness(BOOTH_SPEC)
    for event in (RoomDoorChanged("nowhere", True), PresenceSensorStatus("ghost", ok=False)):
        out = h.send(event)
        assert records(out, EventKind.SYSTEM, "unknown_input")


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("pir"), st.booleans()),
        st.tuples(st.just("wait"), st.floats(0.1, 4 * HOLD_S)),
        st.tuples(st.just("fault"), st.booleans()),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(steps=STEPS)
def test_while_the_door_stays_shut_after_presence_the_booth_never_reads_vacant(
    steps: list[tuple[str, object]],
) -> None:
    h = booth()
    h.advance(1)
    pir(h, True)
    pir(h, False)
    for action, value in steps:
        if action == "pir":
            pir(h, bool(value))
        elif action == "fault":
            h.send(PresenceSensorStatus("booth-pir", ok=bool(value)))
        else:
            h.advance(float(value), step=max(1.0, float(value) / 10))
        assert occupied(h)
        assert last_occupancy(h)["occupied"] is True


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("door"), st.booleans()),
            st.tuples(st.just("wait"), st.floats(0.1, 2 * HOLD_S)),
        ),
        max_size=40,
    )
)
def test_doors_alone_never_make_the_booth_occupied(steps: list[tuple[str, object]]) -> None:
    h = booth()
    for action, value in steps:
        if action == "door":
            door(h, bool(value))
        else:
            h.advance(float(value), step=max(1.0, float(value) / 10))
        assert not occupied(h)


@settings(max_examples=100, deadline=None)
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("door"), st.booleans()),
            st.tuples(st.just("pir"), st.booleans()),
            st.tuples(st.just("wait"), st.floats(0.1, 2 * HOLD_S)),
        ),
        max_size=30,
    ),
    fraction=st.floats(0.0, 0.999),
)
def test_nothing_changes_before_the_next_deadline(
    steps: list[tuple[str, object]], fraction: float
) -> None:
    """The simulator skips time up to next_deadline(): the latch's timers must be in it."""
    h = booth()
    for action, value in steps:
        if action == "door":
            door(h, bool(value))
        elif action == "pir":
            pir(h, bool(value))
        else:
            h.advance(float(value))
    controller: Controller = h.controller
    deadline = controller.next_deadline()
    now = h.clock.now()
    horizon = now.mono + 3600 if deadline is None else deadline
    before = controller.presence.occupied("booth")
    h.clock.advance((horizon - now.mono) * fraction)
    out = h.send(Tick())
    assert records(out, EventKind.PRESENCE) == []
    assert controller.presence.occupied("booth") == before
