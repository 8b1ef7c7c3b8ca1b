"""The web page across sites, on SQLite and PostgreSQL: a site filter on every listing page
(a select box once the log holds two sites), each site's roll call on its own, the Sites
page for every role, and logging in (users, sessions) on either database.

Real parts: uvicorn on loopback, the central log (SQLite file or a private PostgreSQL), a
provisioning registry.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser

from console.log import open_log
from console.users import add_user
from console.web import Settings, create_app
from tests.console.sites_fixtures import BRANCH, HOME, NOW, fill, registry
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)

from .web_fixtures import PASSWORDS, Client, FakeClock, serve


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The console serving the two sites' log (SQLite, or PostgreSQL)."""
    if request.param == "sqlite":
        target: Path | str = tmp_path / "log.db"
        home = None
    else:
        target, home = request.getfixturevalue("pg_database"), HOME
    log = open_log(target)
    fill(log, home)
    log.close()
    settings = Settings(
        target,
        registry(tmp_path / "registry.db"),
        tmp_path / "session.key",
        secure_cookies=False,
        clock=FakeClock(datetime.fromisoformat(NOW).timestamp()),
    )
    with serve(create_app(settings)) as served:
        yield served


def client(url: str, user: str) -> Client:
    made = Client(url)
    assert made.login(user).status == 303
    return made


def sections(text: str) -> list[str]:
    return re.findall(r'<section class="site" data-site="([^"]+)"', text)


def test_the_roll_call_of_one_site_never_lists_anothers_people(url: str) -> None:
    guard = client(url, "guard1")
    branch = guard.get(f"/muster?site={BRANCH}")
    assert branch.status == 200
    assert sections(branch.text) == [BRANCH]
    assert 'data-staff="K10001"' in branch.text
    assert 'data-staff="K10002"' not in branch.text  # inside the home site only
    assert '<span id="total">1</span>' in branch.text
    every = guard.get("/muster")
    assert sections(every.text) == [BRANCH, HOME]
    assert re.findall(r'class="site-total">(\d+)<', every.text) == ["1", "2"]
    assert '<select name="site" id="site">' in every.text


def test_every_listing_page_keeps_to_the_site_asked_for(url: str) -> None:
    boss = client(url, "boss")
    log = boss.get(f"/log?site={BRANCH}").text
    assert "gate-h1" in log
    assert "<td>gate-1</td>" not in log
    alarms = boss.get(f"/alarms/rows?site={HOME}").text
    assert re.findall(r'data-device="([^"]+)" data-site="([^"]+)"', alarms) == [("gate-1", HOME)]
    devices = boss.get(f"/devices?site={BRANCH}").text
    assert re.findall(r'<tr data-device="([^"]+)"', devices) == ["gate-h1"]
    occupancy = boss.get(f"/occupancy?site={HOME}").text
    assert re.search(r'data-zone="staff-area" data-count="2"', occupancy)
    export = boss.get(f"/log/export.csv?site={BRANCH}").text.lstrip("\ufeff").splitlines()
    assert export[0].endswith(",site")
    assert {line.rsplit(",", 1)[1] for line in export[1:]} == {BRANCH}


def test_a_site_the_log_lacks_is_answered_400_naming_the_sites(url: str) -> None:
    guard = client(url, "guard1")
    for path in ("/muster", "/log", "/alarms", "/occupancy"):
        reply = guard.get(f"{path}?site=zushi")
        assert reply.status == 400, path
        assert "site: " in reply.text
        assert f"{BRANCH}, {HOME}" in reply.text


@pytest.mark.parametrize("user", ["guard1", "ops", "boss"])
def test_every_role_sees_which_sites_are_cut_off_and_how_far_behind(url: str, user: str) -> None:
    reply = client(url, user).get("/sites")
    assert reply.status == 200
    assert 'href="/sites"' in reply.text
    row = re.search(
        rf'<tr data-site="{BRANCH}" data-connected="0" class="alarm-raised">.*?</tr>',
        reply.text,
        re.S,
    )
    assert row is not None
    assert '<td class="stored">42</td>' in row.group(0)
    assert '<td class="behind">35 min</td>' in row.group(0)
    assert '<td class="online">0/1</td>' in row.group(0)
    home = re.search(rf'<tr data-site="{HOME}" data-connected="unknown">.*?</tr>', reply.text, re.S)
    assert home is not None
    assert '<td class="online">1/1</td>' in home.group(0)


def test_without_a_session_the_sites_page_asks_for_a_login(url: str) -> None:
    reply = Client(url).get("/sites")
    assert reply.status == 303
    assert reply.headers["location"].endswith("/login")


def test_a_guard_acknowledges_one_sites_alarm(url: str) -> None:
    guard = client(url, "guard1")
    rows = guard.get(f"/alarms/rows?site={BRANCH}").text
    found = re.search(r'<tr class="alarm-raised" data-key="([^"]+)"', rows)
    assert found is not None, rows
    reply = guard.post("/alarms/ack", {"key": found.group(1), "csrf": guard.csrf("/alarms")})
    assert reply.status == 303
    after = guard.get("/alarms/rows").text
    shown = re.findall(
        r'class="alarm-raised( acked)?" data-key="[^"]+" data-type="door_forced" '
        r'data-device="([^"]+)"',
        after,
    )
    assert shown == [(" acked", "gate-h1"), ("", "gate-1")]  # the home site's still waits


def test_a_guard_picks_a_site_in_the_browser_and_prints_its_roll_call(
    url: str, browser: Browser
) -> None:
    page = browser.new_context(locale="ja-JP").new_page()
    page.goto(f"{url}/login")
    page.fill("input[name=username]", "guard1")
    page.fill("input[name=password]", PASSWORDS["guard1"])
    page.click("button[type=submit]")
    page.goto(f"{url}/muster")
    assert page.locator("section.site").count() == 2
    page.select_option("select#site", BRANCH)
    page.click("form.site-filter button[type=submit]")
    page.wait_for_url(f"**/muster?site={BRANCH}")
    assert page.locator("section.site").get_attribute("data-site") == BRANCH
    assert page.locator("#total").inner_text() == "1"
    assert page.locator("tr[data-staff]").all_inner_texts()[0].startswith("相模 一郎 (K10001)")
    assert page.locator("select#site").input_value() == BRANCH
    page.context.close()


def test_the_alarm_page_says_first_which_sites_alarms_are_not_arriving(url: str) -> None:
    guard = client(url, "guard1")
    rows = guard.get("/alarms/rows").text
    banner = re.search(r'<tr class="alarm-raised site-cut" data-site="([^"]+)">(.*?)</tr>', rows)
    assert banner is not None, rows
    assert banner.group(1) == BRANCH
    assert "センターとの接続が切れています" in banner.group(2)
    assert "35 min" in banner.group(2)
    assert "site-cut" not in guard.get(f"/alarms/rows?site={HOME}").text


def test_a_log_of_presence_reports_alone_shows_its_zones(tmp_path: Path) -> None:
    """No device has sent an event or a status yet, only its zones' occupancy."""
    target = tmp_path / "log.db"
    log = open_log(target)
    log.set_occupancy("booth-3f", "booth-1", 0, True, "2026-11-26T08:00:00.000Z")
    add_user(log, "ops", "operator", PASSWORDS["ops"], by="test")
    log.close()
    settings = Settings(target, None, tmp_path / "session.key", secure_cookies=False)
    with serve(create_app(settings)) as served:
        shown = client(served, "ops").get("/occupancy").text
    assert 'data-zone="booth-1"' in shown
