"""The console's web page served for a test, fed live by a simulated building.

Real parts: mosquitto, one agent process per device, the console's collector, uvicorn
serving the app, Debian's chromium driven by Playwright (no browser download). Without a
building: `serve` runs the app alone on loopback, `Client` speaks HTTP to it (keeping the
cookies, never following a redirect) and `FakeClock` is the time its sessions judge by.
"""

from __future__ import annotations

import http.client
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page

from console.log import CentralLog
from console.users import add_user
from console.web import Settings, create_app
from provisioning.registry import Registry, import_people
from provisioning.staff_csv import StaffRow
from simulator.building import load_building
from simulator.run import Simulation
from simulator.scenario import Scenario
from tests.simulator.city import SMALL, play_in_thread

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PASSWORDS = {
    "guard1": "guard-password-1",
    "boss": "manager-password",
    "ops": "operator-pass1",
    "guard9": "guard-password-9",  # the one the throttle test locks out
    "guard5": "guard-password-5",  # changes their password
    "guard7": "guard-password-7",  # is removed while watching the alarms
    "guard8": "guard-password-8",  # is removed before the live stream connects
}
ROLES = {
    "guard1": "guard",
    "boss": "manager",
    "ops": "operator",
    "guard9": "guard",
    "guard8": "guard",
    "guard5": "guard",
    "guard7": "guard",
}


