"""The security desk on a live simulated building: lost cards and day passes.

Real parts: mosquitto, one agent process per device, the console's collector, uvicorn
serving the app with the site directory and the broker, Debian's chromium (Playwright),
`edge-console` as a separate process. The console judges time by the simulation's clock,
which the agents share: a pass's end is reached by the day going on, not by sleeping.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect

from console.log import CentralLog
from console.users import add_user, audit_trail
from console.web import Settings, create_app
from console.web_context import BrokerAccess
from edge.keys import read_card_key
from provisioning.keys import SiteKeys
from provisioning.passes import add_spare, spare_ref
from provisioning.registry import Registry
from simulator.building import load_building
from simulator.control_channel import send
from simulator.run import Simulation
from simulator.scenario import Scenario
from simulator.staff import Person
from tests.simulator.city import SMALL, play_in_thread

from .commands import edge_console
from .test_web import shot
from .web_fixtures import CHROMIUM, PASSWORDS, ROLES, Client, login, serve

# mosquitto, agents, uvicorn, chromium; the last test also waits for the day to end
pytestmark = [pytest.mark.services, pytest.mark.timeout(300)]

DAY = Scenario.model_validate(
    {"date": "2026-12-01", "start": clock(7, 45), "end": clock(9, 0), "seed": 23}
)
SPEED = 60.0
SPARE = "0114A1B2C3D4E5AA"  # the desk's spare card 07 (no one's own card)
TOKYO = ZoneInfo("Asia/Tokyo")


@dataclass
class DeskSite:
    """A simulated day being played, and the console serving the desk on it."""

    sim: Simulation
    url: str
    run_dir: Path

    def now(self) -> datetime:
        """The simulated time (the agents' and the console's)."""
        return self.sim.start + timedelta(seconds=self.sim.engine.now)

    def wait_until(self, moment: datetime, timeout_s: float = 60) -> bool:
        """Wait (on the collector's stored batches) until the simulated time reaches `moment`."""
        return self.sim.collector.wait_for(lambda _: self.now() >= moment, timeout_s)

    def tap(self, door: str, direction: str, **card: str) -> dict[str, Any]:
        """Tap a card; a read the reader did not count (someone else's card on it at that
        moment, the same card within its debounce) is tapped again, as a person would."""
        for _ in range(5):
            reply = send(self.run_dir, "tap", {"door": door, "direction": direction, **card})
            assert reply["ok"], reply
            if reply["decision"] is not None:
                break
        return reply

    def passes(self, door: str, **card: str) -> dict[str, Any]:
        """Tap in, or out when anti-passback says the card is inside; return the answer."""
        reply = self.tap(door, "in", **card)
        if reply["reason"] == "anti_passback":
            reply = self.tap(door, "out", **card)
        return reply


def add_spare_card(site_dir: Path, number: str, card: str) -> None:
    """Register a spare card as `passes add-spare` does with the id keyed."""
    registry = Registry(site_dir / "registry.db")
    try:
        key = read_card_key(SiteKeys(site_dir / "keys").card_key)
        add_spare(registry, number, *spare_ref(key, card), actor="operator")
    finally:
        registry.close()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DeskSite]:
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed; ./check installs it (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp("desk")
    run_dir = tmp / "run"
    run_dir.mkdir()
    sim = Simulation(load_building(SMALL), DAY, run_dir, speed=SPEED)
    player = play_in_thread(sim)
    try:
        assert player.ready.wait(120)
        assert not player.errors, player.errors
        site_dir = run_dir / "site"
        add_spare_card(site_dir, "07", f"felica:{SPARE}")
        log_path = run_dir / "console" / "log.db"
        log = CentralLog(log_path)
        for user, password in PASSWORDS.items():
            add_user(log, user, ROLES[user], password, by="test")
        log.close()
        live = DeskSite(sim, "", run_dir)
        settings = Settings(
            log_path,
            site_dir / "registry.db",
            tmp / "console-session.key",
            secure_cookies=False,
            clock=lambda: live.now().timestamp(),
            idle_s=30 * 24 * 3600,  # sessions judged by the fast simulated clock
            lifetime_s=30 * 24 * 3600,
            site_dir=site_dir,
            broker=BrokerAccess("127.0.0.1", sim.broker.port, sim.building.spec.site, "console"),
        )
        with serve(create_app(settings)) as url:
            live.url = url
            yield live
    finally:
        player.thread.join(600)
        sim.close()


def staff_member(site: DeskSite, n: int) -> Person:
    """The n-th member of staff with an ordinary card who may use the gates."""
    ordinary = [
        p
        for p in site.sim.people
        if not p.case and p.profile == "uid" and "staff" in p.groups and "security" not in p.groups
    ]
    return ordinary[n]


def card_of(person: Person) -> dict[str, str]:
    return {"staff_no": person.staff_no}


def act_on_card(page: Page, site: DeskSite, person: Person, action: str) -> None:
    """Find the person, press `action` on their card, confirm; return once it is applied."""
    page.goto(f"{site.url}/cards?who={person.staff_no}")
    page.click(f"section[data-staff='{person.staff_no}'] a[data-action={action}]")
    expect(page.locator("#question")).to_be_visible()
    page.click("#confirm")
    expect(page.locator("#applied")).to_contain_text("applied on")


def test_wrong_roles_and_bad_rows_are_refused(site: DeskSite) -> None:
    guard, ops = Client(site.url), Client(site.url)
    guard.login("guard1")
    ops.login("ops")
    person = staff_member(site, 2)
    csrf = guard.csrf("/cards")
    # A guard may not revoke; an operator may not even mark a card lost.
    assert guard.get(f"/cards/revoke?staff_no={person.staff_no}").status == 403
    form = {"staff_no": person.staff_no, "csrf": csrf}
    assert guard.post("/cards/revoke", form).status == 403
    assert ops.post("/cards/lost", {**form, "csrf": ops.csrf("/password")}).status == 403
    assert ops.get("/passes").status == 403
    # Bad rows: each a 400 naming the field.
    unknown = guard.post("/cards/lost", {"staff_no": "NOBODY-1", "csrf": csrf})
    assert unknown.status == 400
    assert "staff_no: no staff" in unknown.text
    no_token = guard.post("/cards/lost", {"staff_no": person.staff_no, "csrf": "forged"})
    assert no_token.status == 400
    past = (site.now() - timedelta(minutes=5)).astimezone(TOKYO).strftime("%H:%M")
    issue = {"staff_no": person.staff_no, "spare": "07", "until": past, "csrf": csrf}
    in_the_past = guard.post("/passes/issue", issue)
    assert in_the_past.status == 400
    assert "until:" in in_the_past.text
    assert "not in the future" in in_the_past.text
    bad_time = guard.post("/passes/issue", {**issue, "until": "25:99"})
    assert (bad_time.status, "until:" in bad_time.text) == (400, True)
    no_spare = guard.post("/passes/issue", {**issue, "spare": "99", "until": ""})
    assert (no_spare.status, "spare: no spare card 99" in no_spare.text) == (400, True)
    who = guard.post("/passes/issue", {**issue, "staff_no": "NOBODY-1", "until": ""})
    assert (who.status, "staff_no:" in who.text) == (400, True)
    # From the terminal: a guard's revoke is refused (exit 2) and audited.
    password = site.run_dir / "guard1.password"
    password.write_text(PASSWORDS["guard1"])
    refused = edge_console(
        "card",
        "revoke",
        "--staff-no",
        person.staff_no,
        *cli_options(site, "guard1", password),
    )
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "card.revoke refused: a guard may not do this; ask a manager" in refused.stderr
    nobody = edge_console(
        "card", "lost", "--staff-no", "NOBODY-1", *cli_options(site, "guard1", password)
    )
    assert nobody.returncode == 2, nobody.stdout + nobody.stderr
    assert "card.lost refused (staff-no): no staff 'NOBODY-1'" in nobody.stderr
    rows = audit_trail(site.sim.collector.log)
    assert any(r[1] == "guard1" and r[2] == "card.revoke refused" for r in rows)
    assert any(r[1] == "ops" and r[2] == "card.lost refused" for r in rows)


def cli_options(site: DeskSite, user: str, password: Path) -> list[str]:
    return [
        "--user",
        user,
        "--password-file",
        str(password),
        "--db",
        str(site.run_dir / "console" / "log.db"),
        "--site-dir",
        str(site.run_dir / "site"),
        "--broker-host",
        "127.0.0.1",
        "--broker-port",
        str(site.sim.broker.port),
    ]


def test_a_card_marked_lost_is_denied_at_its_next_tap_and_reinstated(
    site: DeskSite, browser: Browser
) -> None:
    person = staff_member(site, 0)
    gate = person.gate
    assert site.passes(gate, **card_of(person))["decision"] == "granted"
    page = login(browser, site, "guard1")  # type: ignore[arg-type]
    act_on_card(page, site, person, "lost")
    assert "applied on 8 of 8 devices" in page.locator("#applied").inner_text()
    reply = site.tap(gate, "in", **card_of(person))
    assert reply["reason"] == "revoked"  # marked on the page -> denied at its next tap
    page.goto(f"{site.url}/alarms")
    row = page.locator(f"tr[data-type=lost_card_used][data-device={gate}]")
    expect(row).to_be_visible(timeout=10_000)
    # A guard may not revoke: the page offers no such button.
    page.goto(f"{site.url}/cards?who={person.staff_no}")
    assert page.locator("a[data-action=revoke]").count() == 0
    shot(page, "cards")
    act_on_card(page, site, person, "reinstate")
    assert site.passes(gate, **card_of(person))["decision"] == "granted"
    rows = [r for r in audit_trail(site.sim.collector.log) if r[1] == "guard1"]
    actions = {r[2]: r[3] for r in rows}
    assert f"staff {person.staff_no}: card" in actions["card.lost"]
    assert "applied on 8 of 8 devices" in actions["card.lost"]
    assert "card.reinstate" in actions


def test_a_day_pass_opens_its_persons_doors_until_its_end_and_a_return_stops_it(
    site: DeskSite, browser: Browser
) -> None:
    person = staff_member(site, 1)
    spare = {"technology": "felica", "id": SPARE}
    assert site.tap(person.gate, "in", **spare)["reason"] == "unknown_card"
    page = login(browser, site, "guard1")  # type: ignore[arg-type]
    end = (site.now() + timedelta(minutes=5)).astimezone(TOKYO).replace(second=0, microsecond=0)
    issue_pass(page, site, person, end.strftime("%H:%M"))
    assert site.passes(person.gate, **spare)["decision"] == "granted"
    assert site.wait_until(end)
    assert site.tap(person.gate, "out", **spare)["reason"] == "expired"
    page.goto(f"{site.url}/passes")
    expect(page.locator("#passes tr[data-spare='07']").first).to_have_attribute(
        "data-state", "expired"
    )
    # Again until the end of the day; the return stops it at every door.
    issue_pass(page, site, person, "")
    assert site.passes(person.gate, **spare)["decision"] == "granted"
    page.goto(f"{site.url}/passes")
    shot(page, "passes")
    page.locator("#passes tr[data-state=live] button").click()
    expect(page.locator("#applied")).to_contain_text("applied on")
    assert site.tap(person.gate, "in", **spare)["reason"] == "unknown_card"
    page.goto(f"{site.url}/passes")
    states = page.locator("#passes tr[data-spare='07']").evaluate_all(
        "rows => rows.map(r => r.dataset.state)"
    )
    assert states[:2] == ["returned", "returned"]  # the expired one closed on re-issue
    listed = edge_console("pass", "list", "--site-dir", str(site.run_dir / "site"))
    assert listed.returncode == 0, listed.stderr
    assert f"07     {person.staff_no}" in listed.stdout
    assert "returned" in listed.stdout
    rows = [r for r in audit_trail(site.sim.collector.log) if r[1] == "guard1"]
    assert sum(r[2] == "pass.issue" for r in rows) == 2
    assert sum(r[2] == "pass.return" for r in rows) == 1


def issue_pass(page: Page, site: DeskSite, person: Person, until: str) -> None:
    page.goto(f"{site.url}/passes")
    page.fill("#issue input[name=staff_no]", person.staff_no)
    page.fill("#issue input[name=spare]", "07")
    page.fill("#issue input[name=until]", until)
    page.click("#issue button")
    expect(page.locator("#applied")).to_contain_text("applied on")


def test_a_device_that_is_down_is_named_as_not_having_applied(
    site: DeskSite, browser: Browser
) -> None:
    assert send(
        site.run_dir, "fault", {"kind": "power_cut", "device": "stair-a-2f", "minutes": 60}
    )["ok"]
    person = staff_member(site, 3)
    password = site.run_dir / "boss.password"
    password.write_text(PASSWORDS["boss"])
    result = edge_console(
        "card",
        "lost",
        "--staff-no",
        person.staff_no,
        "--timeout-s",
        "3",
        *cli_options(site, "boss", password),
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "applied on 7 of 8 devices; not yet on stair-a-2f" in result.stdout
    assert "not applied within 3 s on: stair-a-2f" in result.stderr
    page = login(browser, site, "boss")  # type: ignore[arg-type]
    act_on_card(page, site, person, "revoke")
    expect(page.locator("#applied")).to_contain_text("7 of 8 devices; not yet on stair-a-2f")
    manager = [r for r in audit_trail(site.sim.collector.log) if r[1] == "boss"]
    assert any(r[2] == "card.revoke" and "not yet on stair-a-2f" in r[3] for r in manager)
    # A revoked card is a manager's to reinstate, not a guard's.
    guard = Client(site.url)
    guard.login("guard1")
    form = {"staff_no": person.staff_no, "csrf": guard.csrf("/cards")}
    refused = guard.post("/cards/reinstate", form)
    assert refused.status == 400
    assert "only a manager may reinstate a revoked card" in refused.text
