"""Who may do what to the doors: every (role, action) cell of ACTIONS, on the page and the CLI.

Real parts: edge-provision, mosquitto with the generated ACL, uvicorn, the CLI; no agent
runs, so an allowed action is sent and comes back `no answer` (exit 1), and a refused one is
a 403 page (exit 2) with nothing sent.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.users import ACTIONS, ROLES, may_act
from console.web import Settings, create_app
from simulator.broker import free_port
from tests.console.doors_site import DoorsSite, doors_site
from tests.console.web_fixtures import Client, serve

pytestmark = pytest.mark.services

USER = {"guard": "guard1", "manager": "boss", "operator": "ops"}
DOOR = "stair-a-1f"
# The page's form and the command line of each door action.
ROUTES: dict[str, tuple[str, dict[str, str], list[str]]] = {
    "door.unlock": (f"/doors/{DOOR}/unlock", {}, ["door", "unlock", DOOR]),
    "door.alarm_reset": (f"/doors/{DOOR}/reset", {}, ["door", "reset", DOOR]),
    "door.hold": (f"/doors/{DOOR}/hold", {}, ["door", "hold", DOOR]),
    "door.normal": (f"/doors/{DOOR}/normal", {}, ["door", "normal", DOOR]),
    "door.fire_reset": ("/doors/fire-reset", {"door": DOOR}, ["fire-reset", "--door", DOOR]),
    "lockdown": (
        "/doors/lockdown/confirm",
        {"on": "on", "door": DOOR},
        ["lockdown", "on", "--door", DOOR, "--yes"],
    ),
}
CELLS = [(role, action) for action in ROUTES for role in ROLES]


def details(action: str) -> list[str]:
    """Return the audit details of an action sent to a device that did not answer."""
    target = f"lockdown on: door {DOOR}" if action == "lockdown" else DOOR
    return [f"{target}: sending to {DOOR}", f"{target}: {DOOR}: no answer"]


def test_every_door_action_has_a_route_and_a_command() -> None:
    assert {a for a in ACTIONS if a.startswith("door.") or a == "lockdown"} == set(ROUTES)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DoorsSite]:
    with doors_site(tmp_path_factory.mktemp("roles"), agents=False, timeout_s=0.5) as live:
        yield live


def finished(client: Client, location: str) -> str:
    """Follow an action's redirect and ask for its outcome until it is done; return it."""
    assert location.startswith("/doors?job=")
    job = location.removeprefix("/doors?job=")
    seen = 0
    for _ in range(20):  # each answer waits for the next device or the end (<= 10 s)
        shown = client.get(f"/doors/jobs/{job}?seen={seen}").text
        if 'data-done="yes"' in shown:
            return shown
        seen = int(re.search(r'data-seen="(\d+)"', shown).group(1))  # type: ignore[union-attr]
    raise AssertionError(f"action {job} not done: {shown}")


@pytest.mark.parametrize(("role", "action"), CELLS)
def test_the_page_lets_only_the_roles_of_actions_act(
    site: DoorsSite, role: str, action: str
) -> None:
    client = Client(site.url)
    client.login(USER[role])
    path, form, _ = ROUTES[action]
    before = len(site.audit_rows(action))
    reply = client.post(path, {**form, "csrf": client.csrf("/password")})
    if may_act(role, action):
        assert reply.status == 303, reply.text
        shown = finished(client, reply.headers["location"])
        assert f'data-device="{DOOR}" data-result="no_answer"' in shown
        assert site.audit_rows(action)[before:] == [(USER[role], d) for d in details(action)]
    else:
        assert reply.status == 403
        assert site.audit_rows(action)[before:] == []


@pytest.mark.parametrize(("role", "action"), CELLS)
def test_the_cli_lets_only_the_roles_of_actions_act(
    site: DoorsSite, role: str, action: str
) -> None:
    *_, args = ROUTES[action]
    before = len(site.audit_rows(action))
    result = site.cli(*args, user=USER[role], timeout_s=0.5)
    sent = site.audit_rows(action)[before:]
    if may_act(role, action):
        assert result.exit_code == 1, result.output
        assert f"{DOOR}: no answer" in result.stdout
        assert sent == [(USER[role], d) for d in details(action)]
    else:
        assert result.exit_code == 2, result.output
        assert "may not do this" in result.stderr
        assert sent == []
        assert any(u == USER[role] for u, _ in site.audit_rows(f"{action} refused"))


