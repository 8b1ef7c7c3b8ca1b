"""Presence per zone: the sensors' debounced states, their faults and the rooms' latches.

Each method returns the records of what changed and the zones whose presence occupancy
changed; the controller adds the occupancy record of each (it knows the head counts).

A sensor in fault never counts as seeing someone. A shut room's radars (kinds that see a
person sitting still) saying nobody for `RADAR_CLEAR_HOLDS` x their hold since the room was
held clear its latch and its window after the close: a PIR's silence proves nothing, a
radar's that long does (3 x 10 s by default: longer than a still person's breathing is lost).
"""

from __future__ import annotations

from collections.abc import Iterable

from edge.core.clock import Instant
from edge.core.events import PresenceChanged, PresenceSensorStatus, RoomDoorChanged
from edge.core.outputs import EventKind, Output, record
from edge.core.presence import PresenceDebouncer
from edge.core.room_latch import RoomLatch
from edge.core.spec import DeviceSpec

RADAR_CLEAR_HOLDS = 3
"""How many of its hold times a shut room's radars must see nobody before the latch clears."""

Changes = tuple[list[Output], list[str]]
"""Records, and the zones whose occupancy by presence changed."""


class ZonePresence:
    """Every presence sensor and room latch of one device. Not thread-safe."""

    def __init__(self, spec: DeviceSpec) -> None:
        self.sensors = {p.id: PresenceDebouncer(p) for p in spec.presence}
        self._door_zone = {d.id: d.zone for d in spec.room_doors}
        self.latches: dict[str, RoomLatch] = {}
        for zone in dict.fromkeys(self._door_zone.values()):
            doors = [d for d in spec.room_doors if d.zone == zone]
            holds = [p.hold_s for p in spec.presence if p.zone == zone]
            self.latches[zone] = RoomLatch(
                zone,
                (d.id for d in doors),
                hold_s=max(holds, default=0.0),
                latch_after_s=max(d.latch_after_s for d in doors),
                settle_s=max(d.settle_s for d in doors),
            )

    def __repr__(self) -> str:
        return f"<ZonePresence sensors={len(self.sensors)} rooms={sorted(self.latches)}>"

    def occupied(self, zone: str) -> bool:
        """True while a sensor of the zone, or its room latch, says someone is there."""
        latch = self.latches.get(zone)
        return (latch is not None and latch.occupied) or any(
            s.occupied for s in self.sensors.values() if s.spec.zone == zone
        )

    def sensor_ok(self, zone: str) -> bool | None:
        """False while a sensor of the zone is in fault; None if the zone has no sensor."""
        sensors = [s for s in self.sensors.values() if s.spec.zone == zone]
        return None if not sensors else all(s.ok for s in sensors)

    def zones(self) -> list[str]:
        """Return the zones with a presence sensor or a room latch."""
        return list(dict.fromkeys([*(s.spec.zone for s in self.sensors.values()), *self.latches]))

    def presence(self, event: PresenceChanged, at: Instant) -> Changes:
        """Take a sensor's raw edge."""
        sensor = self.sensors.get(event.sensor)
        if sensor is None:
            return [_unknown("presence sensor", event.sensor, at)], []
        zone = sensor.spec.zone
        before = self.occupied(zone), self.sensor_ok(zone)
        rose = event.active and not sensor.active
        changed = sensor.edge(at, event.active)
        latch = self.latches.get(zone)
        latched = rose and latch is not None and latch.presence(at)
        out = [self._sensor_record(sensor, at)] if changed else []
        if latched:
            out.append(_latch_record("room_latched", zone, at))
        # A radar's first report changes sensor_ok: the zone's occupancy is sent again.
        return out, [zone] if (self.occupied(zone), self.sensor_ok(zone)) != before else []

    def sensor_status(self, event: PresenceSensorStatus, at: Instant) -> Changes:
        """Take a sensor's fault or its return: the lasting alarm presence_sensor_fault."""
        sensor = self.sensors.get(event.sensor)
        if sensor is None:
            return [_unknown("presence sensor", event.sensor, at)], []
        if not sensor.set_fault(at, not event.ok):
            return [], []
        alarm = record(
            EventKind.ALARM,
            "presence_sensor_fault",
            at.utc,
            sensor=sensor.spec.id,
            zone=sensor.spec.zone,
            state="cleared" if event.ok else "raised",
            detail=event.detail,
        )
        # The zone's occupancy is sent again: its sensor_ok changed, not its occupied.
        return [alarm], [sensor.spec.zone]

    def room_door(self, event: RoomDoorChanged, at: Instant) -> Changes:
        """Take a room door's contact: an opening clears the room's latch."""
        zone = self._door_zone.get(event.door)
        if zone is None:
            return [_unknown("room door", event.door, at)], []
        latch = self.latches[zone]
        before, was_latched = self.occupied(zone), latch.latched
        if not latch.door(at, event.door, event.is_open, occupied=before):
            return [], []
        kind = "room_door_opened" if event.is_open else "room_door_closed"
        out: list[Output] = [
            record(EventKind.PRESENCE, kind, at.utc, room_door=event.door, zone=zone)
        ]
        if was_latched and not latch.latched:
            out.append(_latch_record("room_unlatched", zone, at))
        return out, [zone] if self.occupied(zone) != before else []

    def tick(self, at: Instant) -> Changes:
        """Run the hold timers and the latches' checks."""
        out: list[Output] = []
        zones: list[str] = []
        for zone in self.zones():
            before = self.occupied(zone)
            for sensor in self.sensors.values():
                if sensor.spec.zone == zone and sensor.tick(at):
                    out.append(self._sensor_record(sensor, at))
            latch = self.latches.get(zone)
            if latch is not None:
                was_latched = latch.latched
                latch.tick(at, self._sensing(zone))
                if latch.latched and not was_latched:
                    out.append(_latch_record("room_latched", zone, at))
                cleared = self._radar_clear_at(zone)
                if cleared is not None and at.mono >= cleared:
                    was_latched = latch.latched
                    latch.release()
                    if was_latched:
                        out.append(_latch_record("room_unlatched", zone, at))
            if self.occupied(zone) != before:
                zones.append(zone)
        return out, zones

    def next_deadline(self) -> float | None:
        """Return the earliest monotonic time a tick may change something, or None."""
        times = [s.next_deadline() for s in self.sensors.values()]
        times += [latch.next_deadline() for latch in self.latches.values()]
        times += [self._radar_clear_at(zone) for zone in self.latches]
        return min((t for t in times if t is not None), default=None)

    def snapshot(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Return the occupied sensors and the latched rooms, to survive a restart."""
        return (
            tuple(sorted(s.spec.id for s in self.sensors.values() if s.occupied)),
            tuple(sorted(z for z, latch in self.latches.items() if latch.latched)),
        )

    def restore(self, at: Instant, sensors: Iterable[str], rooms: Iterable[str]) -> None:
        """Resume after a restart: occupied sensors hold again from now, latched rooms stay."""
        for sensor_id in sensors:
            if sensor_id in self.sensors:
                self.sensors[sensor_id].hold(at)
        for zone in rooms:
            if zone in self.latches:
                self.latches[zone].restore(at)

    def _sensing(self, zone: str) -> bool:
        return any(s.active and s.ok for s in self.sensors.values() if s.spec.zone == zone)

    def _radar_clear_at(self, zone: str) -> float | None:
        """Return when the shut room's radars will have seen nobody long enough, or None."""
        latch = self.latches[zone]
        if not latch.holding or latch.held_since is None or self._sensing(zone):
            return None
        radars = [s for s in self.sensors.values() if s.spec.zone == zone and s.spec.sees_still]
        quiet = [s.quiet_since for s in radars]
        if not radars or None in quiet:
            return None
        since = max([latch.held_since, *(q for q in quiet if q is not None)])
        return since + RADAR_CLEAR_HOLDS * max(s.spec.hold_s for s in radars)

    def _sensor_record(self, sensor: PresenceDebouncer, at: Instant) -> Output:
        return record(
            EventKind.PRESENCE,
            "occupied" if sensor.occupied else "vacant",
            at.utc,
            sensor=sensor.spec.id,
            zone=sensor.spec.zone,
        )


def _latch_record(kind: str, zone: str, at: Instant) -> Output:
    return record(EventKind.PRESENCE, kind, at.utc, zone=zone)


def _unknown(what: str, name: str, at: Instant) -> Output:
    return record(EventKind.SYSTEM, "unknown_input", at.utc, what=what, name=name)
