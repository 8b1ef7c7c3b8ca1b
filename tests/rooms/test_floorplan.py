"""The floor plan: a deterministic layout, every name escaped, each status told apart without
colour, and free booths listed nearest floor first."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from rooms import floorplan
from rooms.view import AreaView, BuildingView, RoomView, Slot

TOKYO = ZoneInfo("Asia/Tokyo")
AT = datetime(2030, 6, 3, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo, far from the suite's own time
SVG = "{http://www.w3.org/2000/svg}"


def room(zone: str, status: str, **fields: object) -> RoomView:
    values: dict[str, object] = {
        "zone": zone,
        "name": fields.pop("name", zone),
        "kind": "meeting-room",
        "floor": 3,
        "status": status,
        "occupied": status.startswith("in-use") if status != "unknown" else None,
    }
    return RoomView.model_validate({**values, **fields})


def sample(**changes: object) -> BuildingView:
    """A small building: two floors, every status, an area with unknown islands."""
    slot = Slot(start=AT + timedelta(hours=1), end=AT + timedelta(hours=2))
    rooms = (
        room("room-3a", "free", name="会議室3A", next=(slot,)),
        room("room-3b", "booked", next=(Slot(start=AT, end=AT + timedelta(minutes=30)),)),
        room("room-3c", "in-use"),
        room("room-3d", "in-use-unbooked"),
        room("room-3e", "released", reason="no-show: nobody came within 10 min"),
        room("room-3f", "unknown", reason="sensor node-3f offline"),
        room("booth-3a", "free", kind="focus-booth"),
        room("booth-3b", "in-use", kind="phone-booth"),
        room("booth-2a", "released", kind="phone-booth", floor=2),
        room("booth-5a", "free", kind="focus-booth", floor=5),
        room("booth-1a", "free", kind="focus-booth", floor=1),
    )
    areas = (
        AreaView(id="soumu", name="総務課", floor=3, occupied=3, zones=8, unknown=2),
        AreaView(id="kikaku", name="企画課", floor=2, occupied=0, zones=4),
    )
    values: dict[str, object] = {
        "site": "city-hall",
        "name": "鎌倉市役所",
        "at": AT,
        "rooms": rooms,
        "areas": areas,
    }
    return BuildingView.model_validate({**values, **changes})


def groups(svg: str) -> dict[str, ET.Element]:
    """Parse the SVG (it must be well-formed XML) and return its rooms by zone."""
    tree = ET.fromstring(svg)
    return {g.attrib["data-zone"]: g for g in tree.iter(f"{SVG}g") if "data-zone" in g.attrib}


def test_the_layout_is_the_same_for_the_same_view_and_nothing_overlaps() -> None:
    first = floorplan.layout(sample(), 3)
    assert first == floorplan.layout(sample(), 3)
    boxes = [p.box for p in first.placed]
    assert len(boxes) == 9  # one area, six rooms, two booths
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = a.x + a.w <= b.x or b.x + b.w <= a.x or a.y + a.h <= b.y or b.y + b.h <= a.y
            assert apart, (a, b)
    rows = {type(p.item).__name__ + getattr(p.item, "kind", ""): p.box.y for p in first.placed}
    # the department area's band first, then booths in a row, then meeting rooms
    assert rows["AreaView"] < rows["RoomViewfocus-booth"] < rows["RoomViewmeeting-room"]


def test_a_configured_shape_is_kept_and_the_rest_go_below_it() -> None:
    shaped = sample(
        rooms=(room("room-3a", "free", shape=(400, 20, 150, 100)), room("room-3b", "free")),
        areas=(),
    )
    plan = floorplan.layout(shaped, 3)
    by_zone = {p.item.zone: p.box for p in plan.placed if isinstance(p.item, RoomView)}
    assert by_zone["room-3a"] == floorplan.Box(400, 20, 150, 100)
    assert by_zone["room-3b"].y >= 120 + floorplan.GAP


def test_each_status_has_its_own_mark_and_pattern_or_colour_and_a_tooltip() -> None:
    svg = floorplan.render(sample(), 3, TOKYO)
    found = groups(svg)
    marks = {}
    for zone, g in found.items():
        status = g.attrib["data-status"]
        mark = next(t for t in g.iter(f"{SVG}text") if t.attrib.get("class") == "mark")
        marks[status] = mark.text
        title = g.find(f"{SVG}title")
        assert title is not None
        assert title.text
        assert floorplan.LOOKS[status].ja in title.text  # type: ignore[index]
        patterned = [r for r in g.iter(f"{SVG}rect") if r.attrib.get("class") == "pattern"]
        assert bool(patterned) == bool(floorplan.LOOKS[status].pattern), zone  # type: ignore[index]
    assert set(marks) == set(floorplan.LOOKS)
    assert len(set(marks.values())) == len(marks)  # no two statuses share a letter
    unknown = found["room-3f"]
    assert 'fill="url(#hatch-f3)"' in ET.tostring(unknown, encoding="unicode").replace("ns0:", "")
    assert "sensor node-3f offline" in (unknown.findtext(f"{SVG}title") or "")
    assert "no-show" in (found["room-3e"].findtext(f"{SVG}title") or "")


def test_the_legend_tells_the_statuses_apart_without_colour() -> None:
    tree = ET.fromstring(floorplan.legend())
    keys = [g for g in tree.iter(f"{SVG}g") if "data-status" in g.attrib]
    assert [k.attrib["data-status"] for k in keys] == list(floorplan.LOOKS)
    for key in keys:
        words = " ".join(t.text or "" for t in key.iter(f"{SVG}text"))
        look = floorplan.LOOKS[key.attrib["data-status"]]  # type: ignore[index]
        assert look.mark in words
        assert look.en in words
        assert look.ja in words


def test_a_room_shows_its_next_bookings_as_local_times_only() -> None:
    svg = floorplan.render(sample(), 3, TOKYO)
    slots = [t.text for t in groups(svg)["room-3a"].iter(f"{SVG}text") if "slot" in str(t.attrib)]
    assert slots == ["11:00–12:00"]


def test_an_area_shows_how_full_it_is_and_its_unknown_islands() -> None:
    tree = ET.fromstring(floorplan.render(sample(), 3, TOKYO))
    area = next(g for g in tree.iter(f"{SVG}g") if g.attrib.get("data-area") == "soumu")
    used = next(r for r in area.iter(f"{SVG}rect") if r.attrib.get("class") == "used")
    unknown = next(r for r in area.iter(f"{SVG}rect") if r.attrib.get("class") == "unknown")
    assert int(used.attrib["width"]) == round((220 - 16) * 3 / 8)
    assert int(unknown.attrib["width"]) == round((220 - 16) * 2 / 8)
    assert "3/8" in " ".join(t.text or "" for t in area.iter(f"{SVG}text"))
    assert "38%" in " ".join(t.text or "" for t in area.iter(f"{SVG}text"))


def test_hostile_names_render_as_text() -> None:
    hostile = '<script>alert(1)</script>"\u202e\x1b[2J&'
    view = sample(
        rooms=(room("room-3a", "unknown", name=hostile, reason="<img src=x onerror=alert(1)>"),),
        areas=(AreaView(id="a", name=hostile, floor=3, occupied=1, zones=2),),
    )
    svg = floorplan.render(view, 3, TOKYO)
    assert "<script" not in svg
    assert "<img" not in svg
    assert "\u202e" not in svg
    assert "\x1b" not in svg
    tree = ET.fromstring(svg)  # still well-formed
    shown = '<script>alert(1)</script>"[2J&'  # as text, without the control characters
    names = [t.text for t in tree.iter(f"{SVG}text") if (t.text or "").startswith("<script>")]
    assert len(names) == 2  # the room's and the area's, shortened to fit their boxes
    titles = [t.text or "" for t in tree.iter(f"{SVG}title")]
    assert all(t.startswith(shown) for t in titles)  # the tooltip has the whole name


def test_free_booths_on_my_floor_come_first_then_the_nearest_floors() -> None:
    near = floorplan.free_booths_near(sample(), 3)
    assert [(f, [b.zone for b in booths]) for f, booths in near] == [
        (3, ["booth-3a"]),
        (2, ["booth-2a"]),  # released is free again
        (1, ["booth-1a"]),  # two floors away, as 5 is: the lower floor first
        (5, ["booth-5a"]),
    ]


def test_a_floor_with_nothing_on_it_still_draws() -> None:
    svg = floorplan.render(sample(rooms=(), areas=()), 7, TOKYO)
    assert re.search(r'viewBox="-2 -2 5 5"', svg)
