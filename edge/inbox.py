"""The agent's one event queue: every thread puts, only the loop takes.

Built before the agent, the readers and the MQTT link, so each of them gets `put` at
construction and none needs the agent itself.
"""

from __future__ import annotations

import logging
import queue
import threading

from edge.core.events import Event
from edge.link.messages import InboundMessage, SnapshotResult

log = logging.getLogger(__name__)
MAX_INBOUND = 200  # network messages waiting for the loop before more are dropped

Item = Event | InboundMessage | SnapshotResult


class Inbox:
    """A FIFO of events, with network messages bounded so they never starve the doors."""

    def __init__(self, max_inbound: int = MAX_INBOUND) -> None:
        self.events: queue.Queue[Item] = queue.Queue()
        self.max_inbound = max_inbound
        self.inbound_dropped = 0
        self._lock = threading.Lock()
        self._inbound_waiting = 0

    def __repr__(self) -> str:
        return (
            f"<Inbox queued={self.events.qsize()} inbound={self._inbound_waiting} "
            f"dropped={self.inbound_dropped}>"
        )

    def put(self, event: Item) -> None:
        """Queue an event (or an inbound MQTT message) from any thread.

        Network messages are bounded: a flood of them (even from a valid account) is dropped
        beyond `max_inbound` waiting, so door, reader and fire events never queue behind it.
        """
        if isinstance(event, InboundMessage):
            with self._lock:
                if self._inbound_waiting >= self.max_inbound:
                    self.inbound_dropped += 1
                    if self.inbound_dropped == 1 or self.inbound_dropped % 1000 == 0:
                        log.warning(
                            "dropped %d network messages: too many waiting", self.inbound_dropped
                        )
                    return
                self._inbound_waiting += 1
        self.events.put_nowait(event)

    def take(self, timeout_s: float, batch_max: int) -> list[Item]:
        """Return up to `batch_max` queued events, waiting at most `timeout_s` for the first."""
        batch: list[Item] = []
        try:
            batch.append(self.events.get(timeout=timeout_s))
            while len(batch) < batch_max:
                batch.append(self.events.get_nowait())
        except queue.Empty:
            pass
        inbound = sum(isinstance(e, InboundMessage) for e in batch)
        if inbound:
            with self._lock:
                self._inbound_waiting -= inbound
        return batch
