"""A private PostgreSQL cluster in a temporary directory, started and stopped by its owner.

The tests and the benches run the central log on a real PostgreSQL (Debian's postgresql-15):
`initdb` into a fresh directory, `postgres` on a free loopback port with its socket in that
directory, and no password (trust, loopback only). PostgreSQL refuses to run as root, so as
root the cluster runs as the `postgres` user the Debian package creates. It is ready when it
logs "ready to accept connections": no polling of the port.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from edge.errors import EdgeError
from simulator.broker import STDBUF, free_port
from simulator.readiness import keep_draining, wait_for_output

BIN = Path("/usr/lib/postgresql/15/bin")
INSTALL = "install it with: sudo apt-get install postgresql-15 (./check does it for you)"
READY = b"ready to accept connections"


class PostgresError(EdgeError, RuntimeError):
    """PostgreSQL is missing or did not start; the message says what to do."""


class PostgresCluster:
    """One `postgres` server on 127.0.0.1 with a database `edge` (its `url`)."""

    def __init__(self, workdir: Path, database: str = "edge") -> None:
        self.workdir = workdir
        self.data = workdir / "data"
        self.database = database
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._user = _server_user()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<PostgresCluster 127.0.0.1:{self.port} {state}>"

    @property
    def url(self) -> str:
        """The libpq URL of the cluster's database (loopback, no password)."""
        return f"postgresql://{self._user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def running(self) -> bool:
        """True while the server process lives."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 60.0) -> None:
        """Create the cluster on first use, start it and create the database."""
        if not (BIN / "postgres").exists():
            raise PostgresError(f"PostgreSQL 15 is not installed; {INSTALL}")
        first = not self.data.exists()
        self.workdir.mkdir(parents=True, exist_ok=True)
        if first:
            self._own(self.workdir)
            self._run(
                str(BIN / "initdb"),
                "-D",
                str(self.data),
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
                "--no-sync",  # a test cluster: nothing to keep after a power cut
            )
        self.process = subprocess.Popen(  # noqa: S603  # fixed programs, no shell
            [
                STDBUF,
                "-oL",
                "-eL",
                str(BIN / "postgres"),
                "-D",
                str(self.data),
                "-p",
                str(self.port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                f"unix_socket_directories={self.workdir}",
                "-c",
                "fsync=off",  # a test cluster: durability is PostgreSQL's, not ours to prove
                "-c",
                "max_connections=200",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # As root, the server process itself runs as the user (no wrapper between it and
            # our signals: a `runuser` in between would take the stop signal for itself).
            **self._user_args(),
        )
        assert self.process.stdout is not None
        if not wait_for_output(self.process.stdout, READY, timeout_s):
            self.stop(kill=True)
            raise PostgresError(f"PostgreSQL did not start in {timeout_s} s in {self.data}")
        keep_draining(self.process.stdout)
        if first:
            self._run(
                str(BIN.parent / "bin" / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self._user,
                self.database,
            )

    def stop(self, kill: bool = False) -> None:
        """Stop the server (fast shutdown, or SIGKILL with `kill`); idempotent."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            # SIGINT is PostgreSQL's "fast" shutdown: connected clients are disconnected
            # (SIGTERM, "smart", would wait for every one of them to leave).
            self.process.send_signal(signal.SIGINT)
        self.process.wait(30)
        self.process = None

    def remove(self) -> None:
        """Stop and delete the cluster's files."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _own(self, path: Path) -> None:
        if os.geteuid() == 0:
            entry = pwd.getpwnam(self._user)
            os.chown(path, entry.pw_uid, entry.pw_gid)
            path.chmod(0o700)

    def _user_args(self) -> dict[str, Any]:
        if os.geteuid() != 0:
            return {}
        entry = pwd.getpwnam(self._user)
        return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}

    def _as_user(self) -> list[str]:
        return ["runuser", "-u", self._user, "--"] if os.geteuid() == 0 else []

    def _run(self, *argv: str) -> None:
        done = subprocess.run(  # noqa: S603  # fixed programs, no shell
            [*self._as_user(), *argv], capture_output=True, check=False
        )
        if done.returncode != 0:
            tail = (done.stdout + done.stderr).decode(errors="replace")[-1500:]
            raise PostgresError(f"{Path(argv[0]).name} failed: {tail}")


def _server_user() -> str:
    """The user the server runs as: `postgres` when we are root, else ourselves."""
    if os.geteuid() != 0:
        return pwd.getpwuid(os.geteuid()).pw_name
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise PostgresError(f"no `postgres` user to run PostgreSQL as; {INSTALL}") from None
    return "postgres"
