"""A building from a small description file: its zones, doors, sensors and devices.

The description (TOML, see simulator/buildings/kamakura.toml) names the gates of the
security line, the staff stairways, the lobby and the office floors with their departments,
booths and rooms. From it come one device configuration per Raspberry Pi, written with the
same keys an installer writes, and the layout the simulated staff walk through.

The first gate listed (the security office's side) has a 3x4 PIN keypad beside its
entrance reader, asked only of the groups that need a PIN (`rules require-pin`).

Booths (focus, phone, consultation) have a PIR and a door contact, so a person sitting still
behind a closed door keeps the booth occupied ("wasp in a box"); meeting rooms have an mmWave
sensor (an LD2410's OUT pin, high while anyone is there, moving or not) and a door contact.
Each department's free-seating area is split into desk islands, each its own presence zone
(`area-2f-1-a` … in the area `area-2f-1`).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

BUILDINGS = Path(__file__).resolve().parent / "buildings"
DEFAULT_BUILDING = BUILDINGS / "kamakura.toml"
# BCM pins a sensor node wires presence sensors to (2-3 are I2C, 14-15 the console UART).
SENSOR_PINS = (4, 5, 6, 12, 13, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27)
# A gate's PIN keypad: BCM pins its door (17, 22, 27) and reader lights (5, 6, 12, 16) leave free.
KEYPAD_ROWS = (18, 19, 20, 21)
KEYPAD_COLS = (24, 25, 26)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GateSpec(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    share: float = Field(gt=0, le=1, description="The share of staff who use this gate.")


class StairwaySpec(_Strict):
    ids: list[str] = Field(min_length=1)
    floors: list[int] = Field(min_length=2)


class LobbySpec(_Strict):
    consultation_booths: int = Field(0, ge=0, le=len(SENSOR_PINS))


class FloorSpec(_Strict):
    level: int = Field(ge=2, le=99)
    departments: list[str] = Field(min_length=1, max_length=len(SENSOR_PINS))
    islands: int = Field(4, ge=1, le=8, description="Desk islands per department's area.")
    focus_booths: int = Field(0, ge=0)
    phone_booths: int = Field(0, ge=0)
    meeting_rooms: list[int] = Field(default_factory=list, description="Capacities.")
    refresh_area: bool = False


class BuildingSpec(_Strict):
    """The description file."""

    site: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: str
    timezone: str = "Asia/Tokyo"
    staff: int = Field(ge=1)
    visitors: int = Field(0, ge=0)
    gates: list[GateSpec] = Field(min_length=1)
    anti_passback_offline: Literal["hard", "soft"] = Field(
        "hard",
        description="What a gate cut off from the others does in the security line: "
        '"hard" keeps refusing on what it knows, "soft" grants flagged and raises '
        "anti_passback_degraded.",
    )
    stairways: StairwaySpec
    lobby: LobbySpec = LobbySpec()
    floors: list[FloorSpec] = Field(min_length=1)


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    kind: str  # area | stairway | booth | meeting-room
    capacity: int | None = None
    floor: int = 1


@dataclass(frozen=True)
class Sensor:
    id: str
    zone: str
    pin: int
    hold_s: int
    kind: str = "pir"  # pir | mmwave


@dataclass(frozen=True)
class RoomDoor:
    """A booth's or meeting room's own (unlocked) door contact."""

    id: str
    zone: str
    pin: int


@dataclass(frozen=True)
class Area:
    """A department's free-seating area and the desk islands its sensors watch."""

    id: str
    name: str
    floor: int
    device: str
    islands: tuple[str, ...]


@dataclass(frozen=True)
class Door:
    """A card door and the device that drives it."""

    id: str
    device: str
    name: str
    outside: str
    inside: str
    fail: str  # secure | safe
    readers: dict[str, str]  # direction -> reader id
    stairway: str | None = None
    floor: int = 1
    keypads: tuple[str, ...] = ()  # the readers with a PIN keypad beside them

    @property
    def held_open_s(self) -> int:
        """Open longer than this: held-open alarm (people carry boxes up the stairs)."""
        return 30 if self.fail == "secure" else 60

    @property
    def pre_alarm_s(self) -> int:
        return 10 if self.fail == "secure" else 15


