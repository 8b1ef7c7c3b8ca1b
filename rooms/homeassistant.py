"""Home Assistant MQTT discovery for the rooms, booths, areas, doors and zone counts: pure.

The service publishes, retained, what these functions return. Discovery configs go under
`{prefix}/{component}/{object_id}/config`; the states they point at live under
`{root}/{site}/rooms/ha/`:

    {root}/{site}/rooms/ha/room/{zone}/occupancy   ON | OFF | None (sensor unknown)
    {root}/{site}/rooms/ha/room/{zone}/status      free | booked | in-use | in-use-unbooked |
                                                   released | unknown
    {root}/{site}/rooms/ha/area/{id}/fullness      0-100: occupied islands per cent of those
                                                   known | None (over half unknown)
    {root}/{site}/rooms/ha/door/{door}/open        ON | OFF | None (read-only)
    {root}/{site}/rooms/ha/zone/{zone}/count       people counted in the zone | None

"None" is Home Assistant's payload for an unknown state. An entity is available only while
the rooms service's status says `online` and, for a room, booth or area, while the sensor
device it trusts says so too (its status is JSON: `value_template` reads `state`; its last
will is the bare word `offline`). Only place names, times and counts: never a person.
Home Assistant asks for the configs again by publishing `online` on `{prefix}/status`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from importlib import metadata
from typing import Any, Final, get_args

from edge.link import topics
from rooms.config import ServiceConfig
from rooms.floorplan import floor_label
from rooms.view import AreaView, BuildingView, RoomStatus

STATUSES: Final = list(get_args(RoomStatus))
MANUFACTURER: Final = "cityhall-edge"
MODELS: Final = {
    "meeting-room": "Meeting room",
    "focus-booth": "Focus booth",
    "phone-booth": "Phone booth",
}
# Reads a device's JSON status, and the bare `online`/`offline` of a last will or the service.
AVAILABLE: Final = (
    "{{ value_json.state if value_json is defined and value_json.state is defined else value }}"
)
KEY: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
NONE: Final = "None"  # Home Assistant: the state is unknown


def birth_topic(config: ServiceConfig) -> str:
    """Return the topic where Home Assistant says `online` (send the configs again then)."""
    return f"{config.homeassistant.prefix}/status"


def state_topic(root: str, site: str, kind: str, key: str, what: str) -> str:
    """Return `{root}/{site}/rooms/ha/{kind}/{key}/{what}` (see the module's table).

    `key` (a zone, area, door) must be a slug: anything else would break the topic tree.
    """
    if not KEY.match(key):
        raise topics.TopicError(
            f"{kind} {key[:40]!r} cannot be a topic level: use lower-case letters, digits and "
            "hyphens"
        )
    return f"{topics.rooms_prefix(root, site)}/ha/{kind}/{key}/{what}"


def discovery(
    config: ServiceConfig,
    *,
    doors: Mapping[str, str] | None = None,
    counted_zones: Iterable[str] = (),
) -> list[tuple[str, str]]:
    """Return every retained discovery config as (topic, JSON payload).

    `doors` maps each read-only door to the device that reports it; `counted_zones` are the
    zones whose head counts the service publishes. Both are optional.
    """
    root, site = config.mqtt.root, config.site
    found: list[tuple[str, dict[str, Any]]] = []
    for room in config.rooms:
        device = {
            "identifiers": [f"edge-rooms-{site}-{room.zone}"],
            "name": room.name,
            "manufacturer": MANUFACTURER,
            "model": MODELS[room.kind],
            "suggested_area": floor_label(room.floor),
        }
        watched = _availability(root, site, room.device)
        found.append(
            (
                "binary_sensor",
                {
                    "name": "Occupancy",
                    "object_id": _object_id(site, room.zone, "occupancy"),
                    "unique_id": f"edge-rooms-{site}-{room.zone}-occupancy",
                    "state_topic": state_topic(root, site, "room", room.zone, "occupancy"),
                    "device_class": "occupancy",
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    **watched,
                    "device": device,
                },
            )
        )
        found.append(
            (
                "sensor",
                {
                    "name": "Status",
                    "object_id": _object_id(site, room.zone, "status"),
                    "unique_id": f"edge-rooms-{site}-{room.zone}-status",
                    "state_topic": state_topic(root, site, "room", room.zone, "status"),
                    "device_class": "enum",
                    "options": STATUSES,
                    **watched,
                    "device": device,
                },
            )
        )
    for area in config.areas:
        found.append(
            (
                "sensor",
                {
                    "name": "Fullness",
                    "object_id": _object_id(site, area.id, "fullness"),
                    "unique_id": f"edge-rooms-{site}-area-{area.id}-fullness",
                    "state_topic": state_topic(root, site, "area", area.id, "fullness"),
                    "unit_of_measurement": "%",
                    "state_class": "measurement",
                    **_availability(root, site, area.device),
                    "device": {
                        "identifiers": [f"edge-rooms-{site}-area-{area.id}"],
                        "name": area.name,
                        "manufacturer": MANUFACTURER,
                        "model": "Free-seating area",
                        "suggested_area": floor_label(area.floor),
                    },
                },
            )
        )
    for door, reporter in sorted((doors or {}).items()):
        found.append(
            (
                "binary_sensor",
                {
                    "name": "Door",
                    "object_id": _object_id(site, door, "door"),
                    "unique_id": f"edge-rooms-{site}-door-{door}",
                    "state_topic": state_topic(root, site, "door", door, "open"),
                    "device_class": "door",
                    "payload_on": "ON",
                    "payload_off": "OFF",
                    **_availability(root, site, reporter),
                    "device": {
                        "identifiers": [f"edge-rooms-{site}-door-{door}"],
                        "name": door,
                        "manufacturer": MANUFACTURER,
                        "model": "Card door (read-only)",
                    },
                },
            )
        )
    for zone in sorted(set(counted_zones)):
        found.append(
            (
                "sensor",
                {
                    "name": f"{zone} count",
                    "object_id": _object_id(site, zone, "count"),
                    "unique_id": f"edge-rooms-{site}-zone-{zone}-count",
                    "state_topic": state_topic(root, site, "zone", zone, "count"),
                    "state_class": "measurement",
                    "unit_of_measurement": "people",
                    **_availability(root, site, None),
                    "device": {
                        "identifiers": [f"edge-rooms-{site}-zones"],
                        "name": f"{config.name} zones",
                        "manufacturer": MANUFACTURER,
                        "model": "Zone head counts",
                    },
                },
            )
        )
    prefix = config.homeassistant.prefix
    return [
        (
            f"{prefix}/{component}/{body['object_id']}/config",
            _json({**body, **_entity_id(component, body["object_id"]), "origin": _origin()}),
        )
        for component, body in found
    ]


def states(
    view: BuildingView,
    doors: Mapping[str, bool | None],
    counts: Mapping[str, int | None],
    *,
    root: str = topics.DEFAULT_ROOT,
) -> list[tuple[str, str]]:
    """Return every retained state as (topic, payload) for the entities `discovery` made.

    `doors` says whether each door is open (None: not known); `counts` the people counted
    in each zone (None: not known).
    """
    site = view.site
    out: list[tuple[str, str]] = []
    for room in view.rooms:
        occupied = NONE if room.occupied is None else ("ON" if room.occupied else "OFF")
        out.append((state_topic(root, site, "room", room.zone, "occupancy"), occupied))
        out.append((state_topic(root, site, "room", room.zone, "status"), room.status))
    for area in view.areas:
        out.append((state_topic(root, site, "area", area.id, "fullness"), fullness(area)))
    for door, is_open in sorted(doors.items()):
        payload = NONE if is_open is None else ("ON" if is_open else "OFF")
        out.append((state_topic(root, site, "door", door, "open"), payload))
    for zone, count in sorted(counts.items()):
        counted = NONE if count is None else str(count)
        out.append((state_topic(root, site, "zone", zone, "count"), counted))
    return out


def fullness(area: AreaView) -> str:
    """Return the per cent of an area's islands with presence, among those whose sensor is known.

    Unknown islands count neither way; with more than half of them unknown the figure would
    say little, so it is unknown (`None`).
    """
    known = area.zones - area.unknown
    if known <= 0 or 2 * area.unknown > area.zones:
        return NONE
    return str(round(100 * min(area.occupied, known) / known))


def remove(previous: Iterable[str], current: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return an empty retained payload for each config topic published before and gone now.

    `previous`: the config topics the service published last time (it keeps them);
    `current`: what `discovery` returns now. An empty retained config removes the entity.
    """
    now = {topic for topic, _ in current}
    return [(topic, "") for topic in sorted(set(previous) - now)]


def _entity_id(component: str, object_id: str) -> dict[str, str]:
    # Home Assistant 2025.10 deprecated `object_id` (a repair issue; ignored from 2026.4) for
    # `default_entity_id`, the full entity id; older versions know only `object_id`, so both
    # go out and name the same entity.
    return {"default_entity_id": f"{component}.{object_id}"}


def _availability(root: str, site: str, device: str | None) -> dict[str, Any]:
    service = {
        "topic": topics.rooms_status(root, site),
        "payload_available": "online",
        "payload_not_available": "offline",
        "value_template": AVAILABLE,
    }
    sensors = (
        []
        if device is None
        else [
            {
                "topic": topics.status(root, site, device),
                "payload_available": "online",
                "payload_not_available": "offline",
                "value_template": AVAILABLE,
            }
        ]
    )
    return {"availability": [service, *sensors], "availability_mode": "all"}


def _object_id(site: str, key: str, what: str) -> str:
    return f"{site}_{key}_{what}".replace("-", "_")


def _origin() -> dict[str, str]:
    try:
        version = metadata.version(MANUFACTURER)
    except metadata.PackageNotFoundError:
        version = "0"
    return {"name": "edge-rooms", "sw_version": version}


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), sort_keys=True)
