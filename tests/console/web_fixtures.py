"""The console's web page served for a test, fed live by a simulated building.

Real parts: mosquitto, one agent process per device, the console's collector, uvicorn
serving the app, Debian's chromium driven by Playwright (no browser download).
"""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from console.log import CentralLog
from console.users import add_user
from console.web import Settings, create_app
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
}
ROLES = {"guard1": "guard", "boss": "manager", "ops": "operator", "guard9": "guard"}


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
    server: uvicorn.Server | None = None
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
        # The socket listens before uvicorn runs: the browser's first request waits in its
        # backlog, so there is nothing to poll for.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        config = uvicorn.Config(create_app(settings), log_level="error")
        server = uvicorn.Server(config)
        threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, name="uvicorn", daemon=True
        ).start()
        yield LiveSite(sim, f"http://127.0.0.1:{port}", run_dir, player.thread, errors)
    finally:
        if server is not None:
            server.should_exit = True
        player.thread.join(300)
        sim.close()