@dataclass
class Device:
    """One Raspberry Pi: its role, doors, sensors and zones."""

    id: str
    role: str  # gate | door | sensor-node
    doors: list[Door] = field(default_factory=list)
    sensors: list[Sensor] = field(default_factory=list)
    zones: list[Zone] = field(default_factory=list)
    room_doors: list[RoomDoor] = field(default_factory=list)


@dataclass(frozen=True)
class Department:
    name: str
    floor: int
    area: str  # its free-seating area (an Area of desk islands)


@dataclass
class Building:
    """The layout the staff walk through, and the devices that watch it."""

    spec: BuildingSpec
    devices: dict[str, Device]
    departments: list[Department]
    zones: dict[str, Zone]
    areas: dict[str, Area] = field(default_factory=dict)

    @property
    def gates(self) -> list[Door]:
        return [d for dev in self.devices.values() if dev.role == "gate" for d in dev.doors]

    @property
    def stair_doors(self) -> list[Door]:
        return [d for dev in self.devices.values() if dev.role == "door" for d in dev.doors]

    def stair_door(self, stairway: str, floor: int) -> Door:
        return next(d for d in self.stair_doors if d.stairway == stairway and d.floor == floor)

    def rooms(self, floor: int, kind: str) -> list[Zone]:
        return [z for z in self.zones.values() if z.floor == floor and z.kind == kind]

    def sensor_for(self, zone: str) -> tuple[Device, Sensor]:
        for device in self.devices.values():
            for sensor in device.sensors:
                if sensor.zone == zone:
                    return device, sensor
        raise KeyError(zone)

    def door_for(self, zone: str) -> RoomDoor | None:
        """Return the door contact of a booth or meeting room (None for an open zone)."""
        device, _ = self.sensor_for(zone)
        return next((d for d in device.room_doors if d.zone == zone), None)

    def watched_rooms(self) -> list[Zone]:
        """Every booth and meeting room: the zones a door contact closes."""
        return [z for z in self.zones.values() if z.kind in ("booth", "meeting-room")]


def load_building(path: Path = DEFAULT_BUILDING) -> Building:
    """Read a description file and lay the building out."""
    with path.open("rb") as f:
        spec = BuildingSpec.model_validate(tomllib.load(f))
    return lay_out(spec)


