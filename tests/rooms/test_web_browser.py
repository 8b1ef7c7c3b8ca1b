"""The floor page in headless Chromium: a released room and an unknown one, as staff see them.

Real parts: uvicorn serving rooms.web, Debian's chromium driven by Playwright (no browser
download). With EDGE_SCREENSHOTS=1 the page is written to docs/screenshots/floor-view.png
(docs/floor-view.md shows it); otherwise the run leaves the work tree clean.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from rooms.view import AreaView, BuildingView, Slot
from rooms.web import create_app
from tests.console.conftest import browser  # noqa: F401 -- the console's Chromium fixture
from tests.console.web_fixtures import serve
from tests.rooms.test_floorplan import AT, TOKYO, room, sample

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def third_floor() -> BuildingView:
    """A floor as the screenshot shows it: every status, areas full and half full."""
    soon = (Slot(start=AT + timedelta(hours=1), end=AT + timedelta(hours=2)),)
    return sample(
        rooms=(
            room("room-3a", "free", name="会議室3A", capacity=8, next=soon),
            room("room-3b", "booked", name="会議室3B", next=soon),
            room("room-3c", "in-use", name="会議室3C"),
            room("room-3d", "in-use-unbooked", name="会議室3D"),
            room("room-3e", "released", name="会議室3E", reason="予約者が来なかったため解放"),
            room("room-3f", "unknown", name="会議室3F", reason="センサー node-3f が応答なし"),
            room("booth-3a", "free", name="集中ブース1", kind="focus-booth"),
            room("booth-3b", "in-use", name="集中ブース2", kind="focus-booth"),
            room("booth-3c", "free", name="電話ブース1", kind="phone-booth"),
        ),
        areas=(
            AreaView(id="soumu", name="総務課", floor=3, occupied=5, zones=8, unknown=1),
            AreaView(id="zaisei", name="財政課", floor=3, occupied=2, zones=6),
        ),
    )


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with serve(create_app(third_floor, TOKYO, refresh_s=2)) as base:
        yield base


def test_the_floor_page_shows_a_released_and_an_unknown_room(
    url: str,
    browser: Browser,  # noqa: F811 -- the fixture imported above
) -> None:
    page = browser.new_context(locale="ja-JP", viewport={"width": 1100, "height": 800}).new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text))
    page.goto(f"{url}/floor/3")
    released = page.locator('g[data-zone="room-3e"]')
    expect(released).to_have_attribute("data-status", "released")
    expect(released.locator("text.mark")).to_have_text("R")
    expect(released.locator("title")).to_contain_text("解放済み")
    unknown = page.locator('g[data-zone="room-3f"]')
    expect(unknown).to_have_attribute("data-status", "unknown")
    expect(unknown.locator("text.mark")).to_have_text("?")
    expect(unknown.locator("title")).to_contain_text("センサー node-3f が応答なし")
    assert unknown.locator("rect.pattern").get_attribute("fill") == "url(#hatch-f3)"
    # The names are drawn in Japanese (IPA Gothic): each has a real width on the page.
    name = released.locator("text").first
    expect(name).to_have_text("会議室3E")
    box = name.bounding_box()
    assert box is not None
    assert box["width"] > 20
    expect(page.locator('svg.legend g[data-status="unknown"]')).to_contain_text("不明")
    if os.environ.get("EDGE_SCREENSHOTS") == "1":
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "floor-view.png"), full_page=True)
    # It reloads itself (meta refresh, every 2 s here) with no script on the page.
    with page.expect_event("load", timeout=10_000):
        pass
    assert errors == []  # nothing refused by the Content-Security-Policy, no script errors
