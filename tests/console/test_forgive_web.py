"""The "Forgive anti-passback" button on a live building, in headless Chromium.

Real parts: edge-provision, mosquitto with the generated ACL, one agent process per device
(the gates share the staff area's crossings), the collector, uvicorn, Debian's chromium. A
card inside is refused at the other gate; a manager finds the person in the roll call,
forgives the card in the staff area, sees each gate accept, and the card is let in again.
A guard sees no button, and a POST of theirs is refused and audited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, expect

from console.people import Directory
from simulator.staff import Person
from tests.console.doors_site import DoorsSite, doors_site
from tests.console.test_forgive_live import walk_in
from tests.console.web_fixtures import Client, login

pytestmark = pytest.mark.services
ACTION = "apb.forgive"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DoorsSite]:
    # debug: the gates log each peer crossing they apply, which the test waits for
    tmp = tmp_path_factory.mktemp("forgive-web")
    with doors_site(tmp, log_level="debug", debounce_s=0.0) as live:
        yield live


@pytest.fixture(scope="module")
def held(site: DoorsSite) -> Person:
    """A security guard's card (let in at any hour), inside, refused at the other gate."""
    staff = next(p for p in site.people if "security" in p.groups and not p.case)
    assert walk_in(site, "gate-1f-east", staff)["decision"] == "granted"
    west = site.agents["gate-1f-west"]
    assert west.request(op="wait_log", text="peer crossing gate-1f-east:", timeout=20)["ok"]
    refused = site.tap("gate-1f-west-in", staff)
    assert (refused["decision"], refused["reason"]) == ("denied", "anti_passback")
    return staff


def test_a_guard_gets_no_button_and_a_refused_post(site: DoorsSite, held: Person) -> None:
    ref = Directory(site.site_dir / "registry.db").refs_for(held.staff_no)[0]
    guard = Client(site.url)
    guard.login("guard1")
    cards = guard.get(f"/cards?who={held.staff_no}").text
    assert f'data-card="{ref[:12]}"' in cards  # the person is found ...
    assert 'data-action="forgive"' not in cards  # ... with no button
    assert 'data-action="forgive"' not in guard.get("/muster").text
    assert guard.get(f"/cards/forgive?card={ref[:12]}").status == 403
    token = guard.csrf("/cards")
    refused = guard.post("/cards/forgive", {"card": ref[:12], "zone": "", "csrf": token})
    assert refused.status == 403
    assert site.audit_rows(ACTION) == []
    assert any(u == "guard1" for u, _ in site.audit_rows(f"{ACTION} refused"))
    assert site.tap("gate-1f-west-in", held)["reason"] == "anti_passback"  # nothing was sent


def test_a_manager_forgives_from_the_roll_call_and_the_card_enters_again(
    site: DoorsSite, browser: Browser, held: Person
) -> None:
    ref = Directory(site.site_dir / "registry.db").refs_for(held.staff_no)[0]
    page = login(browser, site, "boss")  # type: ignore[arg-type]  # login needs only .url
    page.goto(f"{site.url}/muster")
    button = page.locator(f'tr[data-staff="{held.staff_no}"] a[data-action="forgive"]')
    expect(button).to_be_visible(timeout=10_000)  # the collector has the crossing
    button.click()
    expect(page.locator("#whose")).to_contain_text(held.staff_no)
    expect(page.locator("#whose")).to_contain_text(ref[:12])
    assert site.audit_rows(ACTION) == []  # asked first: nothing sent yet
    page.select_option("#zone", "staff-area")
    page.click("#confirm")
    for gate in ("gate-1f-east", "gate-1f-west"):
        selector = f'#result li[data-device="{gate}"][data-result="accepted"]'
        expect(page.locator(selector)).to_be_visible(timeout=10_000)
    expect(page.locator("#result h2")).to_contain_text(f"card {ref[:12]} in staff-area")
    rows = site.audit_rows(ACTION)
    assert ("boss", f"card {ref[:12]} in staff-area: gate-1f-west: accepted") in rows
    assert rows[0][1].startswith(f"card {ref[:12]} in staff-area: sending to ")
    again = walk_in(site, "gate-1f-west", held)
    assert (again["decision"], again["reason"]) == ("granted", "granted")
    # Each gate's record of it reaches the log (the console accepts it from a gate).
    assert recorded(site, ref, {"gate-1f-east", "gate-1f-west"}), site.audit_rows(ACTION)

    page.goto(f"{site.url}/cards?who={held.staff_no}")  # the person's cards: a button too
    expect(page.locator(f'tr[data-card="{ref[:12]}"] a[data-action="forgive"]')).to_have_count(1)


def recorded(site: DoorsSite, ref: str, devices: set[str], timeout_s: float = 10.0) -> bool:
    """Wait until every one of `devices` has its `anti_passback_card_forgiven` in the log."""
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while time.monotonic() < deadline:
        log = site.log()
        try:
            found = {
                str(device)
                for (device,) in log.db.execute(
                    "SELECT device FROM events WHERE type = 'anti_passback_card_forgiven' "
                    "AND card_ref = ?",
                    [ref],
                )
            }
        finally:
            log.close()
        if devices <= found:
            return True
        pause.wait(0.1)  # the collector's next batch
    return False


def test_a_card_or_zone_that_is_not_there_is_named(site: DoorsSite) -> None:
    boss = Client(site.url)
    boss.login("boss")
    token = boss.csrf("/cards")
    unknown = boss.post("/cards/forgive", {"card": "zz12", "zone": "", "csrf": token})
    assert unknown.status == 400
    assert "card: a card is named by the first 4 to 64 hex digits" in unknown.text
    person = next(p for p in site.people if not p.case)
    ref = Directory(site.site_dir / "registry.db").refs_for(person.staff_no)[0]
    vault = boss.post("/cards/forgive", {"card": ref[:12], "zone": "vault", "csrf": token})
    assert vault.status == 400
    assert "no zone &#39;vault&#39; at any door" in vault.text
    forged = boss.post("/cards/forgive", {"card": ref[:12], "zone": "", "csrf": "forged"})
    assert forged.status == 400
    assert not [d for _, d in site.audit_rows(ACTION) if "vault" in d or "zz12" in d]
