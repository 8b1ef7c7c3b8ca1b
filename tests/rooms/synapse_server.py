"""A private Matrix Synapse on a free loopback port, one per test session.

Synapse runs from its own virtual environment (`.venv/synapse`, made by scripts/bootstrap.sh:
its pins clash with the project's), with a configuration written here: one client listener on
127.0.0.1, no federation, no key servers, SQLite in the session's temporary directory, presence
on and rate limits raised. Users are registered through the shared-secret admin API. Tests use
it through the `synapse` fixture (auto-marked `services`); a Synapse that does not start fails
the test with its log's tail.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from simulator.broker import free_port

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / ".venv" / "synapse" / "bin" / "python"
SERVER_NAME = "uc.test"
READY_S = 90.0  # the first start creates its SQLite schema
LIMIT = {"per_second": 10_000, "burst_count": 10_000}


@dataclass
class SynapseServer:
    """A running Synapse: its URL, the admin's token file, and ways to make and read users."""

    url: str
    admin_token_file: Path
    log_file: Path
    shared_secret: str = field(repr=False)
    _tokens: dict[str, str] = field(default_factory=dict, repr=False)

    def register(self, name: str = "staff", admin: bool = False) -> tuple[str, str]:
        """Register a fresh user; return (user id, access token)."""
        localpart = f"{name}-{uuid.uuid4().hex[:8]}"
        password = secrets.token_urlsafe(16)
        endpoint = f"{self.url}/_synapse/admin/v1/register"
        nonce = httpx.get(endpoint, timeout=10).json()["nonce"]
        message = b"\x00".join(
            [
                nonce.encode(),
                localpart.encode(),
                password.encode(),
                b"admin" if admin else b"notadmin",
            ]
        )
        mac = hmac.new(self.shared_secret.encode(), message, hashlib.sha1).hexdigest()
        body = {
            "nonce": nonce,
            "username": localpart,
            "password": password,
            "admin": admin,
            "mac": mac,
        }
        reply = httpx.post(endpoint, json=body, timeout=10)
        assert reply.status_code == 200, reply.text
        user_id, token = reply.json()["user_id"], reply.json()["access_token"]
        self._tokens[user_id] = token
        return user_id, token

    def presence(self, user_id: str) -> tuple[str, str]:
        """Return (presence, status_msg) as the user's own client reads it."""
        reply = httpx.get(
            f"{self.url}/_matrix/client/v3/presence/{quote(user_id, safe='')}/status",
            headers={"Authorization": f"Bearer {self._tokens[user_id]}"},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        data = reply.json()
        return data["presence"], data.get("status_msg") or ""

    def wait_presence(self, user_id: str, want: tuple[str, str], timeout_s: float = 15.0) -> None:
        """Wait until the user's presence reads `want`; fail naming what it read instead."""
        deadline = time.monotonic() + timeout_s
        seen = self.presence(user_id)
        while seen != want and time.monotonic() < deadline:
            with httpx.Client(timeout=1) as client:  # the request's own time paces the loop
                client.get(f"{self.url}/health")
            seen = self.presence(user_id)
        assert seen == want, f"presence of the user is {seen}, not {want} after {timeout_s} s"


def _config(workdir: Path, port: int, secret: str) -> Path:
    data = workdir / "data"
    data.mkdir()
    log_config = workdir / "log.yaml"
    # JSON is YAML: Synapse reads both files without a YAML writer here.
    log_config.write_text(
        json.dumps(
            {
                "version": 1,
                "formatters": {
                    "plain": {"format": "%(asctime)s %(name)s %(levelname)s %(message)s"}
                },
                "handlers": {
                    "file": {
                        "class": "logging.FileHandler",
                        "formatter": "plain",
                        "filename": str(workdir / "homeserver.log"),
                    }
                },
                "loggers": {"synapse.storage.SQL": {"level": "WARNING"}},
                "root": {"level": "INFO", "handlers": ["file"]},
                "disable_existing_loggers": False,
            }
        ),
        encoding="utf-8",
    )
    config = {
        "server_name": SERVER_NAME,
        "pid_file": str(data / "homeserver.pid"),
        "listeners": [
            {
                "port": port,
                "bind_addresses": ["127.0.0.1"],
                "type": "http",
                "tls": False,
                "x_forwarded": False,
                "resources": [{"names": ["client"], "compress": False}],  # no federation
            }
        ],
        "database": {"name": "sqlite3", "args": {"database": str(data / "homeserver.db")}},
        "log_config": str(log_config),
        "media_store_path": str(data / "media"),
        "signing_key_path": str(data / "signing.key"),
        "registration_shared_secret": secret,
        "macaroon_secret_key": secrets.token_urlsafe(32),
        "form_secret": secrets.token_urlsafe(32),
        "report_stats": False,
        "enable_metrics": False,
        "trusted_key_servers": [],
        "suppress_key_server_warning": True,
        "federation_domain_whitelist": [],
        "presence": {"enabled": True},
        "rc_message": LIMIT,
        "rc_registration": LIMIT,
        "rc_presence": {"per_user": LIMIT},
        "rc_login": {"address": LIMIT, "account": LIMIT, "failed_attempts": LIMIT},
        "rc_admin_redaction": LIMIT,
        "rc_joins": {"local": LIMIT, "remote": LIMIT},
    }
    path = workdir / "homeserver.yaml"
    path.write_text(json.dumps(config, indent=1), encoding="utf-8")
    return path


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class SynapseFailed(RuntimeError):
    """Synapse did not start; the message carries its log's tail."""


def _wait_ready(process: subprocess.Popen[bytes], url: str, logs: tuple[Path, Path]) -> None:
    deadline = time.monotonic() + READY_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SynapseFailed(
                f"Synapse exited with {process.returncode}:\n{_tail(logs[0])}\n{_tail(logs[1])}"
            )
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=0.1)  # not listening yet: wait on the process, not sleep
    raise SynapseFailed(
        f"Synapse did not answer {url}/health within {READY_S} s:\n{_tail(logs[1])}"
    )


