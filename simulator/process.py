"""An agent on simulated hardware in its own process, with a client for its control socket."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from edge.errors import EdgeError
from simulator.readiness import wait_for_output

ROOT = Path(__file__).resolve().parent.parent


class AgentExited(EdgeError, ConnectionError):
    """The agent process ended (or never became ready); the message holds its log's tail."""


class AgentProcess:
    """`python -m simulator.agent` as a subprocess, steered over its control socket.

    With `start`, the agent runs on a stepped clock beginning `at` seconds after `start`;
    requests carrying `at` move it on. `python` is the interpreter to run it with (a
    benchmark passes one whose environment holds only the agent's dependencies).
    """

    def __init__(
        self,
        config: Path,
        home: Path,
        *,
        start: datetime | None = None,
        at: float = 0.0,
        ready_timeout: float = 30.0,
        log_level: str = "info",
        wait: bool = True,
        python: str = sys.executable,
    ) -> None:
        self.config = config
        # A unix socket's path holds at most 107 bytes, and `home` may sit deep (a pytest
        # worker's temporary directory, a long --run-dir): the socket gets a short private
        # directory of its own, removed with it.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="edge-agent-"))
        self.socket_path = self.socket_dir / "control.sock"
        self.log_path = home / "agent.log"
        self._log = self.log_path.open("ab")
        command = [
            python,
            "-m",
            "simulator.agent",
            "--config",
            str(config),
            "--control",
            str(self.socket_path),
            "--log-level",
            log_level,
        ]
        if start is not None:
            command += ["--start", start.isoformat(), "--at", repr(at)]
        self.proc = subprocess.Popen(  # noqa: S603  # our own module, no shell
            command,
            stdout=subprocess.PIPE,
            stderr=self._log,
            cwd=ROOT,
        )
        self.sock: socket.socket | None = None
        if wait:
            self.wait_ready(ready_timeout)

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Wait until the agent is ready (started with wait=False), then connect to it."""
        assert self.proc.stdout is not None
        self._wait_ready(self.proc.stdout, timeout)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(self.socket_path))
        self.reader = self.sock.makefile("rb")

    def __repr__(self) -> str:
        return f"<AgentProcess {self.config.stem} pid={self.proc.pid}>"

    def _wait_ready(self, stdout: IO[bytes], timeout: float) -> None:
        """Wait for the agent's `ready` line (it prints it once its socket answers)."""
        if not wait_for_output(stdout, b"ready\n", timeout):
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait(10)
            self.close_socket()
            raise AgentExited(
                f"agent not ready after {timeout} s (exit {self.proc.returncode}): "
                f"{self.log()[-4000:]}"
            )

    def request(self, **body: Any) -> dict[str, Any]:
        """Send one request and return the agent's reply."""
        if self.sock is None:
            raise AgentExited(f"{self!r} is not ready yet: call wait_ready()")
        self.sock.sendall(json.dumps(body).encode() + b"\n")
        line = self.reader.readline()
        if not line:
            raise AgentExited(f"the agent closed the control socket: {self.log()[-4000:]}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def kill(self) -> None:
        """kill -9, a power cut: no chance to clean up."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.close_socket()

    def terminate(self, timeout: float = 10) -> int:
        """SIGTERM, as systemd stops it; return the exit status.

        An agent still running after `timeout` is killed and AgentExited raised; either way
        nothing of it is left open.
        """
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AgentExited(
                f"{self!r} did not stop within {timeout} s of SIGTERM; killed: {self.log()[-2000:]}"
            ) from None
        finally:
            self.close_socket()

    def close_socket(self) -> None:
        """Close the control connection and the log file; idempotent."""
        if self.sock is not None:
            self.reader.close()
            self.sock.close()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()
        shutil.rmtree(self.socket_dir, ignore_errors=True)

    def log(self) -> str:
        """Return the agent's log."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
