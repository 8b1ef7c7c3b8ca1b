"""Wait for a child process to say it is ready on its output: no polling, no sleeping."""

from __future__ import annotations

import os
import selectors
import threading
import time
from typing import IO, BinaryIO


def wait_for_output(
    stream: IO[bytes], marker: bytes, timeout_s: float, copy_to: BinaryIO | None = None
) -> bool:
    """Read `stream` until `marker` appears; False on end of output or after `timeout_s`.

    Reads the file descriptor directly: a buffered readline() could pull the marker into
    Python's buffer while select() waits on the descriptor for data that already came.
    """
    fd = stream.fileno()
    seen = b""
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not selector.select(remaining):
                return False
            chunk = os.read(fd, 65536)
            if not chunk:
                return False
            if copy_to is not None:
                copy_to.write(chunk)
                copy_to.flush()
            seen = (seen + chunk)[-(len(marker) + 65536) :]
            if marker in seen:
                return True


def keep_draining(stream: IO[bytes], copy_to: BinaryIO | None = None) -> threading.Thread:
    """Go on reading a child's output on a thread, so a chatty child never blocks.

    The thread owns `stream` from here on and closes it at the end of the output.
    """

    def drain() -> None:
        with stream:
            fd = stream.fileno()
            while chunk := os.read(fd, 65536):
                if copy_to is not None:
                    copy_to.write(chunk)
                    copy_to.flush()

    thread = threading.Thread(target=drain, daemon=True, name="drain-output")
    thread.start()
    return thread
