"""Presence in the store: each sensor's fault is its own lasting alarm, and the occupied
sensors and latched rooms come back after a restart."""

from __future__ import annotations

from datetime import UTC, datetime

from edge.core.controller import DeviceState
from edge.core.outputs import EventKind, EventRecord
from edge.store import Store, outbox, state

TS = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def fault(sensor: str, raised: bool) -> EventRecord:
    return EventRecord(
        EventKind.ALARM,
        "presence_sensor_fault",
        TS,
        {"sensor": sensor, "zone": "meeting-3a", "state": "raised" if raised else "cleared"},
    )


def test_two_sensors_of_one_zone_fault_and_clear_apart() -> None:
    with Store(":memory:", memory=True) as store:
        records = [fault("radar-door", True), fault("radar-window", True)]
        with store.transaction() as db:
            outbox.append(db, "sensors-3f", records, True)
            state.apply(db, records, DeviceState(), DeviceState())
        assert sorted(str(a["sensor"]) for a in state.active_alarms(store.db)) == [
            "radar-door",
            "radar-window",
        ]
        cleared = [fault("radar-door", False)]
        with store.transaction() as db:
            outbox.append(db, "sensors-3f", cleared, True)
            state.apply(db, cleared, DeviceState(), DeviceState())
        (left,) = state.active_alarms(store.db)
        assert (left["type"], left["sensor"], left["zone"]) == (
            "presence_sensor_fault",
            "radar-window",
            "meeting-3a",
        )


def test_occupied_sensors_and_latched_rooms_survive_a_restart() -> None:
    saved = DeviceState(occupied_sensors=("booth-1-pir",), latched_rooms=("booth-1",))
    with Store(":memory:", memory=True) as store:
        with store.transaction() as db:
            state.apply(db, [], saved, DeviceState())
        modes, _, _ = state.load(store.db)
    assert modes == saved
