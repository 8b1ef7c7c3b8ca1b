"""The floor view's routes, served by uvicorn on loopback as the console's pages are tested
(starlette's TestClient warns about its httpx under warnings-as-errors): pages, JSON, and bad
input answered with a 400 or 404 page, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest

from rooms.view import BuildingView
from rooms.web import create_app
from tests.console.web_fixtures import Client, serve
from tests.rooms.test_floorplan import TOKYO, sample


@pytest.fixture(scope="module")
def views() -> list[Callable[[], BuildingView]]:
    """What the served app's `view()` calls: a test may put another in first place."""
    holder: list[Callable[[], BuildingView]] = [sample]
    return holder


@pytest.fixture(scope="module")
def url(views: list[Callable[[], BuildingView]]) -> Iterator[str]:
    def now() -> BuildingView:
        return views[0]()  # looked up at each request: a test may swap it

    with serve(create_app(now, TOKYO)) as base:
        yield base


def client(url: str) -> Client:
    return Client(url)


def test_the_building_page_draws_every_floor_and_reloads_itself(url: str) -> None:
    page = client(url).get("/")
    assert page.status == 200
    for floor in (1, 2, 3, 5):
        assert f'data-floor="{floor}"' in page.text
        assert f'href="/floor/{floor}"' in page.text
    assert '<meta http-equiv="refresh" content="10">' in page.text
    assert "script-src" not in page.headers["content-security-policy"]  # none allowed
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert "<script" not in page.text


def test_one_floor_shows_only_that_floor(url: str) -> None:
    page = client(url).get("/floor/3")
    assert page.status == 200
    assert 'class="floorplan" data-floor="3"' in page.text
    assert 'class="floorplan" data-floor="2"' not in page.text
    assert 'data-zone="room-3f" data-status="unknown"' in page.text


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/floor/abc", 400, "is not a number"),
        ("/floor/9", 404, "there is no floor 9"),
        ("/floor/B1", 404, "there is no floor -1"),
        ("/floor/" + "9" * 5000, 400, "is not a number"),
        ("/free?floor=abc", 400, "is not a number"),
        ("/free?floor=8", 404, "there is no floor 8"),
        ("/nowhere", 404, "no such page"),
    ],
)
def test_bad_input_gets_a_page_that_says_what_to_do(
    url: str, path: str, status: int, words: str
) -> None:
    page = client(url).get(path)
    assert page.status == status
    assert "text/html" in page.headers["content-type"]
    assert words in page.text
    assert "floors: 1, 2, 3, 5" in page.text or (status == 404 and "no such page" in page.text)


def test_a_hostile_floor_value_is_shown_as_text(url: str) -> None:
    page = client(url).get("/free?floor=%3Cscript%3Ealert(1)%3C/script%3E")
    assert page.status == 400
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;" in page.text


def test_free_booths_on_my_floor_come_first(url: str) -> None:
    page = client(url).get("/free?floor=3")
    assert page.status == 200
    order = [page.text.index(f'data-zone="{z}"') for z in ("booth-3a", "booth-2a", "booth-1a")]
    assert order == sorted(order)
    assert 'data-zone="booth-3b"' not in page.text  # in use
    assert "解放済み" in page.text  # booth-2a was released


def test_the_free_page_without_a_floor_asks_for_one(url: str) -> None:
    page = client(url).get("/free")
    assert page.status == 200
    assert '<select name="floor">' in page.text
    assert "data-zone=" not in page.text


def test_the_view_is_served_as_json_without_personal_fields(url: str) -> None:
    body = json.loads(client(url).get("/api/view").text)
    assert BuildingView.model_validate(body) == sample()


def test_health(url: str) -> None:
    assert json.loads(client(url).get("/healthz").text) == {"status": "ok"}


def test_a_view_that_cannot_be_built_is_a_503_page_not_a_traceback(
    url: str, views: list[Callable[[], BuildingView]]
) -> None:
    def broken() -> BuildingView:
        raise RuntimeError("calendar went away")

    views.insert(0, broken)
    try:
        page = client(url).get("/")
        health = client(url).get("/healthz")
    finally:
        views.remove(broken)
    assert page.status == 503
    assert "not available right now" in page.text
    assert "calendar went away" not in page.text
    assert health.status == 200
    assert client(url).get("/").status == 200
