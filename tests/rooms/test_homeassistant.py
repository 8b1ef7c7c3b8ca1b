"""Home Assistant discovery: every config checked against the keys Home Assistant documents.

Where the key lists come from (read for this test, written down here):
* binary_sensor: https://www.home-assistant.io/integrations/binary_sensor.mqtt/ — the
  `{% configuration %}` block of source/_integrations/binary_sensor.mqtt.markdown in
  home-assistant/home-assistant.io (the version listing `model_id` and `platform`).
* sensor: https://www.home-assistant.io/integrations/sensor.mqtt/ — the same block for sensors
  (adds `last_reset_value_template`, `options`, `state_class`, `suggested_display_precision`,
  `unit_of_measurement`; drops `off_delay`, `payload_on`, `payload_off`).
* `origin` and the discovery topic: https://www.home-assistant.io/integrations/mqtt/
  (origin: `name` required, `sw_version`, `support_url`; topic
  `<prefix>/<component>/[<node_id>/]<object_id>/config`, ids `[a-zA-Z0-9_-]+`).
* device classes: https://www.home-assistant.io/integrations/binary_sensor/#device-class and
  https://www.home-assistant.io/integrations/sensor/#device-class.
* `default_entity_id`: the MQTT entities' common schema from Home Assistant 2025.10
  (`CONF_DEFAULT_ENTITY_ID` in homeassistant/components/mqtt/schemas.py, documented on the
  pages above): the full entity id, `{component}.{object_id}`. The same release made
  `object_id` raise a repair issue ("uses the deprecated option object_id ... This will stop
  working in Home Assistant Core 2026.4"); it stays, for older versions, naming the same id.
`platform` is only allowed in device-based discovery messages, which we do not send, and the
abbreviated keys (`stat_t`, …) are not used: an abbreviation fails as an unknown key.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from provisioning.broker import HA_COMPONENTS
from rooms import homeassistant as ha
from rooms.config import ServiceConfig
from rooms.view import AreaView
from tests.rooms.test_floorplan import sample

COMMON = {
    "availability",
    "availability_mode",
    "availability_template",
    "availability_topic",
    "device",
    "default_entity_id",
    "device_class",
    "enabled_by_default",
    "encoding",
    "entity_category",
    "entity_picture",
    "expire_after",
    "force_update",
    "icon",
    "json_attributes_template",
    "json_attributes_topic",
    "name",
    "object_id",
    "origin",
    "payload_available",
    "payload_not_available",
    "qos",
    "state_topic",
    "unique_id",
    "value_template",
}
ALLOWED = {
    "binary_sensor": COMMON | {"off_delay", "payload_off", "payload_on"},
    "sensor": COMMON
    | {
        "last_reset_value_template",
        "options",
        "state_class",
        "suggested_display_precision",
        "unit_of_measurement",
    },
}
REQUIRED = {"state_topic"}
WE_REQUIRE = {
    "unique_id",
    "default_entity_id",  # Home Assistant 2025.10 and later
    "object_id",  # before 2025.10
    "name",
    "availability",
    "availability_mode",
    "device",
}
DEVICE_KEYS = {
    "configuration_url",
    "connections",
    "hw_version",
    "identifiers",
    "manufacturer",
    "model",
    "model_id",
    "name",
    "serial_number",
    "suggested_area",
    "sw_version",
    "via_device",
}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}
AVAILABILITY_KEYS = {"topic", "payload_available", "payload_not_available", "value_template"}
BINARY_CLASSES = {
    "battery", "battery_charging", "carbon_monoxide", "cold", "connectivity", "door",
    "garage_door", "gas", "heat", "light", "lock", "moisture", "motion", "moving", "occupancy",
    "opening", "plug", "power", "presence", "problem", "running", "safety", "smoke", "sound",
    "tamper", "update", "vibration", "window",
}  # fmt: skip
SENSOR_CLASSES = {
    "apparent_power", "aqi", "area", "atmospheric_pressure", "battery",
    "blood_glucose_concentration", "carbon_dioxide", "carbon_monoxide", "conductivity",
    "current", "data_rate", "data_size", "date", "distance", "duration", "energy",
    "energy_distance", "energy_storage", "enum", "frequency", "gas", "humidity", "illuminance",
    "irradiance", "moisture", "monetary", "nitrogen_dioxide", "nitrogen_monoxide",
    "nitrous_oxide", "ozone", "ph", "pm1", "pm10", "pm25", "power_factor", "power",
    "precipitation", "precipitation_intensity", "pressure", "reactive_power",
    "signal_strength", "sound_pressure", "speed", "sulphur_dioxide", "temperature",
    "timestamp", "volatile_organic_compounds", "volatile_organic_compounds_parts", "voltage",
    "volume", "volume_flow_rate", "volume_storage", "water", "weight", "wind_direction",
    "wind_speed",
}  # fmt: skip
STATE_CLASSES = {"measurement", "total", "total_increasing"}
DISCOVERY_TOPIC = re.compile(
    r"^homeassistant/(?P<component>\w+)/(?:[a-zA-Z0-9_-]+/)?(?P<object_id>[a-zA-Z0-9_-]+)/config$"
)


def config(tmp_path: Path, **changes: Any) -> ServiceConfig:
    values: dict[str, Any] = {
        "site": "city-hall",
        "name": "鎌倉市役所",
        "state_path": str(tmp_path / "rooms.db"),
        "mqtt": {"password_file": str(tmp_path / "rooms.password")},
        "homeassistant": {"enabled": True},
        "rooms": [
            {"zone": r.zone, "name": r.name, "kind": r.kind, "floor": r.floor, "device": "node-3f"}
            for r in sample().rooms
        ],
        "areas": [
            {
                "id": "soumu",
                "name": "総務課",
                "floor": 3,
                "device": "node-3f",
                "zones": ["i1", "i2"],
            }
        ],
    }
    return ServiceConfig.model_validate({**values, **changes})


def topic_problem(topic: object) -> str | None:
    if not isinstance(topic, str) or not topic:
        return "not a non-empty string"
    if any(c in topic for c in "+#\x00") or "//" in topic or topic.startswith("/"):
        return "wildcard, NUL or empty level"
    if len(topic.encode()) > 65535:
        return "too long"
    return None


def problems(topic: str, payload: str) -> list[str]:
    """Everything wrong with one discovery message, as Home Assistant documents it."""
    found: list[str] = []
    match = DISCOVERY_TOPIC.match(topic)
    if match is None:
        return [f"{topic}: not a discovery topic"]
    component = match["component"]
    if component not in ALLOWED:
        return [f"{topic}: component {component} is not one we check"]
    body = json.loads(payload)
    if not isinstance(body, dict):
        return [f"{topic}: payload is not an object"]
    keys = set(body)
    found += [f"unknown key {k}" for k in sorted(keys - ALLOWED[component])]
    found += [f"missing key {k}" for k in sorted((REQUIRED | WE_REQUIRE) - keys)]
    if body.get("object_id") != match["object_id"]:
        found.append("object_id differs from the topic's")
    if body.get("default_entity_id") != f"{component}.{match['object_id']}":
        found.append("default_entity_id is not {component}.{object_id}")
    for key in ("name", "unique_id", "object_id", "default_entity_id", "state_topic"):
        if not isinstance(body.get(key), str):
            found.append(f"{key} is not a string")
    if topic_problem(body.get("state_topic")):
        found.append(f"state_topic: {topic_problem(body.get('state_topic'))}")
    if "availability" in keys and "availability_topic" in keys:
        found.append("availability and availability_topic together")
    if body.get("availability_mode") not in ("all", "any", "latest"):
        found.append("availability_mode not all/any/latest")
    availability = body.get("availability")
    if not isinstance(availability, list) or not availability:
        found.append("availability is not a non-empty list")
    else:
        for item in availability:
            if not isinstance(item, dict) or "topic" not in item:
                found.append("availability item without topic")
                continue
            found += [f"availability: unknown key {k}" for k in set(item) - AVAILABILITY_KEYS]
            if topic_problem(item["topic"]):
                found.append(f"availability topic: {topic_problem(item['topic'])}")
            found += [
                f"availability {k} not a string" for k, v in item.items() if not isinstance(v, str)
            ]
    device = body.get("device")
    if not isinstance(device, dict):
        found.append("device is not a map")
    else:
        found += [f"device: unknown key {k}" for k in set(device) - DEVICE_KEYS]
        if not device.get("identifiers") and not device.get("connections"):
            found.append("device has neither identifiers nor connections")
        if not isinstance(device.get("identifiers"), list | str):
            found.append("device identifiers not a list or string")
    origin = body.get("origin")
    if not isinstance(origin, dict) or "name" not in origin:
        found.append("origin without name")
    else:
        found += [f"origin: unknown key {k}" for k in set(origin) - ORIGIN_KEYS]
    device_class = body.get("device_class")
    classes = BINARY_CLASSES if component == "binary_sensor" else SENSOR_CLASSES
    if device_class is not None and device_class not in classes:
        found.append(f"device_class {device_class} is not valid for {component}")
    if component == "sensor":
        if "state_class" in body and body["state_class"] not in STATE_CLASSES:
            found.append("state_class not valid")
        if device_class == "enum":
            options = body.get("options")
            if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
                found.append("enum sensor without a list of options")
            if "unit_of_measurement" in body or "state_class" in body:
                found.append("an enum sensor has no unit or state class")
    return [f"{topic}: {p}" for p in found]


def test_every_discovery_message_is_valid_as_home_assistant_documents_it(
    tmp_path: Path,
) -> None:
    messages = ha.discovery(
        config(tmp_path), doors={"gate-1": "gate-1", "stair-a-2f": "stair-a"},
        counted_zones=("staff-area",),
    )  # fmt: skip
    assert [p for topic, payload in messages for p in problems(topic, payload)] == []
    by_component: dict[str, int] = {}
    for topic, _ in messages:
        component = topic.split("/")[1]
        by_component[component] = by_component.get(component, 0) + 1
    rooms = len(sample().rooms)
    assert by_component == {"binary_sensor": rooms + 2, "sensor": rooms + 1 + 1}
    assert len({t for t, _ in messages}) == len(messages)
    unique = [json.loads(p)["unique_id"] for _, p in messages]
    assert len(set(unique)) == len(unique)


def test_the_schema_check_catches_what_home_assistant_would_refuse(tmp_path: Path) -> None:
    topic, payload = ha.discovery(config(tmp_path))[0]
    body = json.loads(payload)
    for broken in (
        {**body, "stat_t": "x"},  # an abbreviation: unknown key
        {k: v for k, v in body.items() if k != "state_topic"},
        {**body, "device_class": "temperature"},  # not a binary_sensor class
        {**body, "state_topic": "edge/+/x"},
        {**body, "availability_mode": "most"},
        {**body, "device": {"name": "x"}},
        {k: v for k, v in body.items() if k != "default_entity_id"},
        {**body, "default_entity_id": body["object_id"]},  # no component: not an entity id
    ):
        assert problems(topic, json.dumps(broken)), broken


def test_a_room_is_available_only_while_the_service_and_its_sensor_are(tmp_path: Path) -> None:
    messages = dict(ha.discovery(config(tmp_path)))
    body = json.loads(messages["homeassistant/binary_sensor/city_hall_room_3a_occupancy/config"])
    assert body["availability_mode"] == "all"
    assert [a["topic"] for a in body["availability"]] == [
        "edge/city-hall/rooms/status",
        "edge/city-hall/node-3f/status",
    ]
    assert body["device"]["suggested_area"] == "3F"
    assert body["device"]["name"] == "会議室3A"
    status = json.loads(messages["homeassistant/sensor/city_hall_room_3a_status/config"])
    assert status["options"] == [
        "free", "booked", "in-use", "in-use-unbooked", "released", "unknown"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "available"),
    [
        ('{"state":"online","version":"1"}', "online"),
        ('{"state":"offline"}', "offline"),
        ("offline", "offline"),  # a device's last will is the bare word
        ("online", "online"),
    ],
)
def test_the_availability_template_reads_json_status_and_bare_words(
    payload: str, available: str
) -> None:
    # Home Assistant renders templates with Jinja2, `value_json` set only for JSON payloads.
    from jinja2 import Environment  # noqa: PLC0415 -- only this test renders HA's template

    try:
        context: dict[str, Any] = {"value": payload, "value_json": json.loads(payload)}
    except json.JSONDecodeError:
        context = {"value": payload}
    assert Environment().from_string(ha.AVAILABLE).render(context) == available


def test_states_cover_every_entity_and_say_unknown_as_home_assistant_does(
    tmp_path: Path,
) -> None:
    view = sample()
    messages = ha.discovery(
        config(tmp_path), doors={"gate-1": "gate-1"}, counted_zones=("staff-area",)
    )
    wanted = {json.loads(p)["state_topic"] for _, p in messages}
    published = dict(ha.states(view, {"gate-1": None}, {"staff-area": 12}))
    assert wanted <= set(published)
    assert published["edge/city-hall/rooms/ha/room/room-3f/occupancy"] == "None"
    assert published["edge/city-hall/rooms/ha/room/room-3c/occupancy"] == "ON"
    assert published["edge/city-hall/rooms/ha/room/room-3e/status"] == "released"
    assert published["edge/city-hall/rooms/ha/area/soumu/fullness"] == "50"  # 3 of 6 known
    assert published["edge/city-hall/rooms/ha/area/kikaku/fullness"] == "0"
    assert published["edge/city-hall/rooms/ha/door/gate-1/open"] == "None"
    assert published["edge/city-hall/rooms/ha/zone/staff-area/count"] == "12"


@pytest.mark.parametrize(
    ("occupied", "zones", "unknown", "fullness"),
    [
        (3, 8, 0, "38"),
        (3, 8, 2, "50"),  # of the 6 islands known, not of all 8
        (2, 4, 2, "100"),  # half unknown: still a figure
        (1, 5, 3, "None"),  # more than half unknown: no figure
        (0, 4, 4, "None"),
        (0, 4, 0, "0"),
    ],
)
def test_an_area_s_fullness_counts_only_the_islands_whose_sensor_is_known(
    occupied: int, zones: int, unknown: int, fullness: str
) -> None:
    area = AreaView(id="a", name="a", floor=3, occupied=occupied, zones=zones, unknown=unknown)
    assert ha.fullness(area) == fullness


def test_the_rooms_account_may_publish_every_component_discovery_uses(tmp_path: Path) -> None:
    """provisioning.broker grants the rooms account discovery for HA_COMPONENTS only."""
    messages = ha.discovery(
        config(tmp_path), doors={"gate-1": "gate-1"}, counted_zones=("staff-area",)
    )
    assert {topic.split("/")[1] for topic, _ in messages} <= set(HA_COMPONENTS)


def test_entities_gone_from_the_config_are_removed_with_empty_retained_configs(
    tmp_path: Path,
) -> None:
    before = ha.discovery(config(tmp_path))
    after = ha.discovery(config(tmp_path, rooms=[], areas=[]))
    removed = ha.remove([t for t, _ in before], after)
    assert removed == sorted((t, "") for t, _ in before)
    assert ha.remove([t for t, _ in after], after) == []


def test_no_personal_data_reaches_home_assistant(tmp_path: Path) -> None:
    text = " ".join(p for _, p in ha.discovery(config(tmp_path)))
    text += " ".join(p for _, p in ha.states(sample(), {}, {}))
    for word in ("organizer", "organiser", "attendee", "title", "card", "summary"):
        assert word not in text.lower()


def test_a_door_id_that_would_break_the_topic_tree_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="cannot be a topic level"):
        ha.discovery(config(tmp_path), doors={"gate/#": "gate-1"})
    with pytest.raises(ValueError, match="cannot be a topic level"):
        ha.states(sample(), {}, {"zone+": 1})
