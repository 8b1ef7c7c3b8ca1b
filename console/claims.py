"""What each device may claim: its provisioned doors, readers, zones, sensors and event types.

The provisioning site directory holds one configuration per device
(`SITE/devices/{device}.toml`, read with `firmware_config.loader`). A device may report only
the event kinds and types its role produces (as the agent's core records them) and only about
its own doors, readers, zones and sensors; anything else is refused with the reason. The files
are read again when they change (their mtime), at most once a second.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from firmware_config.errors import ConfigError
from firmware_config.loader import load_config
from firmware_config.model import DeviceConfig

log = logging.getLogger(__name__)

RESCAN_S: Final = 1.0
CARD_REF: Final = re.compile(r"[0-9a-f]{64}")
SLUG: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")  # a device or zone id (firmware_config)

# Every role: the agent's own life, commands, and device-wide alarms.
_COMMON: Final[dict[str, frozenset[str]]] = {
    "system": frozenset(
        {
            "started",
            "internal_error",
            "credentials_applied",
            "credentials_refused",
            "lockdown",
            "fire_reset",
            "fire_reset_refused",
            "unknown_input",
        }
    ),
    "command": frozenset({"accepted", "refused"}),
    "alarm": frozenset({"store_corrupt", "hardware_fault", "credentials_stale"}),
}
# Anti-passback positions, head counts (their resets and forgiveness are where the console's
# summed counts start), button exits and card alarms are for devices with doors only.
_DOORS: Final[dict[str, frozenset[str]]] = {
    "system": frozenset(
        {"anti_passback_card_forgiven", "anti_passback_forgiven", "occupancy_reset"}
    ),
    "access": frozenset({"granted", "denied", "crossing", "button_exit"}),
    "door": frozenset({"exit_pressed", "mode", "unlocked", "locked", "opened", "closed"}),
    "alarm": frozenset(
        {
            "door_forced",
            "door_held_open",
            "reader_offline",
            "fire",
            "lost_card_used",
            "clone_suspected",
            "anti_passback_violation",
            "duress",
            "pin_attempts_exceeded",
            "anti_passback_degraded",
            "anti_passback_conflict",
        }
    ),
    "occupancy": frozenset({"zone"}),
}
# Movements through a door: both ends must be the two zones its door joins.
_PASSAGES: Final = frozenset({"crossing", "button_exit"})
# Where the console's summed head counts start (console.headcount).
_BASELINES: Final = frozenset({"occupancy_reset", "anti_passback_forgiven"})
# A room door's own records, and the latches its doors hold (one per room with a door).
_ROOM_DOOR_MOVES: Final = frozenset({"room_door_opened", "room_door_closed"})
_LATCHES: Final = frozenset({"room_latched", "room_unlatched"})
_SENSORS: Final[dict[str, frozenset[str]]] = {
    "presence": frozenset(
        {
            "occupied",
            "vacant",
            "room_door_opened",
            "room_door_closed",
            "room_latched",
            "room_unlatched",
        }
    ),
    "occupancy": frozenset({"zone"}),
    "alarm": frozenset({"presence_sensor_fault"}),
}
ROLE_EVENTS: Final[dict[str, dict[str, frozenset[str]]]] = {
    role: {kind: _COMMON.get(kind, frozenset()) | extra.get(kind, frozenset()) for kind in kinds}
    for role, extra in (("gate", _DOORS), ("door", _DOORS), ("sensor-node", _SENSORS))
    for kinds in [set(_COMMON) | set(extra)]
}


@dataclass(frozen=True, slots=True)
class Claims:
    """What one provisioned device has."""

    device: str
    role: str
    doors: Mapping[str, tuple[str, str]]  # door -> (outside zone, inside zone)
    readers: Mapping[str, str]  # reader -> its door
    zones: frozenset[str]
    sensors: Mapping[str, str]  # presence sensor -> its zone
    fire_inputs: frozenset[str]  # doors with a fire input
    zone_names: Mapping[str, str]  # zone -> the name security staff read
    room_doors: Mapping[str, str]  # room door -> the booth or meeting room it closes

    @classmethod
    def of(cls, config: DeviceConfig) -> Claims:
        """Return what a device configuration lets the device claim."""
        return cls(
            config.device.id,
            config.device.role,
            {d.id: (d.outside_zone, d.inside_zone) for d in config.doors},
            {r.id: r.door for r in config.readers},
            frozenset(z.id for z in config.zones),
            {p.id: p.zone for p in config.presence},
            frozenset(d.id for d in config.doors if d.fire_input is not None),
            {z.id: z.name for z in config.zones},
            {d.id: d.zone for d in config.room_doors},
        )

    def event(self, kind: str, body: Mapping[str, Any]) -> str | None:
        """Return why this device may not claim the event, or None if it may."""
        if body.get("kind") != kind:
            return f"event kind {_show(body.get('kind'))} sent on events/{_show(kind)}"
        type_ = body.get("type")
        allowed = ROLE_EVENTS.get(self.role, {}).get(kind)
        if allowed is None:
            return f"a {self.role} does not report {_show(kind)} events"
        if not isinstance(type_, str) or type_ not in allowed:
            return f"a {self.role} does not report {_show(kind)} {_show(type_)}"
        if "device" in body and body["device"] != self.device:
            return "the event names another device"
        data = body.get("data")
        for fields in (body, data) if isinstance(data, dict) else (body,):
            problem = self._fields(fields, type_)
            if problem:
                return problem
        if type_ in _PASSAGES:
            door = self.doors.get(str(body.get("door")))
            ends = (body.get("from_zone"), body.get("to_zone"))
            if door is None or not all(isinstance(z, str) for z in ends) or set(ends) != set(door):
                return f"a {type_} between zones its door does not join"
            if type_ == "button_exit" and ends != door[::-1]:
                return "a button_exit goes from its door's inside zone to its outside zone"
        if type_ in _ROOM_DOOR_MOVES and not _one_of(body.get("room_door"), self.room_doors):
            return f"a {type_} names no room door of its own"
        if type_ in _LATCHES and body.get("zone") not in set(self.room_doors.values()):
            return f"zone {_show(body.get('zone'))} of a {type_} is not a room with its door"
        card = body.get("card_ref")
        if card is not None and not (isinstance(card, str) and CARD_REF.fullmatch(card)):
            return "card_ref is not a card reference"
        if card is not None and type_ == "button_exit":
            return "a button_exit carries no card_ref"
        return None

    def occupancy(self, zone: str, body: Mapping[str, Any]) -> str | None:
        """Return why this device may not report occupancy of `zone`, or None if it may."""
        if zone not in self.zones:
            return f"occupancy of zone {_show(zone)}, not one of its zones"
        if body.get("zone", zone) != zone:
            return "the occupancy body names another zone than its topic"
        count = body.get("count", 0)
        if count is None:
            count = 0
        if not isinstance(count, int) or isinstance(count, bool) or not 0 <= count <= 100_000:
            return "occupancy count is not a whole number from 0 to 100000"
        return None if "id" not in body else self.event("occupancy", body)

    def _fields(self, fields: Mapping[str, Any], type_: str) -> str | None:
        door, reader = fields.get("door"), fields.get("reader")
        if door is not None and not _one_of(door, self.doors):
            return f"door {_show(door)} is not one of its doors"
        if reader is not None:
            if not _one_of(reader, self.readers):
                return f"reader {_show(reader)} is not one of its readers"
            if door is not None and self.readers[reader] != door:
                return f"reader {_show(reader)} is not at door {_show(door)}"
        for key in ("zone", "from_zone", "to_zone"):
            zone = fields.get(key)
            if key == "to_zone" and type_ == "anti_passback_conflict":
                # Where the card went at the peer: that gate's zone, which may not be ours.
                if not (isinstance(zone, str) and SLUG.fullmatch(zone)):
                    return f"to_zone {_show(zone)} is not a zone id"
            elif zone is not None and not _one_of(zone, self.zones):
                return f"{key} {_show(zone)} is not one of its zones"
        if type_ in _BASELINES and fields.get("zone") not in {
            z for ends in self.doors.values() for z in ends
        }:
            # Where the line's summed head count starts: only a zone a door of its leads to.
            return f"zone {_show(fields.get('zone'))} is not a zone its doors lead to"
        if type_ in ("anti_passback_conflict", "anti_passback_degraded"):
            problem = _passback_fields(fields, type_, self.device)
            if problem:
                return problem
        sensor = fields.get("sensor")
        if sensor is not None:
            if not _one_of(sensor, self.sensors):
                return f"sensor {_show(sensor)} is not one of its sensors"
            if fields.get("zone", self.sensors[sensor]) != self.sensors[sensor]:
                return f"sensor {_show(sensor)} does not watch that zone"
        room_door = fields.get("room_door")
        if room_door is not None:
            if not _one_of(room_door, self.room_doors):
                return f"room door {_show(room_door)} is not one of its room doors"
            if fields.get("zone", self.room_doors[room_door]) != self.room_doors[room_door]:
                return f"room door {_show(room_door)} does not close that zone"
        fire_input = fields.get("input")
        if type_ == "fire" and not (
            _one_of(fire_input, self.fire_inputs) or (fire_input is None and self.fire_inputs)
        ):
            return f"fire input {_show(fire_input)} is not one of its fire inputs"
        return None


class Registry:
    """The provisioned devices of a site, read from `SITE/devices/*.toml` (re-read on change)."""

    def __init__(self, site_dir: Path, site: str) -> None:
        self.site_dir = site_dir
        self.site = site
        self._files: dict[str, tuple[float, Claims | str]] = {}  # claims, or why not
        self._scanned = float("-inf")
        self.rescan()
        log.info("claims from %s: %d devices", self.devices_dir, len(self._files))

    def __repr__(self) -> str:
        return f"<Registry {self.devices_dir} devices={len(self._files)}>"

    @property
    def devices_dir(self) -> Path:
        """Where the device configurations live."""
        return self.site_dir / "devices"

    def known(self, device: str) -> bool:
        """True if `device` was provisioned at the last reading (cheap; any thread)."""
        return device in self._files

    def claims(self, device: str) -> Claims | None:
        """Return what `device` may claim, or None if it is not provisioned (or invalid)."""
        if time.monotonic() - self._scanned >= RESCAN_S:
            self.rescan()
        entry = self._files.get(device)
        return entry[1] if entry is not None and isinstance(entry[1], Claims) else None

    def zone_names(self) -> dict[str, str]:
        """Return {zone: its name} from every usable configuration (the first one's name)."""
        if time.monotonic() - self._scanned >= RESCAN_S:
            self.rescan()
        names: dict[str, str] = {}
        for _, claims in self._files.values():
            if isinstance(claims, Claims):
                for zone, name in claims.zone_names.items():
                    names.setdefault(zone, name)
        return names

    def unreadable(self) -> dict[str, str]:
        """Return {device: why its configuration is refused} for every configuration not used."""
        if time.monotonic() - self._scanned >= RESCAN_S:
            self.rescan()
        return {d: e[1] for d, e in sorted(self._files.items()) if isinstance(e[1], str)}

    def rescan(self) -> None:
        """Read the configurations that are new or changed; forget the removed ones."""
        self._scanned = time.monotonic()
        seen: dict[str, tuple[float, Claims | str]] = {}
        for path in sorted(self.devices_dir.glob("*.toml")):
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            old = self._files.get(path.stem)
            seen[path.stem] = old if old and old[0] == mtime else (mtime, self._load(path))
        self._files = seen

    def _load(self, path: Path) -> Claims | str:
        try:
            config = load_config(path)
        except ConfigError as error:
            log.warning("%s is not valid; its device is refused until fixed: %s", path, error)
            first = (str(error).splitlines() or [""])[0]
            return f"{path.name} is not valid: {_show(first, 120)}"
        if config.device.id != path.stem or config.site.id != self.site:
            log.warning("%s is for %s/%s; refused", path, config.site.id, config.device.id)
            return (
                f"{path.name} is for {_show(config.site.id)}/{_show(config.device.id)}, "
                f"not {_show(self.site)}/{_show(path.stem)}"
            )
        return Claims.of(config)


def _passback_fields(fields: Mapping[str, Any], type_: str, device: str) -> str | None:
    """Return what is wrong with an anti-passback alarm's own fields, or None."""
    if not isinstance(fields.get("zone"), str):
        return f"an {type_} names no zone"
    times = ("since",) if type_ == "anti_passback_degraded" else ("peer_ts", "own_ts")
    for key in times:
        value = fields.get(key)
        if value is not None and not (isinstance(value, str) and _TIME.fullmatch(value)):
            return f"{key} {_show(value)} is not a UTC time"
    if type_ == "anti_passback_conflict":
        peer = fields.get("peer")
        if not (isinstance(peer, str) and SLUG.fullmatch(peer)) or peer == device:
            return f"peer {_show(peer)} is not another device's id"
        if not isinstance(fields.get("card_ref"), str):
            return "an anti_passback_conflict names no card_ref"
    return None


_TIME: Final = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")


def _one_of(value: object, known: Mapping[str, Any] | frozenset[str]) -> bool:
    return isinstance(value, str) and value in known


def _show(value: object, width: int = 40) -> str:
    """Return a short, printable rendering of a claimed value for a refusal reason."""
    text = repr(value) if not isinstance(value, str) else value
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text[:width] + ("…" if len(text) > width else "")
