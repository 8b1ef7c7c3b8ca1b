"""Helpers for the nfcpy reader tests: an emulated card process, an event recorder, a clock."""

from __future__ import annotations

import queue
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from edge.core.events import CardPresented, Event, ReaderStatusChanged

ROOT = Path(__file__).resolve().parents[3]


def free_udp_port() -> int:
    """Return a free loopback udp port that has no name in /etc/services (nfcpy needs that)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        try:
            socket.getservbyport(port, "tcp")
        except OSError:
            return port


class EmulatedCard:
    """A `simulator.nfc_card` process: in the field from `ready` until `remove()` or hold_s."""

    def __init__(self, port: int, *card_args: str, hold_s: float | None = None) -> None:
        args = [sys.executable, "-m", "simulator.nfc_card", "--port", str(port), *card_args]
        if hold_s is not None:
            args += ["--hold-s", str(hold_s)]
        self.proc = subprocess.Popen(
            args, cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip
        self._lines: queue.Queue[tuple[str, float]] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            self.ready_at = self.wait_for("ready")
        except BaseException:
            self.__exit__(None, None, None)
            raise

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put((line.strip(), time.monotonic()))
        self._lines.put(("eof", time.monotonic()))

    def wait_for(self, word: str, timeout_s: float = 10.0) -> float:
        """Wait for the card to print `word`; return when (monotonic, as the card saw it)."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                line, seen = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"card never said {word!r}") from None
            if line == "eof":
                assert self.proc.stderr is not None
                raise AssertionError(f"card exited before {word!r}: {self.proc.stderr.read()}")
            said, _, value = line.partition(" ")
            if said == word:
                return float(value) if value else seen

    def remove(self) -> None:
        """Take the card out of the field and wait until its process has gone."""
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.write("leave\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
        self.proc.wait(timeout=10)

    def __enter__(self) -> EmulatedCard:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        # The process is gone, so its stdout ends: let the reading thread see that before the
        # pipe is closed under it (closing first fails the thread, and so the test).
        self._reader.join(timeout=10)
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                pipe.close()


class Recorder:
    """The agent's queue, as the reader sees it: records events and when they came."""

    def __init__(self) -> None:
        self.events: list[tuple[Event, float]] = []
        self._changed = threading.Condition()

    def __call__(self, event: Event) -> None:
        with self._changed:
            self.events.append((event, time.monotonic()))
            self._changed.notify_all()

    @property
    def taps(self) -> list[CardPresented]:
        """Every CardPresented so far."""
        return [e for e, _ in self.events if isinstance(e, CardPresented)]

    @property
    def statuses(self) -> list[ReaderStatusChanged]:
        """Every ReaderStatusChanged so far."""
        return [e for e, _ in self.events if isinstance(e, ReaderStatusChanged)]

    def wait_for(self, done: Callable[[Recorder], bool], timeout_s: float = 10.0) -> bool:
        """Wait until `done(self)` holds; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: done(self), timeout_s)


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds
