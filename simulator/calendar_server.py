"""A private Radicale (a real CalDAV server) on a free loopback port: the rooms' calendars.

The simulated city hall books its meeting rooms and booths here before the day starts, and
the rooms service reads, checks in, releases and books through it, as it would a site's
calendar server. Two accounts: the rooms service's (read and write on every room calendar)
and the staff's booking account (write on the room calendars, as a groupware's booking
front end has). Storage is a temporary folder; the server is stopped at the end.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from pathlib import Path
from typing import BinaryIO

from edge.errors import EdgeError
from simulator.broker import free_port
from simulator.readiness import keep_draining, wait_for_output

SERVICE_ACCOUNT = "rooms-service"
STAFF_ACCOUNT = "staff-booking"
INSTALL = "install it with: pip install 'edge-controller[sim]' (radicale 3.9)"


class CalendarServerError(EdgeError, RuntimeError):
    """Radicale is missing or did not start; the message says what to do."""


class CalendarServer:
    """Radicale with htpasswd accounts and per-account rights, on 127.0.0.1."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = workdir / "radicale.log"
        self.passwords = {
            SERVICE_ACCOUNT: secrets.token_urlsafe(18),
            STAFF_ACCOUNT: secrets.token_urlsafe(18),
        }
        users = workdir / "users"
        users.write_text("".join(f"{u}:{p}\n" for u, p in self.passwords.items()))
        users.chmod(0o600)
        for account, password in self.passwords.items():
            path = self.password_file(account)
            path.write_text(password + "\n")
            path.chmod(0o600)
        rights = workdir / "rights"
        # The room calendars live under the service account's home; staff may write there
        # (a booking) and read the server root (discovery), nothing else.
        rights.write_text(
            f"[service]\nuser: {SERVICE_ACCOUNT}\ncollection: .*\npermissions: RWrw\n\n"
            f"[staff-root]\nuser: {STAFF_ACCOUNT}\ncollection: (|{STAFF_ACCOUNT}(/.*)?)\n"
            "permissions: RWrw\n\n"
            f"[staff-rooms]\nuser: {STAFF_ACCOUNT}\ncollection: {SERVICE_ACCOUNT}(/[^/]+)?\n"
            "permissions: Rrw\n"
        )
        self.conf = workdir / "config"
        self.conf.write_text(
            f"[server]\nhosts = 127.0.0.1:{self.port}\n\n"
            f"[auth]\ntype = htpasswd\nhtpasswd_filename = {users}\n"
            "htpasswd_encryption = plain\ndelay = 0\n\n"
            f"[rights]\ntype = from_file\nfile = {rights}\n\n"
            f"[storage]\nfilesystem_folder = {workdir / 'collections'}\n\n"
            # info: the line saying it is ready (each request adds a line, drained unread).
            "[logging]\nlevel = info\n"
        )
        self.process: subprocess.Popen[bytes] | None = None
        self._log: BinaryIO | None = None

    def __repr__(self) -> str:
        return f"<CalendarServer {self.url} {'running' if self.running else 'stopped'}>"

    def password_file(self, account: str) -> Path:
        return self.workdir / f"{account}.password"

    def calendar_path(self, zone: str) -> str:
        """Return the path of a room's calendar on this server."""
        return f"/{SERVICE_ACCOUNT}/{zone}/"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 20.0) -> None:
        """Start Radicale and return once it says it is ready."""
        try:
            import radicale  # noqa: F401, PLC0415 -- only to say clearly that it is missing
        except ImportError:
            raise CalendarServerError(f"Radicale is not installed; {INSTALL}") from None
        self.process = subprocess.Popen(  # noqa: S603  # our interpreter, a fixed module
            [sys.executable, "-m", "radicale", "--config", str(self.conf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        log = self.log.open("ab")
        if not wait_for_output(self.process.stdout, b"Radicale server ready", timeout_s, log):
            log.close()
            self.stop(kill=True)
            tail = self.log.read_text(errors="replace")[-1500:]
            raise CalendarServerError(
                f"Radicale did not start on {self.url} within {timeout_s} s; "
                f"is the port free and {self.workdir} writable? Its log: {tail}"
            )
        keep_draining(self.process.stdout, log)  # the thread closes the output, not the log
        self._log = log

    def stop(self, kill: bool = False) -> None:
        """Stop Radicale; idempotent."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None
