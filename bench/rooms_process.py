"""What the rooms benches share: a broker with the site's accounts, `edge-rooms run` as a process.

The broker is a private mosquitto on loopback with a password file and the least-privilege
ACL that `edge-provision broker config` generates (provisioning.broker), so every client
below publishes and reads only what its account may. `edge-rooms run` is the installed
console script in its own process, as systemd runs it; a `Sampler` reads its CPU time and
memory from /proc every second.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from provisioning.broker import acl, password_file, password_hash
from simulator.broker import Broker

EDGE_ROOMS = Path(sys.executable).with_name("edge-rooms")
TICKS = os.sysconf("SC_CLK_TCK")
# Loaded by the service's interpreter (`--client-nodelay`): TCP_NODELAY on every TCP socket it
# connects, as `sock.setsockopt(IPPROTO_TCP, TCP_NODELAY, 1)` in rooms.mqtt would do.
NODELAY_SITE = """import socket
_connect = socket.socket.connect
def connect(self, address):
    _connect(self, address)
    if self.family in (socket.AF_INET, socket.AF_INET6) and self.type == socket.SOCK_STREAM:
        self.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
socket.socket.connect = connect
"""


class Accounts:
    """Broker accounts {username: role} with fresh passwords, each in its own file."""

    def __init__(self, workdir: Path, roles: Mapping[str, str]) -> None:
        self.roles = dict(roles)
        self.passwords = {user: secrets.token_urlsafe(18) for user in roles}
        self.dir = workdir / "accounts"
        self.dir.mkdir(parents=True, exist_ok=True)
        for user, password in self.passwords.items():
            self.file(user).write_text(password + "\n")
            self.file(user).chmod(0o600)

    def file(self, user: str) -> Path:
        return self.dir / f"{user}.password"

    def broker(self, workdir: Path, root: str, site: str, *, nodelay: bool = False) -> Broker:
        """Start mosquitto with these accounts and their ACL; return it running."""
        hashes = {user: password_hash(p) for user, p in self.passwords.items()}
        (workdir / "passwords").parent.mkdir(parents=True, exist_ok=True)
        (workdir / "passwords").write_text(password_file(hashes))
        broker = Broker(
            workdir / "broker",
            acl=acl(root, site, self.roles),
            passwords=workdir / "passwords",
        )
        if nodelay:  # an experiment: mosquitto sends each packet at once (no Nagle)
            broker.conf.write_text(broker.conf.read_text() + "set_tcp_nodelay true\n")
        broker.start()
        return broker


def client(port: int, user: str, password: str) -> mqtt.Client:
    """Return a connected MQTT 5 client with its network loop running."""
    connected = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=user, protocol=mqtt.MQTTv5)
    c.username_pw_set(user, password)
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not connected.wait(10):
        raise SystemExit(f"{user} could not connect to the broker on {port}")
    return c


@dataclass
class RoomsProcess:
    """`edge-rooms run --config PATH`, its log in `log_path`."""

    config: Path
    web_port: int
    log_path: Path
    client_nodelay: bool = False
    proc: subprocess.Popen[bytes] = field(init=False)

    def __post_init__(self) -> None:
        self._log = self.log_path.open("ab")
        env = dict(os.environ)
        if self.client_nodelay:
            # An experiment: the service's own sockets send each packet at once (no Nagle).
            site = self.log_path.parent / "nodelay"
            site.mkdir(exist_ok=True)
            (site / "sitecustomize.py").write_text(NODELAY_SITE)
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site), env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(  # our own console script, no shell
            [str(EDGE_ROOMS), "run", "--config", str(self.config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.web_port}", timeout=5)

    def view(self) -> dict[str, Any] | None:
        """Return the floor view's JSON (`GET /api/view`), or None while it does not answer."""
        try:
            answer = self.http.get("/api/view")
        except httpx.TransportError:
            return None
        return answer.json() if answer.status_code == 200 else None

    def wait_view(self, good: Callable[[dict[str, Any]], bool], timeout_s: float) -> None:
        """Poll `/api/view` every 50 ms until `good(view)` holds (set-up only, not measured)."""
        pause = threading.Event()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"edge-rooms run ended ({self.proc.returncode}): {self.tail()}")
            view = self.view()
            if view is not None and good(view):
                return
            pause.wait(0.05)
        raise SystemExit(f"the floor view was not as wanted after {timeout_s} s: {self.tail()}")

    def usage(self) -> tuple[float, int]:
        """Return the process's CPU seconds (user + system) and its RSS in bytes, from /proc."""
        stat = Path(f"/proc/{self.proc.pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()  # the name may hold spaces
        cpu = (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime
        rss = 0
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
        return cpu, rss

    def tail(self) -> str:
        return self.log_path.read_text(errors="replace")[-3000:]

    def stop(self) -> int:
        """SIGTERM, as systemd stops it; return its exit status."""
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode


class Sampler:
    """The service's CPU seconds and RSS, read every second on a thread."""

    def __init__(self, service: RoomsProcess) -> None:
        self.service = service
        self.samples: list[tuple[float, float, int]] = []  # (monotonic, cpu s, rss bytes)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        due = time.monotonic()
        while not self.stop.is_set():
            cpu, rss = self.service.usage()
            self.samples.append((time.monotonic(), cpu, rss))
            due += 1.0
            self.stop.wait(max(0.0, due - time.monotonic()))

    def between(self, begin: float, end: float) -> list[tuple[float, float, int]]:
        return [s for s in self.samples if begin <= s[0] <= end]


def room(view: Mapping[str, Any], zone: str) -> dict[str, Any]:
    """Return one room of a view's JSON."""
    found: dict[str, Any] = next(r for r in view["rooms"] if r["zone"] == zone)
    return found


def payload(message: mqtt.MQTTMessage) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(message.payload)
    return data
