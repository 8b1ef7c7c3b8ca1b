"""Turn the validated device configuration into the core's plain specification."""

from __future__ import annotations

from edge.core.spec import (
    AntiPassback,
    CardSecurity,
    DeviceSpec,
    Direction,
    DoorSpec,
    FailMode,
    OfflineFallback,
    PinMode,
    PresenceSpec,
    ReaderSpec,
    RoomDoorSpec,
    ZoneSpec,
)
from firmware_config.model import DeviceConfig


def device_spec(config: DeviceConfig) -> DeviceSpec:
    """Return the core's view of `config`: doors, readers, zones and sensors."""
    return DeviceSpec(
        id=config.device.id,
        timezone=config.site.timezone,
        fire_reset_manual=config.device.fire_reset == "manual",
        zones=tuple(
            ZoneSpec(
                id=z.id,
                name=z.name,
                kind=z.kind,
                capacity=z.capacity,
                anti_passback=AntiPassback(z.anti_passback),
                forgive_at=z.anti_passback_forgive_at,
                offline=OfflineFallback(z.anti_passback_offline),
            )
            for z in config.zones
        ),
        doors=tuple(
            DoorSpec(
                id=d.id,
                outside_zone=d.outside_zone,
                inside_zone=d.inside_zone,
                fail=FailMode(d.fail),
                unlock_s=d.unlock_s,
                held_open_s=d.held_open_s,
                pre_alarm_s=d.pre_alarm_s,
                has_contact=d.contact is not None,
                has_fire_input=d.fire_input is not None,
            )
            for d in config.doors
        ),
        readers=tuple(
            ReaderSpec(
                r.id,
                r.door,
                Direction(r.direction),
                CardSecurity(r.security),
                has_keypad=r.keypad is not None,
                pin=PinMode(r.pin),
                pin_timeout_s=r.pin_timeout_s,
                pin_attempts=r.pin_attempts,
                pin_lockout_s=r.pin_lockout_s,
            )
            for r in config.readers
        ),
        presence=tuple(PresenceSpec(p.id, p.zone, p.hold_s, p.kind) for p in config.presence),
        room_doors=tuple(
            RoomDoorSpec(d.id, d.zone, d.latch_after_s, d.settle_s) for d in config.room_doors
        ),
    )
