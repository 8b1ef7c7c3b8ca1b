"""A small rooms-service site for the engine, feed, journal and service tests."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge.core.clock import utc_text
from edge.link import topics
from edge.link.payloads import EventPayload, OccupancyPayload, StatusPayload
from rooms.bookings import Booking, BookingError
from rooms.config import RoomSettings, ServiceConfig
from rooms.inbox import Inbound

SITE = "kamakura-city-hall"
ROOT = "edge"
NODE = "sensors-2f"  # trusted for the meeting room, the booth and the area
OTHER = "sensors-3f"
GATE = "gate-1f-east"
MEETING, BOOTH = "meeting-2f-1", "booth-2f-1"
ISLANDS = ("island-2f-a", "island-2f-b")
CARD = "ab" * 32
GATE_DOOR = "gate-1f"  # the gate's door on the security line (lobby | staff-area)


def gate_toml(device: str = GATE, door: str = GATE_DOOR) -> str:
    """Return a gate's device configuration: one door from the lobby into the staff area."""
    return f"""
[site]
id = "{SITE}"
timezone = "Asia/Tokyo"
card_key_file = "/etc/edge/card-key"

[device]
id = "{device}"
role = "gate"

[[zones]]
id = "lobby"
name = "Lobby"
kind = "area"

[[zones]]
id = "staff-area"
name = "Staff"
kind = "area"

[[doors]]
id = "{door}"
outside_zone = "lobby"
inside_zone = "staff-area"
fail = "secure"

[doors.relay]
pin = 17

[doors.contact]
pin = 27

[[readers]]
id = "{door}-in"
kind = "sim"
door = "{door}"
direction = "in"
"""


def node_toml(device: str = NODE) -> str:
    """Return a sensor node's device configuration: presence only, no door."""
    return f"""
[site]
id = "{SITE}"
timezone = "Asia/Tokyo"

[device]
id = "{device}"
role = "sensor-node"

[[zones]]
id = "{MEETING}"
name = "Meeting room"
kind = "meeting-room"

[[presence]]
id = "{device}-pir"
pin = 17
zone = "{MEETING}"
"""


def devices_dir(tmp: Path) -> Path:
    """Write the site's provisioned device files (a gate, two sensor nodes) and return the dir."""
    folder = tmp / "devices"
    folder.mkdir(exist_ok=True)
    (folder / f"{GATE}.toml").write_text(gate_toml())
    for node in (NODE, OTHER):
        (folder / f"{node}.toml").write_text(node_toml(node))
    return folder


def service_config(tmp: Path, port: int = 1883, **extra: Any) -> ServiceConfig:
    """Return a config with a meeting room (ad hoc), a focus booth, an area and device files."""
    password = tmp / "password"
    password.write_text("secret\n")
    data: dict[str, Any] = {
        "site": SITE,
        "name": "Kamakura City Hall",
        "state_path": str(tmp / "rooms.db"),
        "devices_dir": str(devices_dir(tmp)),
        "mqtt": {"password_file": str(password), "port": port},
        "calendars": [
            {
                "kind": "caldav",
                "id": "cal",
                "url": "http://127.0.0.1:9/",
                "username": "svc",
                "password_file": str(password),
            }
        ],
        "rooms": [
            {
                "zone": MEETING,
                "name": "Meeting room 2F-1",
                "kind": "meeting-room",
                "floor": 2,
                "device": NODE,
                "calendar": "cal",
                "resource": "/rooms/meeting-2f-1/",
                "ad_hoc": True,
            },
            {
                "zone": BOOTH,
                "name": "Focus booth 2F-1",
                "kind": "focus-booth",
                "floor": 2,
                "device": NODE,
                "calendar": "cal",
                "resource": "/rooms/booth-2f-1/",
            },
        ],
        "areas": [
            {"id": "planning", "name": "Planning", "floor": 2, "device": NODE, "zones": ISLANDS}
        ],
    }
    data.update(extra)
    return ServiceConfig.model_validate(data)


def status(
    device: str = NODE, state: str = "online", site: str = SITE, backlog: int | None = None
) -> Inbound:
    body = StatusPayload(
        device=device, site=site, state=state, ts=utc_text(datetime.now(UTC)), backlog=backlog
    )
    return Inbound(topics.status(ROOT, SITE, device), body.model_dump_json().encode(), True)


def will(device: str = NODE) -> Inbound:
    body = {"v": 1, "device": device, "site": SITE, "state": "offline"}
    return Inbound(topics.status(ROOT, SITE, device), json.dumps(body).encode(), True)


def occupancy(
    zone: str, occupied: bool, device: str = NODE, *, count: int | None = None, **extra: Any
) -> Inbound:
    body = OccupancyPayload(
        v=1,
        device=device,
        zone=zone,
        ts=utc_text(datetime.now(UTC)),
        count=count,
        occupied=occupied,
        capacity=None,
        **extra,
    )
    return Inbound(topics.occupancy(ROOT, SITE, device, zone), body.model_dump_json().encode())


def event(device: str, kind: str, type_: str, seq: int, **fields: Any) -> Inbound:
    body = EventPayload(
        v=1,
        id=f"{device}:{seq}",
        seq=seq,
        device=device,
        ts=utc_text(datetime.now(UTC)),
        clock_synced=True,
        kind=kind,
        type=type_,
        **fields,
    )
    return Inbound(topics.event(ROOT, SITE, device, kind), body.model_dump_json().encode())


class MemoryCalendar:
    """An in-memory BookingAdapter: the real ones have their own tests against real servers."""

    def __init__(self, calendar: str = "cal") -> None:
        self.calendar = calendar
        self.items: dict[str, list[Booking]] = {}
        self.checked_in: list[tuple[str, str]] = []
        self.released: list[tuple[str, str, str]] = []
        self.booked: list[Booking] = []
        self.fail: str | None = None  # every call raises BookingError(fail) while set
        self.reads = 0
        self.closed = False

    def add(self, room: str, start: datetime, end: datetime, uid: str, **extra: Any) -> Booking:
        booking = Booking(self.calendar, room, uid, start, end, **extra)
        self.items.setdefault(room, []).append(booking)
        return booking

    def _check(self) -> None:
        if self.fail is not None:
            raise BookingError(self.fail)

    def bookings(
        self, rooms: Sequence[RoomSettings], start: datetime, end: datetime
    ) -> dict[str, list[Booking]]:
        self._check()
        self.reads += 1
        return {
            r.zone: [b for b in self.items.get(r.zone, []) if b.start < end and b.end > start]
            for r in rooms
        }

    def check_in(self, room: RoomSettings, booking: Booking, at: datetime) -> None:
        self._check()
        self.checked_in.append((room.zone, booking.uid))

    def release(self, room: RoomSettings, booking: Booking, reason: str) -> None:
        self._check()
        self.released.append((room.zone, booking.uid, reason))

    def book(self, room: RoomSettings, start: datetime, end: datetime, title: str) -> Booking:
        self._check()
        made = self.add(room.zone, start, end, f"adhoc-{len(self.booked) + 1}", ad_hoc=True)
        self.booked.append(made)
        return made

    def close(self) -> None:
        self.closed = True
