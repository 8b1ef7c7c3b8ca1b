"""An agent on simulated hardware in its own process, steered over its control socket."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .agent_fixtures import SimDevice


class AgentProcess:
    """`python -m simulator.agent` as a subprocess, with a client for its control socket."""

    def __init__(self, device: SimDevice, tmp: Path) -> None:
        self.socket_path = tmp / "control.sock"
        self.log_path = tmp / "agent.log"
        self.socket_path.unlink(missing_ok=True)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "simulator.agent",
                "--config",
                str(device.config),
                "--control",
                str(self.socket_path),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )
        self.sock = self._connect(timeout=20)
        self.reader = self.sock.makefile("rb")

    def _connect(self, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agent exited with {self.proc.returncode}: {self.log()}")
            try:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.connect(str(self.socket_path))
                return sock
            except OSError:
                sock.close()
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"no control socket after {timeout} s: {self.log()}"
                    ) from None
                # Polling for the socket to appear: a condition with a deadline, not a fixed sleep.
                time.sleep(0.02)

    def request(self, **body: Any) -> dict[str, Any]:
        self.sock.sendall(json.dumps(body).encode() + b"\n")
        line = self.reader.readline()
        if not line:
            raise ConnectionError("the agent closed the control socket")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def kill(self) -> None:
        """kill -9: no chance to clean up."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.close_socket()

    def terminate(self, timeout: float = 10) -> int:
        """SIGTERM, as systemd stops it; return the exit status."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        self.close_socket()
        return code

    def close_socket(self) -> None:
        self.reader.close()
        self.sock.close()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