def lay_out(spec: BuildingSpec) -> Building:
    """Return the zones, doors, sensors and devices of a described building."""
    devices: dict[str, Device] = {}
    zones: dict[str, Zone] = {}
    lobby = Zone("lobby", "1階 市民ロビー・窓口", "area")
    inside = Zone("staff-area", "セキュリティライン内", "area")
    for n, gate in enumerate(spec.gates):
        door = Door(
            gate.id,
            gate.id,
            gate.name,
            "lobby",
            "staff-area",
            "secure",
            {"in": f"{gate.id}-in", "out": f"{gate.id}-out"},
            keypads=(f"{gate.id}-in",) if n == 0 else (),
        )
        devices[gate.id] = Device(gate.id, "gate", [door], zones=[lobby, inside])
    floor_zones = {
        level: Zone(f"floor-{level}", f"{level}階 執務フロア", "area", floor=level)
        for level in sorted({*spec.stairways.floors, *(f.level for f in spec.floors)})
    }
    for stair in spec.stairways.ids:
        stair_zone = Zone(f"stair-{stair}", f"{stair.upper()}階段", "stairway")
        zones[stair_zone.id] = stair_zone
        for level in spec.stairways.floors:
            device = f"stair-{stair}-{level}f"
            door = Door(
                device,
                device,
                f"Stairway {stair.upper()}, {level}F",
                stair_zone.id,
                floor_zones[level].id,
                "safe",
                {"in": f"{device}-in"},
                stairway=stair,
                floor=level,
            )
            devices[device] = Device(device, "door", [door], zones=[stair_zone, floor_zones[level]])
    departments: list[Department] = []
    areas: dict[str, Area] = {}
    nodes: list[tuple[str, list[Zone], int]] = []
    consult = [
        Zone(f"consult-1f-{i}", f"相談ブース{i}", "booth", 2, 1)
        for i in range(1, spec.lobby.consultation_booths + 1)
    ]
    if consult:
        nodes.append(("sensors-1f-consult", consult, 60))
    for floor in spec.floors:
        n = floor.level
        islands: list[Zone] = []
        for i, name in enumerate(floor.departments, 1):
            area_id = f"area-{n}f-{i}"
            mine = [
                Zone(f"{area_id}-{letter}", f"{name} 島{letter.upper()}", "area", floor=n)
                for letter in "abcdefgh"[: floor.islands]
            ]
            islands += mine
            areas[area_id] = Area(
                area_id,
                f"{name} グループアドレス",
                n,
                f"sensors-{n}f-areas",
                tuple(z.id for z in mine),
            )
            departments.append(Department(name, n, area_id))
        booths = [
            Zone(f"focus-{n}f-{i}", f"{n}階 集中ブース{i}", "booth", 1, n)
            for i in range(1, floor.focus_booths + 1)
        ] + [
            Zone(f"phone-{n}f-{i}", f"{n}階 電話ブース{i}", "booth", 1, n)
            for i in range(1, floor.phone_booths + 1)
        ]
        rooms = [
            Zone(f"meeting-{n}f-{i}", f"{n}階 会議室{i}({cap}人)", "meeting-room", cap, n)
            for i, cap in enumerate(floor.meeting_rooms, 1)
        ]
        if floor.refresh_area:
            rooms.append(Zone(f"refresh-{n}f", f"{n}階 リフレッシュエリア", "area", None, n))
        nodes += [
            (f"sensors-{n}f-areas", islands, 600),
            (f"sensors-{n}f-booths", booths, 60),
            (f"sensors-{n}f-rooms", rooms, 300),
        ]
    for device_id, node_zones, hold_s in nodes:
        if node_zones:
            devices[device_id] = _sensor_node(device_id, node_zones, hold_s)
    for node in devices.values():
        for zone in node.zones:
            zones.setdefault(zone.id, zone)
    return Building(spec, devices, departments, zones, areas)


# An mmWave sensor's OUT pin follows the radar at once: a short hold only bridges its flicker.
MMWAVE_HOLD_S = 60


def _sensor_node(device_id: str, node_zones: list[Zone], hold_s: int) -> Device:
    """Wire a sensor node: a PIR (or mmWave) per zone, and a door contact per booth and room."""
    wanted = len(node_zones) + sum(z.kind in ("booth", "meeting-room") for z in node_zones)
    if wanted > len(SENSOR_PINS):
        raise ValueError(
            f"{device_id}: {wanted} inputs (sensors and door contacts), but a Pi has "
            f"{len(SENSOR_PINS)} free pins; split the floor's rooms over two nodes "
            "(fewer booths, rooms or desk islands on one floor)"
        )
    pins = iter(SENSOR_PINS)
    sensors: list[Sensor] = []
    doors: list[RoomDoor] = []
    for zone in node_zones:
        if zone.kind == "meeting-room":
            sensors.append(
                Sensor(f"{zone.id}-mmwave", zone.id, next(pins), MMWAVE_HOLD_S, "mmwave")
            )
        else:
            sensors.append(Sensor(f"{zone.id}-pir", zone.id, next(pins), hold_s))
        if zone.kind in ("booth", "meeting-room"):
            doors.append(RoomDoor(f"{zone.id}-door", zone.id, next(pins)))
    return Device(device_id, "sensor-node", sensors=sensors, zones=node_zones, room_doors=doors)


@dataclass(frozen=True)
class Wiring:
    """Where a simulated device finds its broker, keys and store."""

    broker_port: int
    site_dir: Path  # edge-provision's site directory (keys, accounts)
    store_dir: Path
    # Devices that reach the broker another way (a NetCut that can cut their path).
    ports: Mapping[str, int] = field(default_factory=dict)


