"""The doors page and `edge-console door|lockdown|fire-reset` on a live building.

Real parts: edge-provision, mosquitto with the generated ACL, one agent process per device
(on simulated hardware, real clock), the collector, uvicorn, Debian's chromium. Each
action goes from the page (or the CLI) through the broker to the agents and back.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from simulator.staff import Person
from tests.console.doors_site import DoorsSite, doors_site
from tests.console.web_fixtures import Client, login

pytestmark = pytest.mark.services
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"


def shot(page: Page, name: str) -> None:
    """Write the page to docs/screenshots/ when asked (EDGE_SCREENSHOTS=1)."""
    if os.environ.get("EDGE_SCREENSHOTS") == "1":
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DoorsSite]:
    with doors_site(tmp_path_factory.mktemp("doors"), timeout_s=3.0) as live:
        yield live


def doors_page(browser: Browser, site: DoorsSite, user: str) -> Page:
    page = login(browser, site, user)  # type: ignore[arg-type]  # login needs only .url
    page.goto(f"{site.url}/doors")
    return page


def row(page: Page, door: str) -> str:
    return f'#door-rows tr[data-door="{door}"]'


def outcome(page: Page, device: str, result: str) -> None:
    selector = f'#result li[data-device="{device}"][data-result="{result}"]'
    expect(page.locator(selector)).to_be_visible(timeout=10_000)


def person(site: DoorsSite, group: str) -> Person:
    return next(
        p
        for p in site.people
        if group in p.groups and not p.case and ("security" not in p.groups or group == "security")
    )


def test_a_guard_unlocks_a_stairway_door_once_and_it_relocks(
    site: DoorsSite, browser: Browser
) -> None:
    page = doors_page(browser, site, "guard1")
    expect(page.locator(row(page, "stair-a-2f"))).to_have_attribute("data-lock", "locked")
    site.relays("stair-a-2f", "stair-a-2f")  # forget the read-back so far
    page.click(f'{row(page, "stair-a-2f")} button[data-action="unlock"]')
    outcome(page, "stair-a-2f", "accepted")
    live = page.locator(row(page, "stair-a-2f"))
    expect(live).to_have_attribute("data-lock", "unlocked", timeout=5_000)
    expect(live).to_have_attribute("data-lock", "locked", timeout=15_000)  # unlock_s = 5
    assert site.relays("stair-a-2f", "stair-a-2f") == [True, False]  # released, relocked
    assert ("guard1", "stair-a-2f: stair-a-2f: accepted") in site.audit_rows("door.unlock")
    # a guard may not hold a door open: no button for it
    expect(page.locator(f'{row(page, "stair-a-2f")} button[data-action="hold"]')).to_have_count(0)


def test_a_manager_locks_the_gates_down_override_cards_pass_then_lifts_it(
    site: DoorsSite, browser: Browser
) -> None:
    staff, guard = person(site, "staff"), person(site, "security")
    page = doors_page(browser, site, "boss")
    page.check('#lockdown input[name="zone"][value="staff-area"]')
    page.click("#lockdown-on")
    devices = page.locator("#devices li")
    expect(devices).to_have_text(["gate-1f-east", "gate-1f-west"])  # asked first
    assert not site.audit_rows("lockdown")  # nothing sent before the confirmation
    page.click("#confirm")
    outcome(page, "gate-1f-east", "accepted")
    outcome(page, "gate-1f-west", "accepted")
    for gate in ("gate-1f-east", "gate-1f-west"):
        expect(page.locator(row(page, gate))).to_have_attribute("data-mode", "lockdown")
    expect(page.locator(row(page, "stair-a-1f"))).to_have_attribute("data-mode", "normal")

    denied = site.tap("gate-1f-west-in", staff)
    assert (denied["decision"], denied["reason"]) == ("denied", "lockdown")
    granted = site.tap("gate-1f-west-in", guard)
    assert granted["decision"] == "granted", granted

    page.goto(f"{site.url}/doors")
    page.check('#lockdown input[name="zone"][value="staff-area"]')
    page.click("#lockdown-off")
    page.click("#confirm")
    outcome(page, "gate-1f-west", "accepted")
    for gate in ("gate-1f-east", "gate-1f-west"):
        expect(page.locator(row(page, gate))).to_have_attribute("data-mode", "normal")
    # The other gate's reader: the west one would take a second tap of the same card within
    # its debounce (1.5 s) for the one it just denied, and count nothing.
    lifted = site.tap("gate-1f-east-in", staff)
    assert lifted["counted"] is True, lifted
    assert lifted["reason"] != "lockdown", lifted  # (the staff's own schedule still applies)
    rows = site.audit_rows("lockdown")
    assert ("boss", "lockdown on: zone staff-area: gate-1f-east: accepted") in rows
    assert ("boss", "lockdown off: zone staff-area: gate-1f-west: accepted") in rows


def test_a_fire_reset_is_refused_while_the_fire_input_is_active(
    site: DoorsSite, browser: Browser
) -> None:
    stairs = site.agents["stair-a-1f"]
    stairs.request(op="fire", door="stair-a-1f", on=True)
    page = doors_page(browser, site, "boss")
    live = page.locator(row(page, "stair-a-1f"))
    expect(live).to_have_attribute("data-mode", "fire_release", timeout=10_000)
    live.locator('button[data-action="fire-reset"]').click()
    outcome(page, "stair-a-1f", "refused")
    expect(page.locator("#result .reason")).to_contain_text("fire input is still active")
    shot(page, "doors")

    cli = site.cli("fire-reset", "--door", "stair-a-1f", user="boss")
    assert cli.exit_code == 1, cli.output
    assert "stair-a-1f: refused: the fire input is still active (stair-a-1f)" in cli.stdout

    stairs.request(op="fire", door="stair-a-1f", on=False)
    page.goto(f"{site.url}/doors")
    live = page.locator(row(page, "stair-a-1f"))
    live.locator('button[data-action="fire-reset"]').click()
    outcome(page, "stair-a-1f", "accepted")
    expect(page.locator(row(page, "stair-a-1f"))).to_have_attribute(
        "data-mode", "normal", timeout=10_000
    )
    rows = site.audit_rows("door.fire_reset")
    assert any(u == "boss" and "refused: the fire input is still active" in d for u, d in rows)
    assert ("boss", "stair-a-1f: stair-a-1f: accepted") in rows


def test_a_guard_cannot_lock_down_and_an_operator_cannot_unlock(site: DoorsSite) -> None:
    guard = Client(site.url)
    guard.login("guard1")
    token = guard.csrf("/doors")
    refused = guard.post("/doors/lockdown/confirm", {"on": "on", "csrf": token})
    assert refused.status == 403
    assert any(u == "guard1" for u, _ in site.audit_rows("lockdown refused"))

    operator = Client(site.url)
    operator.login("ops")
    token = operator.csrf("/password")
    assert operator.post("/doors/stair-a-2f/unlock", {"csrf": token}).status == 403
    cli = site.cli("door", "unlock", "stair-a-2f", user="ops")
    assert cli.exit_code == 2
    assert "a operator may not do this" in cli.stderr or "operator may not" in cli.stderr
    assert not [r for r in site.audit_rows("door.unlock") if r[0] == "ops"]


def test_a_device_that_is_off_is_named_as_not_answering(
    site: DoorsSite, browser: Browser, tmp_path: Path
) -> None:
    site.agents["stair-a-2f"].kill()  # a power cut: no goodbye
    page = doors_page(browser, site, "guard1")
    page.click(f'{row(page, "stair-a-2f")} button[data-action="unlock"]')
    outcome(page, "stair-a-2f", "no_answer")
    cli = site.cli("door", "unlock", "stair-a-2f", user="guard1", timeout_s=1)
    assert cli.exit_code == 1
    assert "stair-a-2f: no answer" in cli.stdout
    assert "not done on stair-a-2f" in cli.stderr
    assert ("guard1", "stair-a-2f: stair-a-2f: no answer") in site.audit_rows("door.unlock")