class FakeClock:
    """Seconds since the epoch that move only when a test says so."""

    def __init__(self, now: float = 1_796_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Serve `app` with uvicorn on a free loopback port; yield its base URL."""
    # The socket listens before uvicorn runs: the first request waits in its backlog, so
    # there is nothing to poll for.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="uvicorn", daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str


@dataclass
class Client:
    """A browser's HTTP side: keeps the console's cookies, never follows redirects."""

    url: str
    cookies: dict[str, str] = field(default_factory=dict)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Reply:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, form: dict[str, str]) -> Reply:
        body = urlencode(form)
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.request("POST", path, body, headers)

    def request(
        self, method: str, path: str, body: str = "", headers: dict[str, str] | None = None
    ) -> Reply:
        conn = self.connect()
        try:
            conn.request(method, path, body=body or None, headers=self._headers(headers))
            response = conn.getresponse()
            text = response.read().decode("utf-8", "replace")
            self._keep(response)
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, text)
        finally:
            conn.close()

    def open_stream(self, path: str) -> http.client.HTTPResponse:
        """Start a GET whose body is read as it comes (Server-Sent Events); close it after.

        The connection lets go of its socket at once: closing a socket with a file still
        open on it (the response's) leaves the connection up until that file closes.
        """
        conn = self.connect()
        conn.request("GET", path, headers=self._headers(None))
        response = conn.getresponse()
        sock, conn.sock = conn.sock, None
        if sock is not None:
            sock.close()
        return response

    def connect(self) -> http.client.HTTPConnection:
        where = urlsplit(self.url)
        return http.client.HTTPConnection(where.hostname or "", where.port, timeout=15)

    def csrf(self, path: str = "/login") -> str:
        found = re.search(r'name="csrf" value="([^"]+)"', self.get(path).text)
        assert found, f"no CSRF token on {path}"
        return found.group(1)

    def login(self, user: str, password: str | None = None) -> Reply:
        form = {"username": user, "password": password or PASSWORDS[user]}
        return self.post("/login", {**form, "csrf": self.csrf()})

    def copy(self) -> Client:
        """Another client holding the same cookies (a stolen or replayed cookie)."""
        return Client(self.url, dict(self.cookies))

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    def _keep(self, response: http.client.HTTPResponse) -> None:
        for line in response.headers.get_all("set-cookie") or []:
            jar: SimpleCookie = SimpleCookie()
            jar.load(line)
            for name, morsel in jar.items():
                if morsel.value in ("", "null") or "1970" in morsel["expires"]:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value


@dataclass
class LiveSite:
    """A simulated day being played, and the console's web page on it."""

    sim: Simulation
    url: str
    run_dir: Path
    player: threading.Thread
    errors: list[BaseException]

    def wait_for_the_day(self, timeout_s: float = 300) -> None:
        self.player.join(timeout_s)
        assert not self.player.is_alive(), "the simulated day did not end"
        assert not self.errors, self.errors


@contextmanager
def live_site(tmp: Path, scenario: Scenario, speed: float) -> Iterator[LiveSite]:
    """Play `scenario` on the small building at `speed`; serve the console on it."""
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed; ./check installs it (apt-get install chromium)")
    run_dir = tmp / "run"
    run_dir.mkdir()
    sim = Simulation(load_building(SMALL), scenario, run_dir, speed=speed)
    player = play_in_thread(sim)
    ready, errors = player.ready, player.errors
    try:
        assert ready.wait(120)
        assert not errors, errors
        log_path = run_dir / "console" / "log.db"
        log = CentralLog(log_path)
        for user, password in PASSWORDS.items():
            add_user(log, user, ROLES[user], password, by="test")
        log.close()
        settings = Settings(
            log_path,
            run_dir / "site" / "registry.db",
            tmp / "console-session.key",
            secure_cookies=False,  # plain http on loopback in the test
        )
        with serve(create_app(settings)) as url:
            yield LiveSite(sim, url, run_dir, player.thread, errors)
    finally:
        player.thread.join(300)
        sim.close()


# Fields as a hostile HR file or device could set them: a spreadsheet formula, a terminal
# escape (OSC title, clear screen, colour, bell), a bidirectional override.
HOSTILE_NAME = '=HYPERLINK("http://evil.example","x")\x1b]0;pwned\x07Mallory\x1b[2J\u202e'
HOSTILE_DEPARTMENT = "@SUM(1+1)\x00"
HOSTILE_DEVICE = "+gate\x1b[31m"
HOSTILE_REASON = "-2+3\x9b1m"
HOSTILE_REF = "ab" * 32


def hostile_site(tmp: Path) -> tuple[Path, Path]:
    """A log and a registry holding the hostile fields above; return their paths."""

    registry_path = tmp / "registry.db"
    registry = Registry(registry_path)
    registry.init_site("test-site", "Asia/Tokyo", {})
    row = StaffRow(
        1, "K90001", HOSTILE_NAME, HOSTILE_DEPARTMENT, "felica", HOSTILE_REF, (), None, None
    )
    import_people(registry, [row], "test")
    registry.close()
    log_path = tmp / "log.db"
    log = CentralLog(log_path)
    base = {"v": 1, "clock_synced": True, "kind": "access", "card_ref": HOSTILE_REF}
    log.append(
        [
            {
                **base,
                "id": f"{HOSTILE_DEVICE}:1",
                "seq": 1,
                "ts": "2026-12-01T00:00:00.000Z",
                "type": "granted",
                "door": HOSTILE_DEVICE,
                "reason": HOSTILE_REASON,
            },
            {
                **base,
                "id": f"{HOSTILE_DEVICE}:2",
                "seq": 2,
                "ts": "2026-12-01T00:00:01.000Z",
                "type": "crossing",
                "door": HOSTILE_DEVICE,
                "from_zone": "public",
                "to_zone": "staff-area",
            },
            # a device time that no time zone can show (year 0 in UTC)
            {
                **base,
                "id": "gate-2:1",
                "seq": 1,
                "ts": "0001-01-01T00:00:00+14:00",
                "type": "denied",
                "door": "gate-2",
                "reason": "expired",
            },
        ],
        "2026-12-01T00:00:02.000Z",
    )
    for user, password in PASSWORDS.items():
        add_user(log, user, ROLES[user], password, by="test")
    log.close()
    return log_path, registry_path


def login(browser: Browser, site: LiveSite, user: str) -> Page:
    """Log `user` in on a new page of its own (a browser context: its own cookies)."""
    page = browser.new_context(locale="ja-JP", viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{site.url}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("button[type=submit]")
    return page