def test_a_lockdown_is_asked_before_it_is_sent(site: DoorsSite) -> None:
    client = Client(site.url)
    client.login("boss")
    before = len(site.audit_rows("lockdown"))
    asked = client.post(
        "/doors/lockdown", {"on": "on", "zone": "staff-area", "csrf": client.csrf("/doors")}
    )
    assert asked.status == 200
    assert "<li>gate-1f-east</li>" in asked.text
    assert "<li>gate-1f-west</li>" in asked.text
    assert len(site.audit_rows("lockdown")) == before
    declined = site.cli("lockdown", "on", user="boss")  # no --yes, and no one says yes
    assert declined.exit_code == 2
    assert "not confirmed" in declined.stderr
    assert len(site.audit_rows("lockdown")) == before


@pytest.mark.parametrize(
    ("path", "form", "problem"),
    [
        ("/doors/no-such-door/unlock", {}, "no door 'no-such-door'"),
        (f"/doors/{DOOR}/explode", {}, "no door action 'explode'"),
        ("/doors/lockdown", {"on": "maybe"}, "on: use on or off"),
        ("/doors/lockdown", {"on": "on", "zone": "moon"}, "no zone 'moon'"),
        ("/doors/fire-reset", {"door": "nowhere"}, "no door 'nowhere'"),
    ],
)
def test_bad_input_is_a_400_naming_it(
    site: DoorsSite, path: str, form: dict[str, str], problem: str
) -> None:
    client = Client(site.url)
    client.login("boss")
    reply = client.post(path, {**form, "csrf": client.csrf("/doors")})
    assert reply.status == 400
    assert problem in html.unescape(reply.text)


def test_a_form_without_its_token_is_refused(site: DoorsSite) -> None:
    client = Client(site.url)
    client.login("boss")
    before = len(site.audit_rows("door.unlock"))
    assert client.post(f"/doors/{DOOR}/unlock", {"csrf": "forged"}).status == 400
    assert len(site.audit_rows("door.unlock")) == before


def test_the_cli_refuses_an_unknown_door_with_exit_2(site: DoorsSite) -> None:
    result = site.cli("door", "unlock", "no-such-door", user="guard1")
    assert result.exit_code == 2
    assert "no door 'no-such-door'" in result.stderr


def test_an_action_is_seen_only_by_whoever_started_it(site: DoorsSite) -> None:
    guard = Client(site.url)
    guard.login("guard1")
    reply = guard.post(f"/doors/{DOOR}/unlock", {"csrf": guard.csrf("/doors")})
    job = reply.headers["location"].removeprefix("/doors?job=")
    assert 'data-done="yes"' in finished(guard, reply.headers["location"])
    page = guard.get(f"/doors?job={job}")  # a reload shows it again, sends nothing
    assert f'data-device="{DOOR}" data-result="no_answer"' in page.text
    other = Client(site.url)
    other.login("boss")
    assert other.get(f"/doors/jobs/{job}").status == 404
    assert 'id="result"' not in other.get(f"/doors?job={job}").text


def test_the_cli_says_nothing_was_sent_when_the_broker_cannot_be_reached(
    site: DoorsSite,
) -> None:
    closed = free_port()
    result = site.cli("door", "unlock", DOOR, user="guard1", port=closed)
    assert result.exit_code == 1
    assert "door.unlock not sent: cannot reach the broker" in result.stderr
    assert site.audit_rows("door.unlock")[-1][1].startswith(f"{DOOR}: not sent: cannot reach")


def test_without_a_broker_and_key_the_page_only_watches(site: DoorsSite, tmp_path: Path) -> None:
    settings = Settings(
        site.log_path, site.site_dir / "registry.db", tmp_path / "s.key", secure_cookies=False
    )
    with serve(create_app(settings)) as url:
        client = Client(url)
        client.login("boss")
        shown = client.get("/doors")
        assert 'id="watch-only"' in shown.text
        assert 'data-door="stair-a-1f"' in shown.text  # still shows the doors
        assert 'data-action="unlock"' not in shown.text
        refused = client.post(f"/doors/{DOOR}/unlock", {"csrf": client.csrf("/doors")})
        assert refused.status == 409
        assert "only watches" in html.unescape(refused.text)
