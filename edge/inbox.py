"""The agent's one event queue: every thread puts, only the loop takes.

Built before the agent, the readers and the MQTT link, so each of them gets `put` at
construction and none needs the agent itself. What waits is kept apart so nothing holds
up what matters more:

* the device's own events (readers, doors, fire inputs, keypads, snapshot results) are
  never dropped and always taken first;
* commands and credential snapshots from the network wait at most `max_inbound`; more are
  dropped;
* peers' crossings and positions digests wait in a lane per sending device, taken round
  robin, at most `peer_batch` per take and after everything else: a sender has at most
  `max_per_peer` crossings waiting, and a digest replaces that sender's digest of the same
  zone still waiting. A bursting or hostile peer drops only its own messages, never another
  peer's, a command or a door event. Past `max_peers_waiting` crossings in all, the longest
  lane gives way.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from edge.core.events import Event
from edge.link import topics
from edge.link.messages import InboundMessage, SnapshotResult

log = logging.getLogger(__name__)
MAX_INBOUND = 200  # commands and snapshots waiting for the loop before more are dropped
# A replay burst of one peer's backlog: about 1.5 MB of crossings (5 MB at their size limit).
MAX_PER_PEER = 5_000
MAX_PEERS_WAITING = 50_000  # crossings of every peer together
MAX_DIGEST_ZONES = 16  # digests waiting per peer (one per zone it serves)
MAX_SENDERS = 256  # peers with messages waiting
PEER_BATCH = 16  # peer messages per take, after the device's events and commands
LOG_EVERY_S = 60.0

Item = Event | InboundMessage | SnapshotResult


class _PeersWaiting:
    """The mark on the queue that peers' messages wait in their lanes."""

    def __repr__(self) -> str:
        return "<peers waiting>"


PEERS_WAITING: Final = _PeersWaiting()


@dataclass
class _Lane:
    """One sending device's waiting crossings and digests (by zone)."""

    crossings: deque[InboundMessage] = field(default_factory=deque)
    digests: dict[str, InboundMessage] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.crossings or self.digests)

    def pop(self) -> InboundMessage:
        if self.digests:
            return self.digests.pop(next(iter(self.digests)))
        return self.crossings.popleft()


class _Drops:
    """A count of dropped messages, logged at most once per `every_s`."""

    def __init__(self, what: str, now: Callable[[], float], every_s: float = LOG_EVERY_S):
        self.what, self.now, self.every_s = what, now, every_s
        self.count = 0
        self._unlogged = 0
        self._next = 0.0

    def drop(self, reason: str) -> None:
        self.count += 1
        self._unlogged += 1
        now = self.now()
        if now >= self._next:
            log.warning("dropped %d %s: %s", self._unlogged, self.what, reason)
            self._unlogged = 0
            self._next = now + self.every_s