@contextlib.contextmanager
def running_synapse(workdir: Path) -> Iterator[SynapseServer]:
    """Run a Synapse with its files in `workdir` and an admin user; stop it on leaving."""
    if not PYTHON.exists():
        raise SynapseFailed(f"Synapse is not installed at {PYTHON}: run scripts/bootstrap.sh")
    port = free_port()
    secret = secrets.token_urlsafe(24)
    config = _config(workdir, port, secret)
    console = workdir / "console.log"
    with console.open("wb") as out:
        keys = subprocess.run(
            [str(PYTHON), "-m", "synapse.app.homeserver", "--config-path", str(config),
             "--generate-keys"],
            cwd=workdir, stdout=out, stderr=subprocess.STDOUT, timeout=120, check=False,
        )  # fmt: skip
        if keys.returncode != 0:
            raise SynapseFailed(f"Synapse could not make its signing key:\n{_tail(console)}")
        process = subprocess.Popen(
            [str(PYTHON), "-m", "synapse.app.homeserver", "--config-path", str(config)],
            cwd=workdir, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, url, (console, workdir / "homeserver.log"))
        server = SynapseServer(url, workdir / "admin-token", workdir / "homeserver.log", secret)
        _admin, token = server.register("rooms-admin", admin=True)
        server.admin_token_file.write_text(token + "\n", encoding="utf-8")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def synapse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseServer]:
    """Start one Synapse for the session, with an admin user; stop it at the end.

    A Synapse that does not start fails the test with its log's tail (never a skip).
    """
    try:
        with running_synapse(tmp_path_factory.mktemp("synapse")) as server:
            yield server
    except SynapseFailed as error:
        pytest.fail(str(error), pytrace=False)
