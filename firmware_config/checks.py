"""Rules that span the configuration: pins, ids, references between parts, device roles.

They read plain data (the parsed TOML, or a model's dump) and skip whatever they cannot
read. Pydantic runs a model's own after-validators only when all its fields are valid, so the
loader runs these next to field validation to report every mistake in one pass; the root
model runs them too, so a configuration built in code is checked the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import PurePath
from typing import Any, Final

from firmware_config.deployment import tls_rules
from firmware_config.doors import door_rules
from firmware_config.errors import MISSING, Problem, show_value
from firmware_config.fields import FIRST_PIN, LAST_PIN
from firmware_config.readers import INDICATOR_PINS, indicator_rules

_NOUNS: Final = {
    "zones": "zone",
    "doors": "door",
    "readers": "reader",
    "presence": "presence sensor",
    "indicators": "indicator",
    "room_doors": "room door",
}
_ROOM_KINDS: Final = ("booth", "meeting-room")  # the zones a room door may close
_DOOR_WIRING: Final = ("relay", "contact", "exit_button", "fire_input")
_EXAMPLES: Final = "firmware_config/examples/"
_SOURCE_KEYS: Final = {"pcsc": "match", "nfc": "path"}  # what picks the hardware, per kind

_Item = tuple[str, Mapping[str, Any]]


def check_config(raw: Mapping[str, Any]) -> list[Problem]:
    """Return every cross-field problem in a configuration given as plain data."""
    return [
        *_part_rules(raw),
        *_duplicate_ids(raw),
        *_pins_used_twice(raw),
        *_references(raw),
        *_reader_sources(raw),
        *_room_doors(raw),
        *_serial_ports(raw),
        *_role(raw),
        *_card_key(raw),
    ]


def pin_uses(raw: Mapping[str, Any]) -> list[tuple[str, int]]:
    """List each valid GPIO pin the configuration uses, with its path, in file order."""
    uses: list[tuple[str, object]] = []
    for path, door in _items(raw, "doors"):
        for part in _DOOR_WIRING:
            wiring = door.get(part)
            if isinstance(wiring, Mapping):
                uses.append((f"{path}.{part}.pin", wiring.get("pin")))
    uses += [(f"{path}.pin", sensor.get("pin")) for path, sensor in _items(raw, "presence")]
    uses += [(f"{path}.pin", door.get("pin")) for path, door in _items(raw, "room_doors")]
    for path, indicator in _items(raw, "indicators"):
        uses += [(f"{path}.{name}", indicator.get(name)) for name in INDICATOR_PINS]
    for path, reader in _items(raw, "readers"):
        keypad = reader.get("keypad")
        if isinstance(keypad, Mapping) and keypad.get("kind") == "matrix":
            for line in ("rows", "cols"):
                pins = keypad.get(line)
                if isinstance(pins, list | tuple):
                    uses += [(f"{path}.keypad.{line}[{i}]", pin) for i, pin in enumerate(pins)]
    return [
        (path, pin)
        for path, pin in uses
        if isinstance(pin, int) and not isinstance(pin, bool) and FIRST_PIN <= pin <= LAST_PIN
    ]


def _items(raw: Mapping[str, Any], key: str) -> list[_Item]:
    value = raw.get(key)
    if not isinstance(value, list | tuple):
        return []
    return [(f"{key}[{i}]", item) for i, item in enumerate(value) if isinstance(item, Mapping)]


def _part_rules(raw: Mapping[str, Any]) -> Iterator[Problem]:
    mqtt = raw.get("mqtt")
    tls = mqtt.get("tls") if isinstance(mqtt, Mapping) else None
    if isinstance(tls, Mapping):
        yield from (p.within("mqtt.tls") for p in tls_rules(tls))
    for path, door in _items(raw, "doors"):
        yield from (p.within(path) for p in door_rules(door))
    for path, indicator in _items(raw, "indicators"):
        yield from (p.within(path) for p in indicator_rules(indicator))


def _duplicate_ids(raw: Mapping[str, Any]) -> Iterator[Problem]:
    for key, noun in _NOUNS.items():
        first_use: dict[str, str] = {}
        for path, item in _items(raw, key):
            ident = item.get("id")
            if not isinstance(ident, str):
                continue
            if ident in first_use:
                yield Problem(
                    f"{path}.id",
                    show_value(ident),
                    f"id {show_value(ident)} is already used by {first_use[ident]}",
                    f"give each {noun} its own id",
                )
            else:
                first_use[ident] = path


def _pins_used_twice(raw: Mapping[str, Any]) -> Iterator[Problem]:
    first_use: dict[int, str] = {}
    for path, pin in pin_uses(raw):
        if pin in first_use:
            yield Problem(
                path,
                str(pin),
                f"GPIO {pin} is already used by {first_use[pin]}",
                "give each input and output its own pin",
            )
        else:
            first_use[pin] = path


def _references(raw: Mapping[str, Any]) -> Iterator[Problem]:
    zones = _ids(raw, "zones")
    for path, door in _items(raw, "doors"):
        for side in ("outside_zone", "inside_zone"):
            yield from _reference(f"{path}.{side}", door.get(side), "zones", zones)
    for path, sensor in _items(raw, "presence"):
        yield from _reference(f"{path}.zone", sensor.get("zone"), "zones", zones)
    doors = _ids(raw, "doors")
    for path, reader in _items(raw, "readers"):
        yield from _reference(f"{path}.door", reader.get("door"), "doors", doors)
    for path, room_door in _items(raw, "room_doors"):
        yield from _reference(f"{path}.zone", room_door.get("zone"), "zones", zones)
    readers = _ids(raw, "readers")
    for path, indicator in _items(raw, "indicators"):
        yield from _reference(f"{path}.reader", indicator.get("reader"), "readers", readers)


def _ids(raw: Mapping[str, Any], key: str) -> list[str] | None:
    """Return the declared ids; None when the list itself is malformed (reported elsewhere)."""
    if _count(raw, key) is None:
        return None
    return [item["id"] for _, item in _items(raw, key) if isinstance(item.get("id"), str)]


def _reference(
    path: str, target: object, key: str, declared: list[str] | None
) -> Iterator[Problem]:
    if declared is None or not isinstance(target, str) or target in declared:
        return
    noun = _NOUNS[key]
    add = f"add a [[{key}]] table with id = {show_value(target)}"
    choices = ", ".join(show_value(ident) for ident in dict.fromkeys(declared))
    yield Problem(
        path,
        show_value(target),
        f"no {noun} {show_value(target)} is declared",
        f"use one of the declared {key}: {choices}; or {add}" if declared else add,
    )


def _reader_sources(raw: Mapping[str, Any]) -> Iterator[Problem]:
    # The pcsc adapter picks a reader by substring, so "RC-S300" and "RC-S300/P 01 00"
    # both match the reader named "SONY FeliCa RC-S300/P 01 00": an in/out swap waiting
    # to happen. Equal nfc paths open the same device twice.
    seen: list[tuple[str, str, str]] = []  # (kind, value, path of the reader)
    for path, reader in _items(raw, "readers"):
        kind = reader.get("kind")
        key = _SOURCE_KEYS.get(kind) if isinstance(kind, str) else None
        value = reader.get(key) if key else None
        if not isinstance(kind, str) or not isinstance(value, str) or not value:
            continue
        for other_kind, other, other_path in seen:
            if other_kind == kind and (value in other or other in value):
                yield _same_reader(kind, f"{path}.{key}", value, (other, other_path))
                break
        seen.append((kind, value, path))


def _same_reader(kind: str, path: str, value: str, earlier: tuple[str, str]) -> Problem:
    other, other_path = earlier
    if kind == "nfc":
        fix = "give each nfc reader its own device path"
    else:
        fix = (
            "make each match pick exactly one reader, e.g. with its slot number: "
            '"… 00 00" and "… 01 00" (`pcsc_scan` lists the names)'
        )
    how = "is the same as" if value == other else f"overlaps {show_value(other)} of"
    return Problem(
        path, show_value(value), f"{how} {other_path}: both can pick the same reader", fix
    )


def _room_doors(raw: Mapping[str, Any]) -> Iterator[Problem]:
    """A room door closes a booth or meeting room of this device that has a presence sensor."""
    # Only string ids: anything else is reported by the fields' own validation.
    kinds = {z["id"]: z.get("kind") for _, z in _items(raw, "zones") if _is_text(z.get("id"))}
    watched = {s["zone"] for _, s in _items(raw, "presence") if _is_text(s.get("zone"))}
    doors = {d["id"]: path for path, d in _items(raw, "doors") if _is_text(d.get("id"))}
    for path, room_door in _items(raw, "room_doors"):
        ident, zone = room_door.get("id"), room_door.get("zone")
        if isinstance(ident, str) and ident in doors:
            yield Problem(
                f"{path}.id",
                show_value(ident),
                f"id {show_value(ident)} is already used by {doors[ident]}",
                "give each door and room door its own id",
            )
        if not isinstance(zone, str) or zone not in kinds:
            continue  # an undeclared zone is reported by _references
        if kinds[zone] not in _ROOM_KINDS:
            yield Problem(
                f"{path}.zone",
                show_value(zone),
                f"zone {show_value(zone)} is of kind {show_value(kinds[zone])}; a room door "
                "closes a booth or a meeting room",
                'set the zone\'s kind = "booth" or "meeting-room", or name such a zone here '
                "(a door with a lock belongs in [[doors]])",
            )
        elif zone not in watched:
            yield Problem(
                f"{path}.zone",
                show_value(zone),
                f"no presence sensor of this device watches zone {show_value(zone)}, so its "
                "door has nothing to keep",
                f"add a [[presence]] table with zone = {show_value(zone)}, or remove this "
                "room door",
            )


def _is_text(value: object) -> bool:
    return isinstance(value, str)


def _serial_ports(raw: Mapping[str, Any]) -> Iterator[Problem]:
    first_use: dict[str, str] = {}
    for path, sensor in _items(raw, "presence"):
        if sensor.get("kind") != "ld2410-uart":
            continue
        port = sensor.get("port", "/dev/serial0")
        port = str(port) if isinstance(port, PurePath) else port
        if not isinstance(port, str):
            continue
        if port in first_use:
            yield Problem(
                f"{path}.port",
                show_value(port),
                f"serial port {show_value(port)} is already used by {first_use[port]}",
                "give each radar its own serial port (a USB serial adapter for the second: "
                "/dev/serial/by-id/…)",
            )
        else:
            first_use[port] = path


def _role(raw: Mapping[str, Any]) -> Iterator[Problem]:
    device = raw.get("device")
    role = device.get("role") if isinstance(device, Mapping) else None
    if role in ("gate", "door"):
        example = "security-gate.toml" if role == "gate" else "stairway-door.toml"
        for key in ("doors", "readers"):
            if _count(raw, key) == 0:
                yield Problem(
                    key,
                    _shown(raw, key),
                    f'a "{role}" device needs at least one {_NOUNS[key]}',
                    f"add a [[{key}]] table (see {_EXAMPLES}{example}), "
                    'or set device.role = "sensor-node"',
                )
    elif role == "sensor-node":
        if _count(raw, "presence") == 0:
            yield Problem(
                "presence",
                _shown(raw, "presence"),
                'a "sensor-node" needs at least one presence sensor',
                f"add a [[presence]] table (see {_EXAMPLES}sensor-node.toml)",
            )
        if _count(raw, "doors"):
            door_ids = [item.get("id") for _, item in _items(raw, "doors")]
            yield Problem(
                "doors",
                show_value(door_ids),
                'a "sensor-node" has no doors',
                'remove the [[doors]] tables, or set device.role = "door" or "gate"',
            )


def _card_key(raw: Mapping[str, Any]) -> Iterator[Problem]:
    # Only a device with readers turns card numbers into references; the others never
    # receive the site card key (a stolen sensor node yields no card).
    site = raw.get("site")
    if not _count(raw, "readers") or not isinstance(site, Mapping):
        return
    if site.get("card_key_file") is None:
        yield Problem(
            "site.card_key_file",
            MISSING,
            "a device with readers needs the site card key to turn card numbers into "
            "card references",
            'add card_key_file = "/etc/edge/card-key" to [site] (the file comes in the '
            "device bundle: edge-provision device bundle)",
        )


def _count(raw: Mapping[str, Any], key: str) -> int | None:
    """Count the entries of a list; None when the key holds something else (reported elsewhere)."""
    value = raw.get(key, [])
    return len(value) if isinstance(value, list | tuple) else None


def _shown(raw: Mapping[str, Any], key: str) -> str:
    return show_value(raw[key]) if key in raw else MISSING