class Inbox:
    """A FIFO of events, with network messages bounded so they never starve the doors."""

    def __init__(
        self,
        max_inbound: int = MAX_INBOUND,
        max_per_peer: int = MAX_PER_PEER,
        peer_batch: int = PEER_BATCH,
        max_peers_waiting: int = MAX_PEERS_WAITING,
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.events: queue.Queue[Item | _PeersWaiting] = queue.Queue()
        self.max_inbound = max_inbound
        self.max_per_peer = max_per_peer
        self.peer_batch = peer_batch
        self.max_peers_waiting = max_peers_waiting
        self._lock = threading.Lock()
        self._inbound_waiting = 0
        self._lanes: dict[str, _Lane] = {}  # senders in round-robin order
        self._crossings_waiting = 0
        self._marked = False  # PEERS_WAITING is on the queue (or about to be)
        self._inbound_drops = _Drops("network messages (commands, snapshots)", now)
        self._peer_drops = _Drops("peers' messages", now)

    def __repr__(self) -> str:
        return (
            f"<Inbox queued={self.events.qsize()} inbound={self._inbound_waiting} "
            f"peers={len(self._lanes)} dropped={self.inbound_dropped} "
            f"peers_dropped={self.peers_dropped}>"
        )

    @property
    def inbound_dropped(self) -> int:
        """Commands and snapshots dropped because too many waited."""
        return self._inbound_drops.count

    @property
    def peers_dropped(self) -> int:
        """Peers' crossings and digests dropped because their lane was full."""
        return self._peer_drops.count

    def put(self, event: Item) -> None:
        """Queue an event (or an inbound MQTT message) from any thread; see the module."""
        if isinstance(event, InboundMessage):
            levels = topics.peer_levels(event.topic)
            if levels is not None:
                self._put_peer(event, *levels)
                return
            with self._lock:
                if self._inbound_waiting >= self.max_inbound:
                    self._inbound_drops.drop(f"{self.max_inbound} waiting")
                    return
                self._inbound_waiting += 1
        self.events.put_nowait(event)

    def _put_peer(self, message: InboundMessage, sender: str, branch: str, zone: str) -> None:
        with self._lock:
            lane = self._lanes.get(sender)
            if lane is None:
                if len(self._lanes) >= MAX_SENDERS:
                    self._peer_drops.drop(f"{MAX_SENDERS} peers waiting")
                    return
                lane = self._lanes[sender] = _Lane()
            if branch == "positions":
                if lane.digests.pop(zone, None) is None and len(lane.digests) >= MAX_DIGEST_ZONES:
                    self._peer_drops.drop(f"{MAX_DIGEST_ZONES} digests of {sender[:64]} waiting")
                    return
                lane.digests[zone] = message  # the newest, at the back
            elif not self._room_for(sender, lane):
                return
            else:
                lane.crossings.append(message)
                self._crossings_waiting += 1
            mark, self._marked = not self._marked, True
        if mark:
            self.events.put_nowait(PEERS_WAITING)

    def _room_for(self, sender: str, lane: _Lane) -> bool:
        # Under the lock. A full lane drops its own sender's; past the total, the longest
        # lane (the burst) loses its oldest, unless it is this sender's.
        if len(lane.crossings) >= self.max_per_peer:
            self._peer_drops.drop(f"{self.max_per_peer} crossings of {sender[:64]} waiting")
            return False
        if self._crossings_waiting >= self.max_peers_waiting:
            longest = max(self._lanes, key=lambda s: len(self._lanes[s].crossings))
            if len(self._lanes[longest].crossings) <= len(lane.crossings):
                self._peer_drops.drop(f"{self.max_peers_waiting} peers' crossings waiting")
                return False
            self._lanes[longest].crossings.popleft()
            self._crossings_waiting -= 1
            if not self._lanes[longest]:
                del self._lanes[longest]
            self._peer_drops.drop(f"{self.max_peers_waiting} peers' crossings waiting")
        return True

    def take(self, timeout_s: float, batch_max: int) -> list[Item]:
        """Return up to `batch_max` queued events, waiting at most `timeout_s` for the first.

        The device's events and commands come first, then at most `peer_batch` of the
        peers' messages.
        """
        batch: list[Item] = []
        peers = False
        try:
            item = self.events.get(timeout=timeout_s)
            while True:
                if isinstance(item, _PeersWaiting):
                    peers = True
                else:
                    batch.append(item)
                if len(batch) >= batch_max:
                    break
                item = self.events.get_nowait()
        except queue.Empty:
            pass
        inbound = sum(isinstance(e, InboundMessage) for e in batch)
        if inbound:
            with self._lock:
                self._inbound_waiting -= inbound
        if peers:
            with self._lock:
                batch += self._take_peers(min(self.peer_batch, batch_max - len(batch)))
                again = self._marked = bool(self._lanes)
            if again:
                self.events.put_nowait(PEERS_WAITING)
        return batch

    def _take_peers(self, room: int) -> list[Item]:
        # Under the lock: one message per sender in turn, each sender then to the back.
        taken: list[Item] = []
        while room > 0 and self._lanes:
            sender = next(iter(self._lanes))
            lane = self._lanes.pop(sender)
            before = len(lane.crossings)
            taken.append(lane.pop())
            self._crossings_waiting -= before - len(lane.crossings)
            room -= 1
            if lane:
                self._lanes[sender] = lane
        return taken
