"""Sessions on the server: a cookie is only a key to a session the console can end.

Real parts: uvicorn serving the app on loopback, the central log in SQLite and in
PostgreSQL; the sessions' clock is a FakeClock the tests move (no sleeping). Page flows in
the browser are in test_web.py; here the replayed cookie is sent as any HTTP client would
send it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.admission import LoginThrottle, StreamSlots
from console.log import CentralLog, open_log
from console.users import (
    add_user,
    audit_trail,
    disable_user,
    enable_user,
    remove_user,
    set_password,
    set_role,
)
from console.web import Settings, create_app
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)

from .web_fixtures import Client, FakeClock, serve

PASSWORD = "a long enough password"
IDLE_S, LIFETIME_S = 30 * 60, 12 * 3600


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def log_path(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """The log's file (SQLite) or its PostgreSQL database's URL."""
    if request.param == "sqlite":
        return tmp_path / "log.db"
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def log(log_path: Path | str) -> Iterator[CentralLog]:
    central = open_log(log_path)
    for name, role in (("anna", "manager"), ("ben", "guard"), ("carl", "guard")):
        add_user(central, name, role, PASSWORD, by="test")
    yield central
    central.close()


@pytest.fixture
def url(log: CentralLog, log_path: Path | str, tmp_path: Path, clock: FakeClock) -> Iterator[str]:
    settings = Settings(
        log_path,
        None,
        tmp_path / "session.key",
        secure_cookies=False,
        clock=clock,
        idle_s=IDLE_S,
        lifetime_s=LIFETIME_S,
        poll_s=0.05,
        streams_per_session=2,
        streams_total=3,
    )
    with serve(create_app(settings)) as served:
        yield served


def logged_in(url: str, user: str) -> Client:
    client = Client(url)
    reply = client.login(user, PASSWORD)
    assert reply.status == 303, reply.text
    assert client.get("/alarms").status == 200
    return client


def test_the_cookie_carries_only_a_session_id(url: str, log: CentralLog) -> None:
    client = logged_in(url, "anna")
    cookie = client.cookies["edge_console"]
    assert "manager" not in cookie
    assert "anna" not in cookie
    stored = log.db.execute("SELECT key, username FROM sessions").fetchall()
    assert [u for _, u in stored] == ["anna"]
    assert cookie not in {k for k, _ in stored}  # only a hash of the id is kept


def test_a_cookie_replayed_after_logout_is_refused(url: str) -> None:
    client = logged_in(url, "anna")
    stolen = client.copy()
    assert client.post("/logout", {"csrf": client.csrf("/alarms")}).status == 303
    replayed = stolen.get("/log/export.csv")
    assert replayed.status == 303
    assert replayed.headers["location"] == "/login"


def test_a_demoted_user_loses_the_export_at_the_next_request(url: str, log: CentralLog) -> None:
    client = logged_in(url, "anna")
    assert client.get("/log/export.csv").status == 200
    set_role(log, "anna", "guard", by="test")
    assert client.get("/log/export.csv").status == 403
    assert client.get("/alarms").status == 200  # still a guard


@pytest.mark.parametrize("action", ["disable", "remove"])
def test_a_disabled_or_removed_user_is_out_at_the_next_request(
    url: str, log: CentralLog, action: str
) -> None:
    client = logged_in(url, "ben")
    stolen = client.copy()
    (disable_user if action == "disable" else remove_user)(log, "ben", "test")
    for who in (client, stolen):
        assert who.get("/alarms").headers.get("location") == "/login"
    assert Client(url).login("ben", PASSWORD).status == 401  # and cannot log in again
    if action == "disable":
        enable_user(log, "ben", "test")
        assert logged_in(url, "ben").get("/alarms").status == 200
    actions = {a for _, _, a, _ in audit_trail(log)}
    assert f"user {action}d" in actions


def test_a_session_ends_after_idling_and_after_its_lifetime(
    url: str, log: CentralLog, clock: FakeClock
) -> None:
    client = logged_in(url, "carl")
    clock.advance(IDLE_S - 60)
    assert client.get("/alarms").status == 200  # activity keeps it alive ...
    clock.advance(IDLE_S - 60)
    assert client.get("/alarms").status == 200
    clock.advance(IDLE_S)  # ... idleness ends it
    assert client.get("/alarms").headers.get("location") == "/login"
    busy = logged_in(url, "carl")
    for _ in range(LIFETIME_S // (IDLE_S // 2)):
        clock.advance(IDLE_S // 2)
        busy.get("/alarms/rows")
    assert busy.get("/alarms").headers.get("location") == "/login"  # never past its lifetime
    ended = [d for _, who, a, d in audit_trail(log) if who == "carl" and a == "session ended"]
    assert any("idle" in d for d in ended)
    assert any("older than" in d for d in ended)


@pytest.mark.parametrize("poll", ["/doors/rows", "/doors/jobs/none"])
def test_a_page_polling_alone_does_not_keep_its_session_alive(
    url: str, log: CentralLog, clock: FakeClock, poll: str
) -> None:
    client = logged_in(url, "carl")
    assert client.get("/doors").status == 200  # the doors page, left open
    for step in (IDLE_S // 2, IDLE_S // 2 - 60):  # its polls go on, the session is live ...
        clock.advance(step)
        assert client.get(poll).status in (200, 404)  # 404: no such action of this user
    clock.advance(60)
    assert client.get(poll).headers.get("location") == "/login"  # ... and idles out
    assert client.get("/doors").headers.get("location") == "/login"
    ended = [d for _, who, a, d in audit_trail(log) if who == "carl" and a == "session ended"]
    assert any("idle" in d for d in ended)


def test_changing_ones_password_ends_the_other_sessions(url: str, log: CentralLog) -> None:
    here, elsewhere = logged_in(url, "anna"), logged_in(url, "anna")
    form = {
        "current_password": "wrong guess",
        "new_password": "x" * 12,
        "repeat_password": "x" * 12,
    }
    refused = here.post("/password", {**form, "csrf": here.csrf("/password")})
    assert refused.status == 401
    assert elsewhere.get("/alarms").status == 200
    new = "another long password"
    form = {"current_password": PASSWORD, "new_password": new, "repeat_password": new}
    changed = here.post("/password", {**form, "csrf": here.csrf("/password")})
    assert changed.status == 200, changed.text
    assert 'id="changed"' in changed.text
    assert here.get("/alarms").status == 200  # this session stays
    assert elsewhere.get("/alarms").headers.get("location") == "/login"
    assert Client(url).login("anna", PASSWORD).status == 401
    assert Client(url).login("anna", new).status == 303


def test_a_password_set_by_an_administrator_ends_every_session(url: str, log: CentralLog) -> None:
    client = logged_in(url, "ben")
    assert set_password(log, "ben", "reset by the office", by="admin") == 1
    assert client.get("/alarms").headers.get("location") == "/login"


def read_events(response: object, until: str, found: list[str], done: threading.Event) -> None:
    try:
        for raw in response:  # type: ignore[attr-defined]
            line = raw.decode().strip()
            found.append(line)
            if line == until:
                break
    finally:
        done.set()


@pytest.mark.parametrize("ending", ["remove", "demote", "logout", "idle"])
def test_a_live_alarm_stream_ends_when_its_session_does(
    url: str, log: CentralLog, clock: FakeClock, ending: str
) -> None:
    client = logged_in(url, "carl")
    stream = client.open_stream("/alarms/stream")
    assert stream.status == 200
    lines: list[str] = []
    done = threading.Event()
    reader = threading.Thread(target=read_events, args=(stream, "event: ended", lines, done))
    reader.start()
    if ending == "remove":
        remove_user(log, "carl", "test")
    elif ending == "demote":
        set_role(log, "carl", "operator", "test")
    elif ending == "logout":
        client.post("/logout", {"csrf": client.csrf("/alarms")})
    else:
        clock.advance(IDLE_S)  # nobody has used the page since: the stream alone is no activity
    assert done.wait(10), lines
    assert "event: ended" in lines
    reader.join(5)


def test_live_streams_are_bounded_per_session_and_in_total(url: str) -> None:
    first, second = logged_in(url, "anna"), logged_in(url, "ben")
    held = [first.open_stream("/alarms/stream") for _ in range(2)]
    assert all(s.status == 200 for s in held)
    over = first.get("/alarms/stream")
    assert over.status == 429
    assert "live streams" in over.text
    held.append(second.open_stream("/alarms/stream"))
    assert held[-1].status == 200
    full = second.get("/alarms/stream")
    assert full.status == 429
    assert "the console serves 3" in full.text
    for stream in held:
        stream.close()


def test_one_name_is_slowed_from_every_address_with_a_growing_wait() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock)
    for n in range(5):
        assert not throttle.locked("guard1", f"10.0.0.{n}")
        throttle.failed("guard1", f"10.0.0.{n}")  # five addresses, one failure each
    assert throttle.wait_s("guard1", "10.0.0.99") == pytest.approx(1)
    assert not throttle.locked("guard2", "10.0.0.99")  # another name is not slowed
    waits = []
    for n in range(6):
        clock.advance(throttle.wait_s("Guard1", "10.0.1.1"))
        throttle.failed("guard1", f"10.0.1.{n}")
        waits.append(throttle.wait_s("guard1", "10.0.2.1"))
    assert waits == [2, 4, 8, 16, 32, 64]
    clock.advance(64)
    throttle.succeeded("guard1", "10.0.2.1")
    assert not throttle.locked("guard1", "10.0.2.1")


def test_logins_are_bounded_in_rate_and_the_throttle_in_memory() -> None:
    clock = FakeClock()
    throttle = LoginThrottle(clock, rate_per_s=2, burst=4, max_keys=1000)
    assert [throttle.admit() for _ in range(5)] == [True] * 4 + [False]
    clock.advance(1)
    assert [throttle.admit() for _ in range(3)] == [True, True, False]
    for n in range(50_000):
        throttle.failed(f"name{n}", f"10.{n % 256}.0.1")
    assert len(throttle) <= 2000


def test_stream_slots_are_given_back() -> None:
    slots = StreamSlots(per_session=1, total=2)
    assert slots.take("a") is None
    assert slots.take("a") is not None
    slots.release("a")
    assert slots.take("a") is None
