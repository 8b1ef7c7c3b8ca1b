"""A private mosquitto on a free loopback port, started and stopped by its owner.

The simulator's demo and the tests use the real broker (amqtt, the pip-installable one,
refuses MQTT 5). It is ready when it logs "running" on its stdout: no polling of the port.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from pathlib import Path

from edge.errors import EdgeError
from provisioning.broker import limits
from simulator.readiness import keep_draining, wait_for_output

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
STDBUF = shutil.which("stdbuf") or "/usr/bin/stdbuf"  # coreutils
INSTALL = "install it with: sudo apt-get install mosquitto (./demo and ./check do it for you)"


class BrokerError(EdgeError, RuntimeError):
    """mosquitto is missing or did not start; the message says what to do."""


def free_port() -> int:
    """Return a loopback TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """mosquitto with persistence and queues large enough that it never drops QoS 1.

    With `generated` (the edge.conf that `edge-provision broker config` wrote) it runs that
    configuration as it is, its listener bound to loopback. Otherwise it runs our own limits
    and, with `passwords`, binds each client id to its username as every broker of ours does.
    """

    def __init__(
        self,
        workdir: Path,
        acl: str | None = None,
        passwords: Path | None = None,
        port: int | None = None,
        generated: Path | None = None,
    ) -> None:
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        lines = [
            # Started as root, mosquitto would drop to user `mosquitto`, which cannot reach
            # a private temporary directory (persistence, log, password and ACL files).
            "user root",
            f"persistence_location {workdir}/",
            "autosave_interval 1",
            f"log_dest file {self.log}",
            "log_dest stdout",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
        ]
        if generated is not None:
            self.port, settings = _on_loopback(generated.read_text())
            lines += settings
        else:
            self.port = port or free_port()
            lines += [
                f"listener {self.port} 127.0.0.1",
                "persistence true",
                *limits(),
            ]
            if passwords is not None:
                # Listener options: they follow the listener line.
                lines += [
                    "allow_anonymous false",
                    f"password_file {passwords}",
                    "use_username_as_clientid true",
                ]
            else:
                lines.append("allow_anonymous true")
            if acl is not None:
                acl_file = workdir / "acl"
                acl_file.write_text(acl)
                lines.append(f"acl_file {acl_file}")
        self.conf.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<Broker 127.0.0.1:{self.port} {'running' if self.running else 'stopped'}>"

    @property
    def running(self) -> bool:
        """True while the mosquitto process lives."""
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        """Start mosquitto and return once it says it is running."""
        if not Path(MOSQUITTO).exists():
            raise BrokerError(f"mosquitto is not installed; {INSTALL}")
        self.process = subprocess.Popen(  # noqa: S603  # a fixed program, no shell
            # Line-buffered, so "running" reaches the pipe when mosquitto says it.
            [STDBUF, "-oL", MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        if not wait_for_output(self.process.stdout, b" running", timeout_s):
            self.stop(kill=True)
            raise BrokerError(f"mosquitto did not start in {timeout_s} s: {self._tail()}")
        keep_draining(self.process.stdout)  # a chatty broker never blocks on a full pipe

    def stop(self, kill: bool = False) -> None:
        """Stop mosquitto (SIGTERM, or SIGKILL with `kill`); idempotent."""
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(10)
        self.process = None

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else "(no log)"


def _on_loopback(settings: str) -> tuple[int, list[str]]:
    """Return the port of a generated configuration and its lines, the listener on loopback."""
    lines = settings.splitlines()
    for i, line in enumerate(lines):
        if match := re.fullmatch(r"listener (\d+)", line.strip()):
            port = int(match.group(1))
            lines[i] = f"listener {port} 127.0.0.1"
            return port, lines
    raise BrokerError("the generated broker configuration has no `listener PORT` line")
