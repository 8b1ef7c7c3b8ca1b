"""The building's room sensors, the rooms service's configuration and the day's bookings."""

from __future__ import annotations

import itertools
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from firmware_config.loader import parse_config
from rooms.config import load_service_config
from simulator.building import (
    SENSOR_PINS,
    BuildingSpec,
    Wiring,
    device_config,
    lay_out,
    load_building,
)
from simulator.rooms_config import GRACE_MIN, rooms_config_text
from simulator.rooms_plan import OUTCOMES, bookable, plan_day
from simulator.staff import make_people

WIRING = Wiring(1883, Path("/srv/site"), Path("/srv/stores"))
START = datetime(2026, 12, 1, 6, 30, tzinfo=ZoneInfo("Asia/Tokyo"))


def test_booths_have_a_pir_and_a_door_and_meeting_rooms_a_radar_and_a_door() -> None:
    building = load_building()
    booths = parse_config(
        device_config(building, building.devices["sensors-2f-booths"], WIRING), "b"
    )
    kinds = {p.zone: p.kind for p in booths.presence}
    assert kinds["focus-2f-1"] == "pir"
    assert kinds["phone-2f-2"] == "pir"
    assert {d.zone for d in booths.room_doors} == set(kinds)
    rooms = parse_config(device_config(building, building.devices["sensors-4f-rooms"], WIRING), "r")
    kinds = {p.zone: p.kind for p in rooms.presence}
    assert kinds == {"meeting-4f-1": "mmwave", "meeting-4f-2": "mmwave", "refresh-4f": "pir"}
    assert {d.zone for d in rooms.room_doors} == {"meeting-4f-1", "meeting-4f-2"}
    consult = parse_config(
        device_config(building, building.devices["sensors-1f-consult"], WIRING), "c"
    )
    assert len(consult.room_doors) == 6
    pins = [getattr(p, "pin", None) for p in consult.presence] + [d.pin for d in consult.room_doors]
    assert len(set(pins)) == len(pins)
    assert set(pins) <= set(SENSOR_PINS)


def test_each_department_area_is_split_into_desk_islands_on_one_node() -> None:
    building = load_building()
    area = building.areas["area-2f-1"]
    assert area.islands == ("area-2f-1-a", "area-2f-1-b", "area-2f-1-c", "area-2f-1-d")
    assert area.device == "sensors-2f-areas"
    node = parse_config(device_config(building, building.devices[area.device], WIRING), "a")
    assert {p.zone for p in node.presence} >= set(area.islands)
    assert all(d.area in building.areas for d in building.departments)
    assert len(building.areas) == 18


def test_a_node_whose_pins_run_out_is_refused_with_the_fix() -> None:
    spec = BuildingSpec.model_validate(
        {
            "site": "s",
            "name": "s",
            "staff": 1,
            "gates": [{"id": "g", "name": "g", "share": 1}],
            "stairways": {"ids": ["a"], "floors": [1, 2]},
            "floors": [{"level": 2, "departments": ["a"], "focus_booths": 9}],
        }
    )
    with pytest.raises(ValueError, match=r"sensors-2f-booths: 18 inputs .* 17 free pins"):
        lay_out(spec)
    islands = spec.model_copy(
        update={"floors": [spec.floors[0].model_copy(update={"focus_booths": 8, "islands": 8})]}
    )
    lay_out(islands)  # 8 booths (16 pins) and 8 islands fit


def test_the_rooms_service_configuration_of_the_building_validates(tmp_path: Path) -> None:
    building = load_building()
    secret = tmp_path / "password"
    secret.write_text("x\n")
    path = tmp_path / "rooms.toml"
    path.write_text(
        rooms_config_text(
            building,
            broker_port=1883,
            password_file=secret,
            state_path=tmp_path / "state.db",
            calendar_url="http://127.0.0.1:5232/",
            calendar_user="rooms-service",
            calendar_password_file=secret,
            calendar_paths={z.id: f"/rooms-service/{z.id}/" for z in bookable(building)},
        )
    )
    config = load_service_config(path)
    kinds = {r.zone: (r.kind, r.ad_hoc, r.device) for r in config.rooms}
    assert kinds["focus-3f-2"] == ("focus-booth", True, "sensors-3f-booths")
    assert kinds["phone-7f-1"] == ("phone-booth", True, "sensors-7f-booths")
    assert kinds["meeting-7f-2"] == ("meeting-room", False, "sensors-7f-rooms")
    assert not any(zone.startswith("consult-") for zone in kinds)
    assert len(config.rooms) == 49
    area = next(a for a in config.areas if a.id == "area-5f-2")
    assert area.zones == building.areas["area-5f-2"].islands
    assert any(a.zones == ("refresh-4f",) for a in config.areas)
    assert dict(config.checkin.grace_min) == dict(GRACE_MIN)


def test_the_day_s_bookings_come_from_the_seed_with_every_outcome() -> None:
    building = load_building()
    people = make_people(building, date(2026, 12, 1))
    cut = (8.5 * 3600, 8.5 * 3600 + 600)  # 15:00-15:10 local
    first = plan_day(building, people, START, 1, GRACE_MIN, [("sensors-2f-booths", *cut)])
    again = plan_day(building, people, START, 1, GRACE_MIN, [("sensors-2f-booths", *cut)])
    assert first == again
    assert first != plan_day(building, people, START, 2, GRACE_MIN)
    assert {u.outcome for u in first} == {*OUTCOMES, "ad_hoc"}
    spanning = [u for u in first if u.room == "focus-2f-1" and u.start_s < cut[0] < u.end_s]
    assert len(spanning) == 1
    assert spanning[0].outcome == "normal"
    assert spanning[0].arrive_s is not None
    assert spanning[0].arrive_s < cut[0]
    assert spanning[0].leave_s is not None
    assert spanning[0].leave_s > cut[1]
    for room in {u.room for u in first}:
        mine = sorted((u for u in first if u.room == room), key=lambda u: u.start_s)
        for earlier, later in itertools.pairwise(mine):
            assert earlier.end_s <= later.start_s, (earlier, later)
    late = [u for u in first if u.outcome == "late"]
    assert all(u.arrive_s is not None and u.arrive_s < u.start_s + 600 for u in late)
    assert all("@" in u.organiser for u in first)
