"""Basement floors are labelled as the building's signs and the floor parser name them: B1.

The floor view's pages, the console's occupancy page (both served by uvicorn on loopback),
the plan's SVG and Home Assistant's suggested area all use rooms.floorplan.floor_label.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.log import CentralLog
from rooms import floorplan
from rooms import homeassistant as ha
from rooms.view import BuildingView
from rooms.web import create_app
from tests.console.test_occupancy_view import occupancy_page
from tests.console.web_fixtures import Client, serve
from tests.rooms.test_floorplan import TOKYO, room, sample
from tests.rooms.test_homeassistant import config


def basement() -> BuildingView:
    """The sample building with a phone booth on the first basement floor."""
    return sample(rooms=(*sample().rooms, room("booth-b1", "free", kind="phone-booth", floor=-1)))


@pytest.mark.parametrize(("floor", "label"), [(-2, "B2"), (-1, "B1"), (1, "1F"), (12, "12F")])
def test_a_floor_s_label(floor: int, label: str) -> None:
    assert floorplan.floor_label(floor) == label


def test_the_floor_view_names_a_basement_b1_and_its_address_takes_that_name() -> None:
    view = basement()
    assert 'aria-label="B1"' in floorplan.render(view, -1, TOKYO)
    with serve(create_app(basement, TOKYO)) as url:
        building = Client(url).get("/")
        floor = Client(url).get("/floor/B1")
        free = Client(url).get("/free?floor=-1")
    assert building.status == floor.status == free.status == 200
    for page in (building, floor, free):
        assert ">B1<" in page.text
        assert "-1F" not in page.text
    assert "<title>B1" in floor.text


def test_the_console_s_occupancy_page_names_a_basement_b1(tmp_path: Path) -> None:
    view = basement().model_copy(update={"site": "kamakura-city-hall"})
    log_path = tmp_path / "log.db"
    log = CentralLog(log_path)
    log.set_rooms("view", view.model_dump_json(), "2026-04-01T00:00:00+00:00")
    log.close()
    text = occupancy_page(tmp_path, log_path)
    assert 'data-floor="-1"' in text
    assert "<h3>B1</h3>" in text
    assert "-1F" not in text


def test_home_assistant_suggests_the_area_b1_for_a_basement_room(tmp_path: Path) -> None:
    rooms = [{"zone": "booth-b1", "name": "B1 booth", "kind": "phone-booth", "floor": -1}]
    messages = ha.discovery(config(tmp_path, rooms=[{**rooms[0], "device": "node-b1"}]))
    areas = {json.loads(p)["device"]["suggested_area"] for t, p in messages if "booth_b1" in t}
    assert areas == {"B1"}
