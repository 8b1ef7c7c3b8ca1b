"""One mistake at a time: each is reported once, at its path, with words that help fix it."""

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from firmware_config.errors import ConfigError
from firmware_config.loader import validate_config

DELETE = object()
"""Edit value that removes the key."""


def edited(data: dict[str, Any], edits: dict[str, object]) -> dict[str, Any]:
    """Return a copy of `data` with dotted paths set ("doors.0.relay.pin"); an index one
    past the end of a list appends."""
    result = copy.deepcopy(data)
    for dotted, value in edits.items():
        *parents, last = dotted.split(".")
        node: Any = result
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        if isinstance(node, list):
            index = int(last)
            if index == len(node):
                node.append(value)
            else:
                node[index] = value
        elif value is DELETE:
            del node[last]
        else:
            node[last] = value
    return result


@dataclass(frozen=True)
class Mistake:
    name: str
    edits: dict[str, object]
    path: str
    words: tuple[str, ...]
    hidden: tuple[str, ...] = field(default=())


MISTAKES = [
    Mistake(
        "pin out of range", {"doors.0.relay.pin": 40}, "doors[0].relay.pin", ("GPIO 40", "2 to 27")
    ),
    Mistake(
        "pin reserved for the HAT", {"doors.0.relay.pin": 1}, "doors[0].relay.pin", ("HAT EEPROM",)
    ),
    Mistake(
        "pin used twice",
        {"indicators.0.red_pin": 17},
        "indicators[0].red_pin",
        ("GPIO 17", "already used by doors[0].relay.pin", "own pin"),
    ),
    Mistake(
        "pin in quotes",
        {"doors.0.relay.pin": "17"},
        "doors[0].relay.pin",
        ("whole number", "pin = 17"),
    ),
    Mistake(
        "reader at a missing door",
        {"readers.1.door": "gate-b"},
        "readers[1].door",
        ('no door "gate-b"', 'declared doors: "gate-a"'),
    ),
    Mistake(
        "door into an undeclared zone",
        {"doors.0.inside_zone": "vault"},
        "doors[0].inside_zone",
        ('no zone "vault"', '"lobby", "staff"', "[[zones]]"),
    ),
    Mistake(
        "presence in an undeclared zone",
        {"presence": [{"id": "hall-pir", "pin": 23, "zone": "hall"}]},
        "presence[0].zone",
        ('no zone "hall"',),
    ),
    Mistake(
        "door between a zone and itself",
        {"doors.0.inside_zone": "lobby"},
        "doors[0].inside_zone",
        ("same as outside_zone",),
    ),
    Mistake(
        "wrong role",
        {"device.role": "gat"},
        "device.role",
        ('"gate", "door", "sensor-node"', 'mean "gate"'),
    ),
    Mistake(
        "wrong pull",
        {"doors.0.contact.pull": "pullup"},
        "doors[0].contact.pull",
        ('"up", "down", "none"',),
    ),
    Mistake(
        "misspelt key",
        {"doors.0.unlock_sec": 5},
        "doors[0].unlock_sec",
        ("unknown key", "did you mean `unlock_s`"),
    ),
    Mistake("misspelt table", {"door": []}, "door", ("did you mean `doors`",)),
    Mistake("key in the wrong table", {"doors.0.pin": 4}, "doors[0].pin", ("[doors.relay]",)),
    Mistake(
        "key of another reader kind",
        {"readers.0.path": "usb"},
        "readers[0].path",
        ('only for kind = "nfc"',),
    ),
    Mistake(
        "password written inline",
        {"mqtt": {"username": "gate-1", "password": "hunter2"}},
        "mqtt.password",
        ("password_file", "readable only by the agent"),
        hidden=("hunter2",),
    ),
    Mistake(
        "door without a fail mode",
        {"doors.0.fail": DELETE},
        "doors[0].fail",
        ("required", "add `fail = …`", '"safe", "secure"'),
    ),
    Mistake("missing table", {"device": DELETE}, "device", ("required", "[device]")),
    Mistake(
        "warning beep after the alarm",
        {"doors.0.held_open_s": 20, "doors.0.pre_alarm_s": 20},
        "doors[0].pre_alarm_s",
        ("held_open_s", "less than"),
    ),
    Mistake(
        "held open shorter than the default warning",
        {"doors.0.held_open_s": 5},
        "doors[0].pre_alarm_s",
        ("the default", "held_open_s = 5"),
    ),
    Mistake(
        "unlock too short",
        {"doors.0.unlock_s": 0.1},
        "doors[0].unlock_s",
        ("at least 0.5", "0.5 to 60 seconds"),
    ),
    Mistake("not a number", {"doors.0.unlock_s": float("nan")}, "doors[0].unlock_s", ("finite",)),
    Mistake(
        "yes for true",
        {"doors.0.relay.active_high": "yes"},
        "doors[0].relay.active_high",
        ("true or false",),
    ),
    Mistake("port out of range", {"mqtt": {"port": 0}}, "mqtt.port", ("1 to 65535",)),
    Mistake("wildcard in topic root", {"mqtt": {"root": "edge/#"}}, "mqtt.root", ("wildcards",)),
    Mistake(
        "time zone without region",
        {"site.timezone": "Tokyo"},
        "site.timezone",
        ('"Asia/Tokyo"', "IANA"),
    ),
    Mistake(
        "closure day that does not exist",
        {"site.closure_days": ["12-29", "02-30"]},
        "site.closure_days[1]",
        ('"MM-DD"',),
    ),
    Mistake(
        "id with capitals and spaces",
        {"site.id": "Test Site"},
        "site.id",
        ("lowercase", '"test-site"'),
    ),
    Mistake(
        "duplicate reader ids",
        {"readers.1.id": "gate-a-in"},
        "readers[1].id",
        ("already used by readers[0]", "its own id"),
    ),
    Mistake(
        "duplicate zone ids",
        {"zones.2": {"id": "lobby", "name": "Lobby 2", "kind": "area"}},
        "zones[2].id",
        ("already used by zones[0]",),
    ),
    Mistake(
        "sensor node with a door",
        {
            "device.role": "sensor-node",
            "readers": [],
            "indicators": [],
            "presence": [{"id": "lobby-pir", "pin": 23, "zone": "lobby"}],
        },
        "doors",
        ('"sensor-node" has no doors', "remove the [[doors]]"),
    ),
    Mistake(
        "sensor node without sensors",
        {"device.role": "sensor-node", "doors": [], "readers": [], "indicators": []},
        "presence",
        ("at least one presence sensor",),
    ),
    Mistake(
        "gate without a reader",
        {"readers": [], "indicators": []},
        "readers",
        ('"gate" device needs at least one reader',),
    ),
    Mistake(
        "client certificate without its key",
        {"mqtt": {"tls": {"ca_file": "/etc/edge/ca.crt", "cert_file": "/etc/edge/client.crt"}}},
        "mqtt.tls.key_file",
        ("cert_file is set", "set key_file"),
    ),
    Mistake(
        "client key without its certificate",
        {"mqtt": {"tls": {"ca_file": "/etc/edge/ca.crt", "key_file": "/etc/edge/client.key"}}},
        "mqtt.tls.cert_file",
        ("key_file is set",),
    ),
    Mistake(
        "unknown reader kind",
        {"readers.0.kind": "felica"},
        "readers[0].kind",
        ('"pcsc", "nfc", "sim"',),
    ),
    Mistake(
        "reader without a kind",
        {"readers.0.kind": DELETE},
        "readers[0].kind",
        ("required", '"pcsc", "nfc", "sim"'),
    ),
    Mistake(
        "two readers, one match",
        {"readers.1.match": "Reader 00 00"},
        "readers[1].match",
        ("same as readers[0]",),
    ),
    Mistake(
        "a match inside another",
        {"readers.1.match": "Reader"},
        "readers[1].match",
        ("overlaps", "pcsc_scan"),
    ),
    Mistake(
        "nfc path that nfcpy does not know",
        {
            "readers.0": {
                "id": "gate-a-in",
                "kind": "nfc",
                "door": "gate-a",
                "direction": "in",
                "path": "/dev/ttyUSB0",
            }
        },
        "readers[0].path",
        ('"usb:054c:06c3"', '"udp:'),
    ),
    Mistake(
        "indicator with no outputs",
        {"indicators.0.green_pin": DELETE, "indicators.0.red_pin": DELETE},
        "indicators[0].green_pin",
        ("at least one output",),
    ),
    Mistake(
        "indicator for a missing reader",
        {"indicators.0.reader": "gate-b-in"},
        "indicators[0].reader",
        ('"gate-a-in", "gate-a-out"',),
    ),
    Mistake("no room in a room", {"zones.0.capacity": 0}, "zones[0].capacity", ("at least 1",)),
    Mistake(
        "capacity with a fraction",
        {"zones.0.capacity": 2.5},
        "zones[0].capacity",
        ("whole number",),
    ),
    Mistake(
        "forgive at a time that does not exist",
        {"zones.1.anti_passback_forgive_at": "25:00"},
        "zones[1].anti_passback_forgive_at",
        ("03:00:00",),
    ),
    Mistake(
        "one door table instead of a list", {"doors": {"id": "gate-a"}}, "doors", ("[[doors]]",)
    ),
    Mistake("id that is not text", {"device.id": 7}, "device.id", ("double quotes",)),
]