def device_config(building: Building, device: Device, wiring: Wiring) -> str:
    """Return the device's configuration file, as an installer would write it."""
    spec = building.spec
    keys = wiring.site_dir / "keys"
    lines = [
        f"# {device.id}: generated by edge-sim from the building description",
        "[site]",
        f'id = "{spec.site}"',
        f'timezone = "{spec.timezone}"',
        f'card_key_file = "{keys / "card-key"}"',
        f'credentials_key_file = "{keys / "credentials.pub"}"',
        f'commands_key_file = "{keys / "commands.pub"}"',
        "",
        "[device]",
        f'id = "{device.id}"',
        f'role = "{device.role}"',
        'fire_reset = "manual"',
        "# The simulated day may lie days after the real moment the credentials were published.",
        "credentials_stale_after_h = 168",
        "",
        "[mqtt]",
        'host = "127.0.0.1"',
        f"port = {wiring.ports.get(device.id, wiring.broker_port)}",
        f'username = "{device.id}"',
        f'password_file = "{wiring.site_dir / "accounts" / f"{device.id}.password"}"',
        "keepalive_s = 5",
        "",
        "[store]",
        f'path = "{wiring.store_dir / device.id / "agent.db"}"',
        "",
    ]
    for zone in device.zones:
        lines += ["[[zones]]", f'id = "{zone.id}"', f'name = "{zone.name}"']
        lines.append(f'kind = "{zone.kind}"')
        if zone.capacity:
            lines.append(f"capacity = {zone.capacity}")
        if zone.id == "staff-area":
            lines += ['anti_passback = "hard"', "anti_passback_forgive_at = 03:00:00"]
            lines.append(f'anti_passback_offline = "{spec.anti_passback_offline}"')
        lines.append("")
    for door in device.doors:
        lines += _door(door)
    for sensor in device.sensors:
        lines += [
            "[[presence]]",
            f'id = "{sensor.id}"',
            f'kind = "{sensor.kind}"',
            f"pin = {sensor.pin}",
            f'zone = "{sensor.zone}"',
            f"hold_s = {sensor.hold_s}",
            "",
        ]
    for room_door in device.room_doors:
        # A reed switch to ground with the pull-up on: the input rises when the door opens.
        lines += [
            "[[room_doors]]",
            f'id = "{room_door.id}"',
            f'zone = "{room_door.zone}"',
            f"pin = {room_door.pin}",
            'open_when = "high"',
            'pull = "up"',
            "",
        ]
    return "\n".join(lines)


def _door(door: Door) -> list[str]:
    lines = [
        "[[doors]]",
        f'id = "{door.id}"',
        f'name = "{door.name}"',
        f'outside_zone = "{door.outside}"',
        f'inside_zone = "{door.inside}"',
        f'fail = "{door.fail}"',
        "unlock_s = 5",
        f"held_open_s = {door.held_open_s}",
        f"pre_alarm_s = {door.pre_alarm_s}",
        "",
        "[doors.relay]",
        "pin = 17",
        "",
        "[doors.contact]",
        "pin = 27",
        "",
        "[doors.exit_button]",
        "pin = 22",
        "",
    ]
    if door.fail == "safe":  # a stairway: the fire panel releases it
        lines += ["[doors.fire_input]", "pin = 23", 'alarm_when = "high"', 'pull = "up"', ""]
    indicator_pins = iter(((5, 6), (12, 16)))
    for direction, reader in door.readers.items():
        green, red = next(indicator_pins)
        lines += [
            "[[readers]]",
            f'id = "{reader}"',
            'kind = "sim"',
            f'door = "{door.id}"',
            f'direction = "{direction}"',
            *_keypad(reader in door.keypads),
            "",
            "[[indicators]]",
            f'id = "{reader}-lights"',
            f'reader = "{reader}"',
            f"green_pin = {green}",
            f"red_pin = {red}",
            "",
        ]
    return lines


def _keypad(present: bool) -> list[str]:
    if not present:
        return []
    rows, cols = list(KEYPAD_ROWS), list(KEYPAD_COLS)
    return [
        'pin = "never"  # asked only of the groups set with `rules require-pin`',
        f'keypad = {{kind = "matrix", rows = {rows}, cols = {cols}}}',
    ]
