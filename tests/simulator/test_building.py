"""A building from its description: devices, configurations, staff, the HR export."""

from __future__ import annotations

import csv
import io
from collections import Counter
from datetime import date, time
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from firmware_config.loader import parse_config
from provisioning.staff_csv import decode, parse
from simulator.building import (
    KEYPAD_COLS,
    KEYPAD_ROWS,
    BuildingSpec,
    Wiring,
    device_config,
    lay_out,
    load_building,
)
from simulator.faults import check_fault
from simulator.scenario import FAULT_KINDS, Fault, ScenarioError, load_scenario
from simulator.staff import hr_csv, make_people

from .city import SMALL


def test_the_default_building_has_about_forty_devices_and_every_config_validates() -> None:
    building = load_building()
    roles = Counter(d.role for d in building.devices.values())
    assert roles == {"gate": 4, "door": 14, "sensor-node": 19}
    wiring = Wiring(1883, Path("/srv/site"), Path("/srv/stores"))
    for device in building.devices.values():
        config = parse_config(device_config(building, device, wiring), device.id)
        assert config.device.id == device.id
    stair = parse_config(
        device_config(building, building.devices["stair-b-3f"], wiring), "stair-b-3f"
    )
    assert str(stair.doors[0].fail) in ("safe", "FailMode.SAFE")
    assert stair.doors[0].fire_input is not None
    zones = set(building.zones)
    assert {"lobby", "staff-area", "stair-a", "meeting-4f-2", "refresh-4f"} <= zones


def test_the_first_gate_has_a_pin_keypad_at_its_entrance_reader_only() -> None:
    building = load_building()
    wiring = Wiring(1883, Path("/srv/site"), Path("/srv/stores"))
    keypads = {}
    for device in building.devices.values():
        config = parse_config(device_config(building, device, wiring), device.id)
        keypads |= {r.id: (r.pin, r.keypad) for r in config.readers if r.keypad is not None}
    assert list(keypads) == ["gate-1f-east-in"]
    pin, keypad = keypads["gate-1f-east-in"]
    assert str(pin) in ("never", "PinMode.NEVER")
    assert (keypad.kind, keypad.rows, keypad.cols) == ("matrix", KEYPAD_ROWS, KEYPAD_COLS)
    assert [g.keypads for g in building.gates][:2] == [("gate-1f-east-in",), ()]


def test_a_duress_fault_needs_a_gate_with_a_keypad() -> None:
    building = load_building(SMALL)
    stage = SimpleNamespace(building=building, world=SimpleNamespace(doors={}))
    check_fault(stage, Fault(at=time(10), kind="duress", gate="gate-1f-east"))  # type: ignore[arg-type]
    with pytest.raises(ScenarioError, match=r"no PIN keypad.*\['gate-1f-east'\]"):
        check_fault(stage, Fault(at=time(10), kind="duress", gate="gate-1f-west"))  # type: ignore[arg-type]


def test_a_building_description_is_checked_with_the_field_named() -> None:
    data = {
        "site": "Bad Site",
        "name": "x",
        "staff": 10,
        "gates": [],
        "stairways": {"ids": ["a"], "floors": [1]},
        "floors": [{"level": 2, "departments": ["a"], "colour": "red"}],
    }
    with pytest.raises(ValidationError) as error:
        BuildingSpec.model_validate(data)
    text = str(error.value)
    for field in ("site", "gates", "stairways.floors", "floors.0.colour"):
        assert field in text


def test_a_floor_with_more_sensors_than_a_pi_has_pins_is_refused() -> None:
    spec = BuildingSpec.model_validate(
        {
            "site": "s",
            "name": "s",
            "staff": 1,
            "gates": [{"id": "g", "name": "g", "share": 1}],
            "stairways": {"ids": ["a"], "floors": [1, 2]},
            "floors": [{"level": 2, "departments": ["a"], "meeting_rooms": [4] * 20}],
        }
    )
    with pytest.raises(ValueError, match="split the floor's rooms over two nodes"):
        lay_out(spec)


def test_the_hr_export_is_shift_jis_and_imports_cleanly_with_its_cases() -> None:
    building = load_building(SMALL)
    day = date(2026, 12, 1)
    people = make_people(building, day)
    data = hr_csv(people)
    text = data.decode("shift_jis")
    assert text.startswith("staff_no,name,department,card_tech,card_id,groups")
    assert "\r\n" in text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 80
    assert len({r["card_id"] for r in rows}) == 80
    decoded, encoding = decode(data, "cp932")  # as the simulator imports it
    assert encoding == "cp932"
    master = bytes(range(32))  # the site's card master key: guards carry proving cards
    good, problems = parse(decoded, b"site-key-for-test-0123456789abcd", "Asia/Tokyo", master)
    assert problems == []
    assert len(good) == 80
    assert {r.profile for r in good if "security" in r.groups} <= {"lite-s", "desfire"}
    assert {r.profile for r in good if "security" not in r.groups} == {"uid"}
    assert text.splitlines()[0].endswith(",card_profile,pin,duress_pin")
    assert all(r.pin is not None for r in good if "security" in r.groups)
    assert all(r.pin is None for r in good if "security" not in r.groups)
    guards = [p for p in people if p.pin is not None]
    assert len(guards) == 12
    assert all(p.duress_pin not in (None, p.pin) for p in guards)
    assert all(p.pin not in repr(p) for p in guards)
    cases = {p.case for p in people}
    assert {"expired", "not_yet_valid", "lost", "no_card"} <= cases
    expired = next(p for p in people if p.case == "expired")
    assert expired.valid_until is not None
    assert expired.valid_until < day


def test_the_demo_scenario_names_only_parts_of_the_default_building() -> None:
    scenario = load_scenario()
    building = load_building()
    readers = {r for d in building.gates + building.stair_doors for r in d.readers.values()}
    doors = {d.id for d in building.gates + building.stair_doors}
    assert {f.kind for f in scenario.faults} == set(FAULT_KINDS)  # one of each
    for fault in scenario.faults:
        assert fault.door is None or fault.door in doors
        assert fault.reader is None or fault.reader in readers
        assert fault.device is None or fault.device in building.devices
        assert fault.gate is None or fault.gate in {g.id for g in building.gates}


def test_a_scenario_date_that_is_not_a_date_says_so(tmp_path: Path) -> None:
    path = tmp_path / "day.toml"
    path.write_text('date = "tomorrow-ish"\n')
    scenario = load_scenario(path)
    with pytest.raises(ScenarioError, match='not "working-day" or a date'):
        scenario.day("Asia/Tokyo")
    path.write_text("start = 25:00\n")
    with pytest.raises(ScenarioError, match=r"not valid TOML|start"):
        load_scenario(path)


def test_working_day_skips_weekends_and_holidays() -> None:
    scenario = load_scenario()
    assert scenario.day("Asia/Tokyo", date(2026, 11, 28)) == date(2026, 11, 30)  # Sat -> Mon
    assert scenario.day("Asia/Tokyo", date(2027, 1, 1)) == date(2027, 1, 4)  # closure days
