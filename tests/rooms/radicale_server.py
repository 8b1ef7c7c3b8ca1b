"""A private Radicale (a real CalDAV server) on a free loopback port, one per test session.

Tests use it through the `radicale` fixture (auto-marked `services`); each test makes its own
calendars under unique paths so tests stay independent of each other and of their order.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rooms.config import CaldavCalendar
from simulator.broker import free_port

USERNAME = "rooms-service"
PASSWORD = "radicale-test-password"
READY_S = 10.0


@dataclass(frozen=True)
class RadicaleServer:
    """A running Radicale: where it listens and the service account's credentials."""

    url: str  # http://127.0.0.1:PORT/
    username: str
    password: str
    password_file: Path
    log_file: Path

    def calendar_settings(
        self, calendar_id: str = "radicale", password_file: Path | None = None
    ) -> CaldavCalendar:
        """Return a [[calendars]] entry for this server (another password file if given)."""
        return CaldavCalendar(
            kind="caldav",
            id=calendar_id,
            url=self.url,
            username=self.username,
            password_file=password_file or self.password_file,
        )

    def unique_path(self, name: str = "room") -> str:
        """Return a fresh calendar path (`/rooms/{name}-{random}/`) no other test uses."""
        return f"/rooms/{name}-{uuid.uuid4().hex[:10]}/"


def _write_config(workdir: Path, port: int) -> tuple[Path, Path, Path]:
    users = workdir / "users"
    users.write_text(f"{USERNAME}:{PASSWORD}\n", encoding="utf-8")
    rights = workdir / "rights"
    # The rights docs/calendars.md gives the service account: the room calendars under /rooms/,
    # and its own principal collection (Radicale creates it at each login).
    rights.write_text(
        f"[principal]\nuser: .+\ncollection: {{user}}\npermissions: RW\n\n"
        f"[{USERNAME}]\nuser: {USERNAME}\ncollection: rooms(/.*)?\npermissions: RrWw\n",
        encoding="utf-8",
    )
    password_file = workdir / "password"
    password_file.write_text(PASSWORD + "\n", encoding="utf-8")
    config = workdir / "config"
    config.write_text(
        f"""[server]
hosts = 127.0.0.1:{port}

[auth]
type = htpasswd
htpasswd_filename = {users}
htpasswd_encryption = plain
delay = 0

[rights]
type = from_file
file = {rights}

[storage]
filesystem_folder = {workdir / "collections"}

[logging]
# info: one line per request, which the tests count (never passwords or bodies).
level = info
""",
        encoding="utf-8",
    )
    return config, password_file, workdir / "radicale.log"


def _wait_ready(process: subprocess.Popen[bytes], url: str, log_file: Path) -> None:
    """Wait until Radicale answers HTTP, or fail with its log."""
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"Radicale exited with {process.returncode}: {log_file.read_text()}")
        try:
            status = httpx.get(url, timeout=0.5).status_code
        except httpx.TransportError:
            # Not listening yet: the connect attempt itself is the wait (refused at once), so
            # block briefly on the process instead of spinning.
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.02)
            continue
        if status < 500:  # any answer (302 to its web page, 401) means it serves
            return
    pytest.fail(f"Radicale did not answer on {url} within {READY_S} s: {log_file.read_text()}")


@pytest.fixture(scope="session")
def radicale(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RadicaleServer]:
    """Start one Radicale for the session; stop it at the end."""
    workdir = tmp_path_factory.mktemp("radicale")
    port = free_port()
    config, password_file, log_file = _write_config(workdir, port)
    url = f"http://127.0.0.1:{port}/"
    with log_file.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_ready(process, url, log_file)
        yield RadicaleServer(url, USERNAME, PASSWORD, password_file, log_file)
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
