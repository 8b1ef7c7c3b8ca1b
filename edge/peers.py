"""Peers' crossings applied on the loop's thread: the anti-passback positions a zone shares.

The MQTT link only queues what arrives. Here a crossing is judged (`edge.link.crossings`),
then merged into the stored positions and the core's tracker in one store transaction: the
later crossing by (ts, device, seq) wins, so a duplicate or a late one changes nothing. A
decision never waits for any of this; it reads the tracker as it stands.

A peer's crossing that contradicts one of this device's own (the card left another zone
than the one this device saw it enter: it entered twice without leaving, typically while
the gates could not hear each other) raises `anti_passback_conflict`, written to the outbox
in the merge's transaction. Only the device whose crossing is contradicted reports it.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable

from edge.core.antipassback import AntiPassbackTracker, Stamp
from edge.core.clock import Instant
from edge.core.outputs import EventKind, EventRecord, Output, record
from edge.link import topics
from edge.link.crossings import PeerCrossing, Refused, from_the_future, judge
from edge.link.messages import InboundMessage
from edge.link.positions import TAKE_EVERY_S, judge_digest
from edge.store import Store, outbox, state

log = logging.getLogger(__name__)
LOG_EVERY_S = 60.0  # one line per minute at most for dropped crossings, with the count
MAX_ASIDE = 10_000  # cards with contradictions learnt from digests, awaiting their crossings
MAX_SENDERS = 10_000  # (sender, zone) pairs whose digest bucket is kept
TAKE_BURST = 3  # live digests of one sender and zone taken at once before the rate applies


class DropLog:
    """Logs the first dropped message and then at most one line per `every_s`, with a count."""

    def __init__(self, every_s: float = LOG_EVERY_S, now: Callable[[], float] = time.monotonic):
        self.every_s = every_s
        self.now = now
        self.dropped = 0
        self._unlogged = 0
        self._next = 0.0

    def __repr__(self) -> str:
        return f"<DropLog dropped={self.dropped}>"

    def drop(self, what: str, reason: str) -> None:
        """Count one dropped message; log it if the last line is old enough."""
        self.dropped += 1
        self._unlogged += 1
        now = self.now()
        if now < self._next:
            return
        log.warning("dropped %d %s; latest: %s", self._unlogged, what, reason)
        self._unlogged = 0
        self._next = now + self.every_s


class PeerCrossings:
    """Merges the crossings of the other devices of this device's zones."""

    def __init__(
        self,
        *,
        root: str,
        site: str,
        device: str,
        zones: frozenset[str],
        tracker: AntiPassbackTracker,
        store: Store,
        clock_synced: Callable[[], bool] = lambda: True,
    ) -> None:
        self.root, self.site, self.device = root, site, device
        self.zones = zones
        self.tracker = tracker
        self.store = store
        self.clock_synced = clock_synced  # stamped on the conflicts it records
        self.applied = 0
        self.conflicts = 0
        self.drops = DropLog()
        # card_ref -> {stamp: the conflict a digest's entry showed}, until its crossing comes
        self._aside: dict[str, dict[Stamp, EventRecord]] = {}
        self._taken: dict[tuple[str, str], tuple[float, float]] = {}  # -> (tokens, when)

    def __repr__(self) -> str:
        return (
            f"<PeerCrossings {self.device} zones={sorted(self.zones)} applied={self.applied} "
            f"dropped={self.drops.dropped}>"
        )

    def handle(self, message: InboundMessage, now: Instant) -> list[Output]:
        """Judge and merge one inbound crossing or positions digest; never raises for what a
        peer sent."""
        if topics.positions_levels(message.topic, self.root, self.site) is not None:
            self._digest(message, now)
            return []
        verdict = judge(
            message.topic, message.payload, self.root, self.site, self.device, self.zones
        )
        if isinstance(verdict, PeerCrossing):
            verdict = from_the_future(verdict, now.utc) or verdict
        if isinstance(verdict, Refused):
            self.drops.drop("peer crossings", f"{verdict.reason} on {message.topic[:200]!r}")
        elif isinstance(verdict, PeerCrossing):
            self.merge(verdict, now)
        return []

    def _digest(self, message: InboundMessage, now: Instant) -> None:
        """Merge every entry of a digest that passes as a whole; skip what is known already."""
        levels = topics.positions_levels(message.topic, self.root, self.site)
        # A retained digest comes only when this device subscribes (it connected): never
        # limited, so the answers to its hello that follow at once are taken too.
        live = levels is not None and levels[0] != self.device and not message.retained
        if live and levels is not None and not self._take(levels, now.mono):
            self.drops.drop("peer digests", f"more than one a {TAKE_EVERY_S:g} s")
            return
        where = (self.root, self.site, self.device)
        verdict = judge_digest(
            message.topic, message.payload, message.retained, where, self.zones, now.utc
        )
        if isinstance(verdict, Refused):
            self.drops.drop("peer digests", f"{verdict.reason} on {message.topic[:200]!r}")
            return
        news = []
        for crossing in verdict or ():
            held = self.tracker.stamp(crossing.card_ref)
            position = self.tracker.position(crossing.card_ref) or ""
            # A digest mostly repeats what is known (the tracker's order, and this device's
            # own crossings, held with seq 0): those cost nothing.
            if held is None or (
                held[:2] != crossing.stamp[:2]
                and (crossing.stamp, crossing.to_zone) > (held, position)
            ):
                news.append(crossing)
        if news:
            # A digest holds each card's latest crossing only: one that left another zone
            # than the one this device saw it enter may have gone out and come back in
            # between, so a digest never raises a conflict (the crossings themselves do).
            self.merge_all(news, now, report=False)

    def _take(self, key: tuple[str, str], mono: float) -> bool:
        """Take one live digest of (sender, zone) from its bucket; False if it is empty.

        A bucket holds TAKE_BURST digests and gains one every TAKE_EVERY_S: an honest gate's
        digests (a round every 2 s at most) always pass; a flood passes one a second.
        """
        tokens, last = self._taken.get(key, (float(TAKE_BURST), mono))
        tokens = min(float(TAKE_BURST), tokens + (mono - last) / TAKE_EVERY_S)
        if key not in self._taken and len(self._taken) >= MAX_SENDERS:
            self._taken.clear()  # a flood of made-up names: forget them all
        if tokens < 1.0:
            self._taken[key] = (tokens, mono)
            return False
        self._taken[key] = (tokens - 1.0, mono)
        return True

    def merge(self, crossing: PeerCrossing, now: Instant) -> bool:
        """Merge one judged crossing; return whether it moved the card (False: an older or
        repeated crossing, or the store failed)."""
        return bool(self.merge_all([crossing], now))

    def merge_all(self, crossings: list[PeerCrossing], now: Instant, report: bool = True) -> int:
        """Merge judged crossings (one per card) into the store and the tracker in one
        transaction; return how many moved a card.

        `report`: these are crossings as their gate sent them, so a contradiction of this
        device's own crossing is recorded as a conflict at `now`. A digest's entries are
        not (`report=False`): the card may have gone out and come back in between. A
        contradiction a digest brings is kept aside instead, and reported when the crossing
        itself arrives (a cut-off gate's backlog follows its digest), so learning a position
        from a digest first does not hide the conflict.

        One transaction for a whole digest: a gate relearning thousands of positions holds
        its loop for one commit, not one per card.
        """
        # A crossing from before its zone's forgiveness here is stale: it is not merged.
        fresh = [c for c in crossings if not self.tracker.forgotten(c.to_zone, c.stamp)]
        if not fresh:
            return 0
        found = [(c, self._conflict(c, now)) for c in fresh]
        # (crossing, the conflict it raises if it moves the card, one confirmed regardless)
        items = [(c, x, self._confirmed(c)) if report else (c, None, None) for c, x in found]
        alarming = any(x is not None or y is not None for _, x, y in items)
        db = self.store.db
        moved: list[PeerCrossing] = []
        raised: list[EventRecord] = []
        try:
            # No fsync of its own: the merge reaches the disk with the next event's fsync'd
            # commit (WAL frames are synced in order). A power cut before it loses only
            # positions heard since, which the device could not ask for again anyway; an
            # fsync per peer crossing would hold taps up behind the peers' traffic. A conflict
            # (rare) is an alarm, and goes to disk at once like every other.
            level = db.execute("PRAGMA synchronous").fetchone()[0]
            if not alarming:
                db.execute("PRAGMA synchronous=NORMAL")
            try:
                with self.store.transaction() as db:
                    for crossing, conflict, confirmed in items:
                        if state.merge_position(
                            db,
                            crossing.card_ref,
                            crossing.to_zone,
                            crossing.stamp,
                            own=False,
                            origin=(crossing.from_zone or None, None),
                        ):
                            moved.append(crossing)
                            if conflict is not None:
                                raised.append(conflict)
                        elif confirmed is not None:  # recorded now, when it is confirmed
                            data = confirmed.data
                            raised.append(
                                record(EventKind.ALARM, confirmed.type, now.utc, **data).event
                            )
                    if raised:
                        outbox.append(db, self.device, raised, self.clock_synced())
            finally:
                db.execute(f"PRAGMA synchronous={int(level)}")
        except sqlite3.Error as exc:
            # A full or failing disk: the positions stay as they were, in memory as on disk.
            self.drops.drop("peer crossings", f"the store failed ({exc})")
            return 0
        # Only once committed, so memory never runs ahead of the store.
        for crossing in moved:
            self.tracker.merge(crossing.card_ref, crossing.to_zone, crossing.stamp)
            self.applied += 1
        if not report:
            contradicted = {id(c): x for c, x in found if x is not None}
            for crossing in moved:
                if id(crossing) in contradicted:
                    self._set_aside(crossing, contradicted[id(crossing)])
        for conflict in raised:
            self.conflicts += 1
            log.warning(
                "anti-passback conflict in zone %s with %s",
                conflict.data["zone"],
                conflict.data["peer"],
            )
        if log.isEnabledFor(logging.DEBUG):
            done = {id(c) for c in moved}
            for crossing in fresh:
                _, device, seq = crossing.stamp
                verdict = "applied" if id(crossing) in done else "already known"
                log.debug("peer crossing %s:%d %s", device, seq, verdict)
        return len(moved)

    def _set_aside(self, crossing: PeerCrossing, conflict: EventRecord) -> None:
        """Keep a digest's contradiction until its crossing arrives (the oldest give way)."""
        self._aside.setdefault(crossing.card_ref, {})[crossing.stamp] = conflict
        while len(self._aside) > MAX_ASIDE:
            del self._aside[next(iter(self._aside))]

    def _confirmed(self, crossing: PeerCrossing) -> EventRecord | None:
        """Return the contradiction set aside for this very crossing, if it still stands.

        A crossing of the card that left the zone this device saw it enter, between this
        device's own crossing and the one set aside, shows the card went out before it came
        back (its gate's backlog comes in order): that contradiction is withdrawn.
        """
        held = self._aside.get(crossing.card_ref)
        if not held:
            return None
        confirmed = held.pop(crossing.stamp, None)
        for stamp, conflict in list(held.items()):
            own_ts, zone = conflict.data["own_ts"], conflict.data["zone"]
            if crossing.from_zone == zone and own_ts < crossing.stamp[0] and crossing.stamp < stamp:
                del held[stamp]
        if not held:
            del self._aside[crossing.card_ref]
        return confirmed

    def _conflict(self, crossing: PeerCrossing, now: Instant) -> EventRecord | None:
        held = self.tracker.contradicted(
            crossing.card_ref, crossing.from_zone, crossing.to_zone, crossing.stamp, self.device
        )
        if held is None:
            return None
        zone, own = held
        return record(
            EventKind.ALARM,
            "anti_passback_conflict",
            now.utc,
            state="raised",
            card_ref=crossing.card_ref,
            zone=zone,
            to_zone=crossing.to_zone,
            peer=crossing.stamp[1],
            peer_ts=crossing.stamp[0],
            own_ts=own[0],
        ).event
