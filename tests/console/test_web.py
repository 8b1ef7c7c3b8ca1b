"""The console's web page in headless Chromium, on a live simulated building.

Real parts: mosquitto, the agents, the collector, uvicorn, Debian's chromium (Playwright
with executable_path: no browser download). With EDGE_SCREENSHOTS=1, screenshots of
each page are written to docs/screenshots/ (docs/security-staff.md shows them).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Route, expect
from playwright.sync_api import Error as PlaywrightError

from console.log import CentralLog
from console.users import remove_user
from edge.cardref import card_reference
from simulator.control_channel import send
from simulator.scenario import Scenario

from .web_fixtures import PASSWORDS, LiveSite, live_site, login

SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
DAY = Scenario.model_validate(
    {"date": "2026-12-01", "start": clock(7, 45), "end": clock(9, 15), "seed": 11}
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    with live_site(tmp_path_factory.mktemp("web"), DAY, speed=90) as live:
        yield live


def shot(page: Page, name: str) -> None:
    """Write the page to docs/screenshots/ when asked (EDGE_SCREENSHOTS=1): a test run
    leaves the work tree clean otherwise."""
    if os.environ.get("EDGE_SCREENSHOTS") != "1":
        return
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_a_guard_sees_a_forced_door_live_and_acknowledges_it(
    site: LiveSite, browser: Browser
) -> None:
    page = login(browser, site, "guard1")
    expect(page).to_have_url(f"{site.url}/alarms")
    page.evaluate("window.__not_reloaded = true")
    reply = send(
        site.run_dir, "fault", {"kind": "door_forced", "door": "stair-a-2f", "open_s": 900}
    )
    assert reply["ok"], reply
    row = page.locator("tr[data-type=door_forced][data-device=stair-a-2f]")
    # How fast is bench/console_alarm.py's to measure; here: it arrives without a reload.
    expect(row).to_be_visible(timeout=15_000)
    assert page.evaluate("window.__not_reloaded") is True  # live, not a reload
    expect(row).to_contain_text("扉のこじ開け")  # in Japanese, as a guard reads it
    shot(page, "alarms")
    row.get_by_role("button").click()
    acked = page.locator("tr.acked[data-type=door_forced][data-device=stair-a-2f]")
    expect(acked).to_contain_text("guard1")


def test_a_guard_searches_the_log_and_may_not_export(site: LiveSite, browser: Browser) -> None:
    page = login(browser, site, "guard1")
    # Wait until the console has stored someone's crossing of the line, then look them up.
    crossed = "kind = 'access' AND type = 'crossing' AND door LIKE 'gate-%'"
    assert site.sim.collector.wait_for(lambda log: bool(next(log.entries(crossed), None)), 60)
    ref = next(site.sim.collector.log.entries(crossed)).body["card_ref"]
    by_ref = {
        card_reference(site.sim.card_key, p.technology, p.card_id): p for p in site.sim.people
    }
    someone = by_ref[ref]
    page.goto(f"{site.url}/log?person={someone.staff_no}&result=granted")
    results = page.locator("#results tbody tr")
    expect(results.first).to_contain_text(someone.name)
    assert page.locator("#export").count() == 0  # no export link for a guard
    # Times on the page and in the form are the site's local time (the log keeps UTC).
    shown = datetime.fromisoformat(results.first.locator("td").first.inner_text())
    window = "&since={:%Y-%m-%dT%H:%M}&until={:%Y-%m-%dT%H:%M}"
    base = f"{site.url}/log?person={someone.staff_no}&result=granted"
    page.goto(base + window.format(shown - timedelta(minutes=1), shown + timedelta(minutes=1)))
    expect(results.first).to_contain_text(someone.name)
    page.goto(base + window.format(shown + timedelta(minutes=1), shown + timedelta(minutes=9)))
    expect(results).to_have_count(0)
    shot(page, "log")
    response = page.goto(f"{site.url}/log/export.csv?person={someone.staff_no}")
    assert response is not None
    assert response.status == 403
    expect(page.locator("p.error")).to_be_visible()


def test_the_roll_call_matches_who_is_really_inside(site: LiveSite, browser: Browser) -> None:
    site.wait_for_the_day()  # 09:15: everyone who came in by card is still inside
    page = login(browser, site, "boss")
    page.goto(f"{site.url}/muster")
    truth = set(site.sim.world.truth.inside)
    assert truth
    shown = set(
        page.locator("tr[data-staff]").evaluate_all("rows => rows.map(r => r.dataset.staff)")
    )
    assert shown == truth
    assert page.locator("#total").inner_text() == str(len(truth))
    shot(page, "muster")


def test_a_manager_exports_and_it_is_audited(site: LiveSite, browser: Browser) -> None:
    site.wait_for_the_day()
    page = login(browser, site, "boss")
    page.goto(f"{site.url}/log?result=denied")
    with page.expect_download() as download:
        page.click("#export")
    text = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert text.startswith("ts,device,id,kind,type,door,reason,staff_no,name")
    page.goto(f"{site.url}/audit")
    expect(page.locator("table")).to_contain_text("export")
    expect(page.locator("table")).to_contain_text("alarm acknowledged")
    shot(page, "audit")
    page.goto(f"{site.url}/occupancy")
    expect(page.locator(".zone").first).to_be_visible()
    shot(page, "occupancy")


def test_an_operator_sees_devices_but_not_the_roll_call(site: LiveSite, browser: Browser) -> None:
    page = login(browser, site, "ops")
    expect(page).to_have_url(f"{site.url}/devices")
    expect(page.locator("tr[data-device]")).to_have_count(len(site.sim.agents))
    shot(page, "devices")
    response = page.goto(f"{site.url}/muster")
    assert response is not None
    assert response.status == 403


def test_a_wrong_password_and_a_missing_csrf_token_are_refused(
    site: LiveSite, browser: Browser
) -> None:
    page = browser.new_context().new_page()
    page.goto(f"{site.url}/login")
    page.fill("input[name=username]", "guard1")
    page.fill("input[name=password]", "not-the-password")
    page.click("button[type=submit]")
    expect(page.locator("p.error")).to_be_visible()
    posted = page.request.post(
        f"{site.url}/login",
        form={"username": "guard1", "password": PASSWORDS["guard1"], "csrf": "forged"},
    )
    assert posted.status == 400
    response = page.goto(f"{site.url}/alarms")
    assert response is not None
    assert page.url.endswith("/login")  # still not logged in


def test_repeated_wrong_passwords_lock_the_name_for_a_while(
    site: LiveSite, browser: Browser
) -> None:
    page = browser.new_context().new_page()
    for _ in range(5):
        page.goto(f"{site.url}/login")
        page.fill("input[name=username]", "guard9")
        page.fill("input[name=password]", "a wrong guess")
        page.click("button[type=submit]")
        expect(page.locator("p.error")).to_be_visible()
    page.goto(f"{site.url}/login")
    page.fill("input[name=username]", "guard9")
    page.fill("input[name=password]", PASSWORDS["guard9"])  # right, but too late
    page.click("button[type=submit]")
    expect(page.locator("#locked")).to_be_visible()
    assert page.url.endswith("/login")
    other = login(browser, site, "guard1")  # another name is not affected
    expect(other).to_have_url(f"{site.url}/alarms")


def test_a_cookie_replayed_after_logout_is_refused(site: LiveSite, browser: Browser) -> None:
    page = login(browser, site, "guard1")
    expect(page).to_have_url(f"{site.url}/alarms")
    kept = page.context.cookies()
    page.get_by_role("button", name="ログアウト").click()
    expect(page).to_have_url(f"{site.url}/login")
    thief = browser.new_context()
    thief.add_cookies(kept)  # type: ignore[arg-type]  # Cookie and SetCookieParam differ in name only
    stolen = thief.new_page()
    stolen.goto(f"{site.url}/alarms")
    expect(stolen).to_have_url(f"{site.url}/login")


def test_a_guard_removed_while_watching_the_alarms_is_sent_to_log_in(
    site: LiveSite, browser: Browser
) -> None:
    page = login(browser, site, "guard7")
    expect(page).to_have_url(f"{site.url}/alarms")
    log = CentralLog(site.run_dir / "console" / "log.db")
    try:
        remove_user(log, "guard7", by="test")
    finally:
        log.close()
    # The live stream re-checks its session and tells the page, which shows the login page.
    expect(page).to_have_url(f"{site.url}/login", timeout=5000)


def test_a_guard_removed_before_the_live_stream_connects_is_sent_to_log_in(
    site: LiveSite, browser: Browser
) -> None:
    context = browser.new_context(locale="ja-JP")

    def remove_then_connect(route: Route) -> None:
        log = CentralLog(site.run_dir / "console" / "log.db")
        try:
            remove_user(log, "guard8", by="test")
        finally:
            log.close()
        route.continue_()  # the stream is refused (the session is gone), not a live stream

    context.route("**/alarms/stream", remove_then_connect)
    page = context.new_page()
    page.goto(f"{site.url}/login")
    page.fill("input[name=username]", "guard8")
    page.fill("input[name=password]", PASSWORDS["guard8"])
    page.click("button[type=submit]")
    expect(page).to_have_url(f"{site.url}/login", timeout=5000)
    context.close()


def test_a_password_changed_on_its_page_ends_the_other_sessions(
    site: LiveSite, browser: Browser
) -> None:
    here, elsewhere = login(browser, site, "guard5"), login(browser, site, "guard5")
    expect(elsewhere).to_have_url(f"{site.url}/alarms")
    here.click("#me")
    expect(here).to_have_url(f"{site.url}/password")
    here.fill("input[name=current_password]", PASSWORDS["guard5"])
    here.fill("input[name=new_password]", "a new password for guard5")
    here.fill("input[name=repeat_password]", "a new password for guard5")
    here.get_by_role("button", name="パスワード変更").click()
    expect(here.locator("#changed")).to_be_visible()
    here.goto(f"{site.url}/alarms")
    expect(here).to_have_url(f"{site.url}/alarms")  # this session goes on
    # Its live alarm page may go to the login page by itself first: also right.
    with contextlib.suppress(PlaywrightError):
        elsewhere.goto(f"{site.url}/log")
    expect(elsewhere).to_have_url(f"{site.url}/login")  # the other one has ended