def test_the_base_configuration_is_valid(gate_data: dict[str, Any]) -> None:
    validate_config(gate_data)


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda mistake: mistake.name)
def test_single_mistake_is_reported_once_with_its_fix(
    gate_data: dict[str, Any], mistake: Mistake
) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config(edited(gate_data, mistake.edits))

    error = caught.value
    assert [problem.path for problem in error.problems] == [mistake.path]
    for word in mistake.words:
        assert word in str(error)
    for secret in mistake.hidden:
        assert secret not in str(error)
        assert secret not in repr(error.problems)


def test_every_mistake_is_reported_at_once(gate_data: dict[str, Any]) -> None:
    broken = edited(
        gate_data,
        {
            "device.role": "gat",  # field: literal
            "doors.0.relay.pin": 40,  # field: pin range ...
            "doors.0.pre_alarm_s": 45,  # ... and, on the same door, a rule between fields
            "readers.1.door": "gate-b",  # cross: missing door
            "indicators.0.red_pin": 22,  # cross: pin used twice
            "zones.2": {"id": "lobby", "name": "Lobby 2", "kind": "area"},  # cross: duplicate id
            "mqtt": {"tls": {"ca_file": "/etc/edge/ca.crt", "cert_file": "/etc/edge/c.crt"}},
        },
    )

    with pytest.raises(ConfigError) as caught:
        validate_config(broken)

    assert [problem.path for problem in caught.value.problems] == [
        "device.role",
        "doors[0].pre_alarm_s",
        "doors[0].relay.pin",
        "indicators[0].red_pin",
        "mqtt.tls.key_file",
        "readers[1].door",
        "zones[2].id",
    ]
    assert len(str(caught.value).splitlines()) == 7


def test_problems_are_sorted_in_natural_order(gate_data: dict[str, Any]) -> None:
    readers = [
        {
            "id": f"r{i}",
            "kind": "sim",
            "door": "gate-a" if i not in (2, 10) else "nowhere",
            "direction": "in",
        }
        for i in range(11)
    ]

    with pytest.raises(ConfigError) as caught:
        validate_config(edited(gate_data, {"readers": readers, "indicators": []}))

    assert [problem.path for problem in caught.value.problems] == [
        "readers[2].door",
        "readers[10].door",
    ]


def test_a_missing_list_does_not_also_break_references_into_it(gate_data: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as caught:
        validate_config(edited(gate_data, {"zones": "lobby, staff"}))

    assert [problem.path for problem in caught.value.problems] == ["zones"]
