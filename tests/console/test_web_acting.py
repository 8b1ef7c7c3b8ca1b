"""One declared check for every action route (console.web_context.acting): the doors and the
desk refuse a role the same way, audit a refused attempt (a POST) the same way, and never
audit a GET.

Real parts: the console's app under uvicorn and its audit trail; no site or broker is needed
(the role check comes before anything else).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from console.log import CentralLog
from console.users import add_user, audit_trail
from console.web import Settings, create_app
from tests.console.web_fixtures import PASSWORDS, Client, serve


@pytest.fixture
def url(tmp_path: Path) -> Iterator[str]:
    log = CentralLog(tmp_path / "log.db")
    for user, role in (("guard1", "guard"), ("ops", "operator")):
        add_user(log, user, role, PASSWORDS[user], by="test")
    log.close()
    settings = Settings(tmp_path / "log.db", None, tmp_path / "s.key", secure_cookies=False)
    with serve(create_app(settings)) as served:
        yield served


def refusals(path: Path) -> list[tuple[str, str, str]]:
    log = CentralLog(path)
    try:
        return [(u, a, d) for _, u, a, d in audit_trail(log) if a.endswith(" refused")]
    finally:
        log.close()


@pytest.mark.parametrize(
    ("user", "path", "action", "detail"),
    [
        ("guard1", "/cards/revoke", "card.revoke", "role guard; manager may"),
        ("guard1", "/doors/lockdown/confirm", "lockdown", "role guard; manager may"),
        ("guard1", "/doors/stair-a-1f/hold", "door.hold", "role guard; manager may"),
        ("ops", "/passes/issue", "pass.issue", "role operator; guard or manager may"),
    ],
)
def test_a_refused_post_is_a_403_audited_with_who_may(
    url: str, tmp_path: Path, user: str, path: str, action: str, detail: str
) -> None:
    client = Client(url)
    client.login(user)
    token = client.csrf("/password")
    assert client.post(path, {"csrf": token, "staff_no": "S001", "on": "on"}).status == 403
    assert refusals(tmp_path / "log.db") == [(user, f"{action} refused", detail)]


def test_a_refused_get_is_a_403_and_writes_nothing(url: str, tmp_path: Path) -> None:
    client = Client(url)
    client.login("guard1")
    for _ in range(3):
        assert client.get("/cards/revoke?staff_no=S001").status == 403
    assert refusals(tmp_path / "log.db") == []
