"""The operating system's side: the real clock, clock synchronisation, systemd notification."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import socket
import time
from datetime import UTC, datetime

from edge.core.clock import Instant

log = logging.getLogger(__name__)

_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised
_timex_buffer = ctypes.create_string_buffer(512)  # struct timex is 208 bytes on 64-bit Linux


class SystemClock:
    """The machine's monotonic and wall clocks."""

    def __repr__(self) -> str:
        return "<SystemClock>"

    def now(self) -> Instant:
        """Return the current instant."""
        return Instant(time.monotonic(), datetime.now(UTC))


def clock_synchronised() -> bool:
    """Return True if the kernel says NTP has synchronised the clock (adjtimex(2))."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:  # pragma: no cover - not Linux
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    ctypes.memset(_timex_buffer, 0, ctypes.sizeof(_timex_buffer))  # modes = 0: read only
    state = libc.adjtimex(_timex_buffer)
    return bool(state >= 0 and state != _TIME_ERROR)


class SystemdNotifier:
    """Tells systemd we are ready, alive (watchdog) and stopping; silent outside systemd."""

    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET")
        usec = os.environ.get("WATCHDOG_USEC")
        self.watchdog_s = int(usec) / 1e6 if usec and usec.isdigit() else None
        self._last_ping = 0.0

    def __repr__(self) -> str:
        return f"<SystemdNotifier {self.address or 'off'} watchdog={self.watchdog_s}>"

    def notify(self, message: str) -> None:
        """Send one notification (READY=1, STOPPING=1, STATUS=…)."""
        if not self.address:
            return
        address = "\0" + self.address[1:] if self.address.startswith("@") else self.address
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), address)
        except OSError as exc:
            log.warning("systemd notification %r failed: %s", message, exc)

    def ping(self, now: float) -> None:
        """Pet the watchdog, at most twice per watchdog period."""
        if self.watchdog_s and now - self._last_ping >= self.watchdog_s / 2:
            self._last_ping = now
            self.notify("WATCHDOG=1")
