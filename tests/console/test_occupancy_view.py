"""The occupancy page draws the rooms service's retained building view above the line's counts.

Real parts for the live test: mosquitto and the console's collector, which takes the view
like any retained status and keeps it in the log; uvicorn serves the page.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest

from console.collector import Collector
from console.judged import Judged
from console.judged import rooms as judged_rooms
from console.log import CentralLog
from console.mqtt import ConsoleClient
from console.rooms_view import MAX_VIEW, STATUS, VIEW, ViewRefused, judge_status, judge_view
from console.users import add_user
from console.web import Settings, create_app
from rooms.view import AreaView
from tests.console.collector_fixtures import SITE
from tests.console.sites_fixtures import BRANCH, HOME, NOW, RECEIVED, fill, registry
from tests.console.web_fixtures import PASSWORDS, Client, serve
from tests.rooms.test_floorplan import room, sample

VIEW_TOPIC = f"edge/{SITE}/rooms/view"
STATUS_TOPIC = f"edge/{SITE}/rooms/status"


def occupancy_page(tmp_path: Path, log_path: Path) -> str:
    """Log a guard in on the console served on `log_path`; return the occupancy page."""
    log = CentralLog(log_path)
    add_user(log, "guard1", "guard", PASSWORDS["guard1"], by="test")
    log.close()
    settings = Settings(log_path, None, tmp_path / "session.key", secure_cookies=False)
    with serve(create_app(settings)) as url:
        client = Client(url)
        assert client.login("guard1").status == 303
        reply = client.get("/occupancy")
        assert reply.status == 200
        return reply.text


def test_without_a_view_the_page_says_the_service_has_not_published_one(tmp_path: Path) -> None:
    text = occupancy_page(tmp_path, tmp_path / "log.db")
    assert "the rooms service has not published a view" in text
    assert "<svg" not in text


def test_the_page_draws_the_retained_view_the_collector_kept(
    tmp_path: Path, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    hostile = "<script>alert(1)</script>"
    view = sample(
        site=SITE,
        rooms=(
            room("room-3e", "released", reason="no-show"),
            room("room-3f", "unknown", name=hostile, reason="sensor offline"),
        ),
        areas=(AreaView(id="soumu", name="総務課", floor=3, occupied=2, zones=4),),
    )
    publisher.publish(VIEW_TOPIC, view.model_dump_json().encode(), retain=True)
    publisher.publish(STATUS_TOPIC, b"offline", retain=True)
    log_path = tmp_path / "log.db"
    collector = collectors(log_path)
    assert collector.wait_for(lambda log: {"view", "status"} <= set(log.rooms(SITE)), 20)
    # A view that is not one is refused; the one kept stays.
    publisher.publish(VIEW_TOPIC, b'{"v": 1, "site": "' + SITE.encode() + b'"}', retain=True)
    assert collector.wait_for(lambda log: collector.rejected >= 1, 20)
    text = occupancy_page(tmp_path, log_path)
    assert 'data-zone="room-3e" data-status="released"' in text
    assert 'data-zone="room-3f" data-status="unknown"' in text
    assert 'data-area="soumu" data-occupied="2" data-zones="4"' in text
    assert hostile not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert 'id="rooms-offline"' in text
    assert "has not published a view" not in text
    # The security line's own counts are still on the page, below the plan.
    assert text.index('id="rooms-view"') < text.index("セキュリティラインの集計")


def test_a_view_for_another_site_is_refused(
    tmp_path: Path, publisher: ConsoleClient, collectors: Callable[..., Collector]
) -> None:
    publisher.publish(VIEW_TOPIC, sample(site="elsewhere").model_dump_json().encode(), retain=True)
    log_path = tmp_path / "log.db"
    collector = collectors(log_path)
    assert collector.wait_for(lambda log: collector.rejected >= 1, 20)
    assert "view" not in collector.log.rooms(SITE)
    assert "the rooms service has not published a view" in occupancy_page(tmp_path, log_path)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{", "rooms view"),
        (b"[]", "rooms view"),
        (b" " * (MAX_VIEW + 1), "bytes; at most"),
        (sample(site="elsewhere").model_dump_json().encode(), "not this site"),
    ],
)
def test_a_bad_view_is_refused_with_its_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(ViewRefused, match=reason):
        judge_view(payload, SITE)


def test_a_view_carrying_a_person_is_refused() -> None:
    body = json.loads(sample(site=SITE).model_dump_json())
    body["rooms"][0]["organizer"] = "高橋 健太"
    with pytest.raises(ViewRefused, match="organizer"):
        judge_view(json.dumps(body).encode(), SITE)
    assert judge_view(sample(site=SITE).model_dump_json().encode(), SITE)


def test_the_rooms_status_is_online_or_offline_only() -> None:
    assert judge_status(b"online") == "online"
    with pytest.raises(ViewRefused):
        judge_status(b'{"state": "online"}')


def test_each_sites_page_draws_its_own_view_and_its_own_services_status(tmp_path: Path) -> None:
    log_path = tmp_path / "log.db"
    log = CentralLog(log_path)
    fill(log, None, with_users=True)  # the home site's rows as written before sites
    judged = {}
    for site, zone, status in ((HOME, "room-home", "online"), (BRANCH, "room-branch", "offline")):
        judged[site] = Judged(site, datetime.fromisoformat(NOW))
        view = sample(site=site, rooms=(room(zone, "free"),)).model_dump_json().encode()
        judged_rooms(VIEW, view, judged[site])
        judged_rooms(STATUS, status.encode(), judged[site])
        judged[site].write(log, RECEIVED)  # as the collector stores a batch of that site
    assert set(log.rooms(BRANCH)) == {VIEW, STATUS}
    log.close()
    settings = Settings(
        log_path, registry(tmp_path / "registry.db"), tmp_path / "session.key", secure_cookies=False
    )
    with serve(create_app(settings)) as url:
        guard = Client(url)
        assert guard.login("guard1").status == 303
        queries = (f"?site={HOME}", f"?site={BRANCH}", "")
        home, branch, every = (guard.get(f"/occupancy{query}").text for query in queries)
    assert 'data-zone="room-home"' in home
    assert 'data-zone="room-branch"' not in home
    assert 'id="rooms-offline"' not in home  # the branch's service is offline, not the home's
    assert 'data-zone="room-branch"' in branch
    assert 'data-zone="room-home"' not in branch
    assert 'id="rooms-offline"' in branch
    assert 'data-zone="room-home"' in every  # no site chosen: the console's own site's view
