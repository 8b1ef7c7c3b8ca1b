"""The agent's PIN worker: hashes keyed digits off the loop and queues the answer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from edge.core.events import PinChecked, PinOutcome
from edge.core.outputs import CheckPin
from edge.errors import ClosedError
from edge.pin_hash import check_pin

log = logging.getLogger(__name__)


class PinChecker:
    """Runs `CheckPin` outputs on one worker thread and puts each `PinChecked` on the queue.

    One thread is enough: the core holds one check per reader at a time, so the work is
    bounded by the number of readers, and the loop never waits for a hash.
    """

    def __init__(self, done: Callable[[PinChecked], None]) -> None:
        self._done = done
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pin-check")
        self._closed = False

    def __repr__(self) -> str:
        return f"<PinChecker {'closed' if self._closed else 'open'}>"

    def submit(self, check: CheckPin) -> None:
        """Start checking; the answer arrives through `done` on the worker's thread."""
        if self._closed:
            raise ClosedError("the PIN checker is closed")
        self._pool.submit(self._check, check)

    def close(self) -> None:
        """Finish the check in hand, drop the rest; idempotent."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _check(self, check: CheckPin) -> None:
        try:
            outcome = check_pin(check.pin_hash, check.digits)
        except Exception:  # a hash the worker cannot compute counts as a wrong PIN
            log.exception("PIN check at reader %s failed; counted as wrong", check.reader)
            outcome = PinOutcome.WRONG
        self._done(PinChecked(check.reader, check.card_ref, check.ticket, outcome))
