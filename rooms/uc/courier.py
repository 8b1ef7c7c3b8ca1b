"""One UC server's outbox: the newest state per person, sent on the courier's own thread.

The service's step never waits on a UC server: the tracker hands each state change to a
courier, which keeps only the newest state per person and sends it in the background. The
service's clock drives everything else through `tick(at)`: the refresh each server needs
before a status lapses, and the retry of a failed send. A failing server is logged once when it
fails and once when it heals, and probed with one send per retry until then; a person the
server refuses is logged as a count, never by name or UC id; a person the server asks to wait
(UcLaterError) waits alone while the others are sent. A person is held while this service may
have set a status for them that is not "away" (or one from an earlier run may remain: `clear`).

The thread starts with `start()`. `close()` first sets every held person AWAY, waiting at most
`close_s`, then stops the thread; whoever could not be cleared stays in `held_ids()`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from rooms.uc.port import PresenceAdapter, UcError, UcLaterError, UcPersonError
from rooms.uc.states import UcState

log = logging.getLogger(__name__)

RETRY_S = 30.0
"""How long a failed send waits before a tick tries it again."""
CLOSE_S = 5.0
"""How long close() waits for the AWAY sends to every held person."""


@dataclass(slots=True)
class _Entry:
    want: UcState
    queued_at: datetime
    sent: UcState | None = None  # the last state the server confirmed
    sent_at: datetime | None = None
    retry_at: datetime | None = None
    queued: bool = False
    sending: bool = False
    refused: bool = False  # the server refused this person: not retried until `want` changes
    stale: bool = False  # a status of ours from an earlier run may be at the server


class Courier:
    """Send one adapter's updates on a thread of its own, newest state per UC id."""

    def __init__(
        self, adapter: PresenceAdapter, retry_s: float = RETRY_S, close_s: float = CLOSE_S
    ) -> None:
        self.adapter = adapter
        self.retry = timedelta(seconds=retry_s)
        self.close_s = close_s
        self.sent = 0  # updates the server confirmed
        self.failures = 0  # sends that failed (server or person)
        self._cond = threading.Condition()
        self._entries: dict[str, _Entry] = {}
        self._queue: dict[str, None] = {}  # insertion-ordered set of UC ids to send
        self._in_flight = 0
        self._failing = False
        self._refused = 0
        self._closed = False
        self._thread = threading.Thread(
            target=self._run, name=f"uc-courier {adapter.name}", daemon=True
        )

    def start(self) -> None:
        """Start sending on the courier's own thread; idempotent."""
        with self._cond:
            self._check_open()
            if not self._thread.is_alive():
                self._thread.start()

    def __repr__(self) -> str:
        state = "failing" if self._failing else "ok"
        return f"<Courier {self.adapter.name} {state} people={len(self._entries)}>"

    @property
    def failing(self) -> bool:
        """Whether the server's last answer was a failure."""
        return self._failing

    def want(self, uc_id: str, state: UcState, at: datetime) -> None:
        """Make `state` the person's status; sent unless the server already has it from us.

        AWAY for a person this service never set (or already cleared) sends nothing.
        """
        with self._cond:
            self._check_open()
            entry = self._entries.get(uc_id)
            if entry is None:
                if state is UcState.AWAY:
                    return
                entry = self._entries[uc_id] = _Entry(state, at)
            elif (
                state is UcState.AWAY
                and entry.sent in (None, UcState.AWAY)
                and not entry.sending  # nothing of ours is at the server
                and not entry.stale
            ):
                self._queue.pop(uc_id, None)
                del self._entries[uc_id]
                return
            if entry.want is not state:
                entry.refused, entry.retry_at = False, None
            entry.want = state
            if entry.sent is not state and not entry.refused:
                self._enqueue(uc_id, entry, at)

    def clear(self, uc_id: str, at: datetime) -> None:
        """Set AWAY a person a status may remain for from an earlier run (sent even if idle)."""
        with self._cond:
            self._check_open()
            entry = self._entries.get(uc_id)
            if entry is None:
                entry = self._entries[uc_id] = _Entry(UcState.AWAY, at, stale=True)
                self._enqueue(uc_id, entry, at)

    def held_ids(self) -> set[str]:
        """Return the UC ids a status of this service may be set for at the server."""
        with self._cond:
            return set(self._entries)

    def tick(self, at: datetime) -> None:
        """Queue the refreshes and retries due at `at` (while failing: one probe)."""
        with self._cond:
            self._check_open()
            if self._failing and (self._queue or self._in_flight):
                return  # a probe is on its way: the rest wait for its answer
            for uc_id, entry in self._entries.items():
                if entry.queued or entry.sending or entry.refused or not self._due(entry, at):
                    continue
                self._enqueue(uc_id, entry, at)
                if self._failing:
                    return

    def idle(self, timeout_s: float) -> bool:
        """Wait until nothing is queued or being sent; return False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._in_flight, timeout_s)

    def state_of(self, uc_id: str) -> UcState | None:
        """Return the state the server last confirmed from us (None: nothing of ours is held)."""
        with self._cond:
            entry = self._entries.get(uc_id)
            return None if entry is None else entry.sent

    def held(self) -> int:
        """Return how many people this courier holds a status for."""
        with self._cond:
            return len(self._entries)

    def close(self) -> None:
        """Set every held person AWAY (waiting at most `close_s`), stop the thread and the
        adapter; idempotent."""
        with self._cond:
            if self._closed:
                return
            started = self._thread.is_alive()
            now = max((e.queued_at for e in self._entries.values()), default=None)
            for uc_id, entry in list(self._entries.items()):
                entry.want, entry.refused, entry.retry_at = UcState.AWAY, False, None
                if entry.sent in (None, UcState.AWAY) and not (entry.sending or entry.stale):
                    self._queue.pop(uc_id, None)  # nothing of ours is at the server
                    del self._entries[uc_id]
                elif now is not None and not entry.queued and not entry.sending:
                    self._enqueue(uc_id, entry, now)
            if started:
                self._cond.wait_for(lambda: not self._queue and not self._in_flight, self.close_s)
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
        if started:
            # A send stuck on a server that stopped answering is left behind (a daemon thread).
            self._thread.join(timeout=max(self.close_s, 1.0))
            if self._thread.is_alive():
                log.warning("UC presence %s: a send is still waiting; closing", self.adapter.name)
        self.adapter.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")

    def _due(self, entry: _Entry, at: datetime) -> bool:
        if entry.sent is not entry.want:
            return entry.retry_at is None or at >= entry.retry_at
        every = self.adapter.refresh_s(entry.want)
        if every is None or entry.sent_at is None:
            return False
        return at >= entry.sent_at + timedelta(seconds=every)

    def _enqueue(self, uc_id: str, entry: _Entry, at: datetime) -> None:
        entry.queued, entry.queued_at = True, at
        self._queue[uc_id] = None
        self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                uc_id = next(iter(self._queue))
                del self._queue[uc_id]
                entry = self._entries[uc_id]
                entry.queued, entry.sending = False, True
                state, at = entry.want, entry.queued_at
                self._in_flight += 1
            error = self._send(uc_id, state)
            with self._cond:
                self._in_flight -= 1
                entry.sending = False
                self._settle(uc_id, entry, state, at, error)
                self._cond.notify_all()

    def _send(self, uc_id: str, state: UcState) -> Exception | None:
        try:
            self.adapter.publish(uc_id, state)
        except Exception as error:  # an adapter's bug must not end the thread
            return error
        return None

    def _settle(
        self, uc_id: str, entry: _Entry, state: UcState, at: datetime, error: Exception | None
    ) -> None:
        if error is None:
            self.sent += 1
            entry.sent, entry.sent_at, entry.retry_at = state, at, None
            entry.stale = False
            if self._failing:
                self._failing = False
                log.info("UC presence %s: working again", self.adapter.name)
            if entry.want is UcState.AWAY and state is UcState.AWAY and not entry.queued:
                del self._entries[uc_id]  # cleared: nothing of theirs is held
            return
        self.failures += 1
        why = _scrubbed(error, uc_id)
        if isinstance(error, UcLaterError):  # this person alone waits; the others go on
            entry.retry_at = at + timedelta(seconds=error.retry_after_s)
            log.info("UC presence %s: a person waits (%s)", self.adapter.name, why)
            return
        if isinstance(error, UcPersonError):
            entry.refused = True
            self._refused += 1
            log.warning(
                "UC presence %s: a person was refused (%s); %d refusal(s) so far",
                self.adapter.name,
                why,
                self._refused,
            )
            return
        entry.retry_at = at + self.retry
        for other in self._queue:  # the rest wait with it: each would fail the same way
            waiting = self._entries[other]
            waiting.queued, waiting.retry_at = False, at + self.retry
        self._queue.clear()
        if not self._failing:
            self._failing = True
            waiting_count = sum(e.sent is not e.want for e in self._entries.values())
            log.warning(
                "UC presence %s: failing (%s); %d update(s) wait, retried every %.0f s",
                self.adapter.name,
                why,
                waiting_count,
                self.retry.total_seconds(),
            )


def _scrubbed(error: Exception, uc_id: str) -> str:
    """Return an adapter error's text without the person's UC id (adapters leave it out)."""
    if not isinstance(error, UcError):
        return f"unexpected {type(error).__name__} in the adapter"  # its text may hold anything
    text = str(error)
    for form in (uc_id, uc_id.replace("@", "%40").replace(":", "%3A")):
        text = text.replace(form, "<person>")
    return text[:300]
