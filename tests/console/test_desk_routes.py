"""Every desk route, fed long and odd values by an HTTP client: a 400 page naming the field
or the page itself, never a 5xx. Real parts: uvicorn serving the app on loopback with the
provisioning tests' site; no broker listens (a publish is refused and named)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest

from console.log import CentralLog
from console.users import add_user
from console.web import Settings, create_app
from console.web_context import BrokerAccess
from provisioning.broker import password_hash
from provisioning.registry import Registry, change_cards
from tests.provisioning.test_passes_unit import NOW, site

from .web_fixtures import PASSWORDS, ROLES, Client, serve

__all__ = ["site"]  # the provisioning tests' site: four people, spare card 07

ODD = [
    "x" * 5000,
    "佐藤" * 300,
    "…",
    "abcd…",
    "S001\n",
    "\x00",
    "%00",
    "'; DROP TABLE cards;--",
    "<script>alert(1)</script>",
    "-1",
    "9" * 40,
    " ",
    "07" + "0" * 200,
]


@pytest.fixture
def url(site: Path, tmp_path: Path) -> Iterator[str]:
    registry = Registry(site / "registry.db")
    try:
        registry.add_account("operator", "operator", password_hash("operator-password"))
    finally:
        registry.close()
    (site / "accounts").mkdir(exist_ok=True)
    (site / "accounts" / "operator.password").write_text("operator-password")
    log_path = tmp_path / "log.db"
    log = CentralLog(log_path)
    for user in ("guard1", "boss"):
        add_user(log, user, ROLES[user], PASSWORDS[user], by="test")
    log.close()
    settings = Settings(
        log_path,
        site / "registry.db",
        tmp_path / "session.key",
        secure_cookies=False,
        clock=NOW.timestamp,
        site_dir=site,
        broker=BrokerAccess("127.0.0.1", 9, "test-site", "console"),  # nobody listens
    )
    with serve(create_app(settings)) as served:
        yield served


def requests(value: str) -> list[tuple[str, str, dict[str, str]]]:
    """Every desk route with `value` in each of its fields (the others plausible)."""
    tried: list[tuple[str, str, dict[str, str]]] = [
        ("GET", "/cards", {"who": value}),
        ("GET", "/cards/applied", {"v": value}),
        ("POST", "/passes/return", {"spare": value}),
    ]
    for action in ("lost", "revoke", "reinstate"):
        for form in ({"staff_no": value, "card": ""}, {"staff_no": "S001", "card": value}):
            tried.append(("GET", f"/cards/{action}", form))
            tried.append(("POST", f"/cards/{action}", form))
    issue = {"staff_no": "S001", "spare": "07", "until": "23:00"}
    for name in issue:
        tried.append(("POST", "/passes/issue", {**issue, name: value}))
    return tried


@pytest.mark.parametrize("user", ["guard1", "boss"])
def test_no_desk_route_answers_odd_input_with_a_server_error(url: str, user: str) -> None:
    client = Client(url)
    client.login(user)
    csrf = client.csrf("/cards")
    answers = []
    for value in ODD:
        for method, path, fields in requests(value):
            if method == "GET":
                reply = client.get(f"{path}?{urlencode(fields)}")
            else:
                reply = client.post(path, {**fields, "csrf": csrf})
            answers.append(reply.status)
            assert reply.status in (200, 400, 403), (method, path, fields, reply.text[:300])
            assert "Traceback" not in reply.text
    for raw in ("/cards?who=%FF%FE", "/cards/lost?staff_no=%C0%AF", "/cards/applied?v=%F0"):
        assert client.get(raw).status in (200, 400), raw
    assert client.get("/passes").status == 200
    assert 400 in answers


def test_a_guard_cannot_reinstate_a_revoked_card_by_how_they_type_it(url: str, site: Path) -> None:
    registry = Registry(site / "registry.db")
    try:
        [ref] = change_cards(registry, "S002", "revoked")
        full = registry.db.execute("SELECT card_ref FROM cards WHERE staff_no = 'S002'").fetchone()
    finally:
        registry.close()
    guard = Client(url)
    guard.login("guard1")
    csrf = guard.csrf("/cards")
    for card in (f"{ref}…", full[0][:16], full[0], f" {ref.upper()} ", ""):
        refused = guard.post("/cards/reinstate", {"staff_no": "S002", "card": card, "csrf": csrf})
        assert refused.status == 400, card
        assert "only a manager may reinstate a revoked card" in refused.text, card
    registry = Registry(site / "registry.db")
    try:
        status = registry.db.execute("SELECT status FROM cards WHERE staff_no = 'S002'").fetchone()
    finally:
        registry.close()
    assert status == ("revoked",)


def test_a_refused_confirmation_page_writes_no_audit_row(url: str, tmp_path: Path) -> None:
    guard = Client(url)
    guard.login("guard1")

    def refusals() -> int:
        log = CentralLog(tmp_path / "log.db")
        try:
            rows = log.db.execute("SELECT action FROM audit").fetchall()
        finally:
            log.close()
        return sum(1 for (action,) in rows if action.endswith(" refused"))

    before = refusals()
    for _ in range(5):  # what a page elsewhere could make the guard's browser fetch
        assert guard.get("/cards/revoke?staff_no=S001").status == 403
    assert refusals() == before
    form = {"staff_no": "S001", "csrf": guard.csrf("/cards")}
    assert guard.post("/cards/revoke", form).status == 403
    assert refusals() == before + 1
