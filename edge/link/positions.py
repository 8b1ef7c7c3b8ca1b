"""Positions digests: what a device missed of its peers' crossings, relearnt from the broker.

A crossing goes out once (QoS 1, not retained): a device cut off from the broker, or
started again with an empty store, never hears it again. So every device with doors also
keeps, retained on `positions/{zone}` for each zone it serves, the latest position per card
that it set itself (its own crossings and forgivenesses) entering or leaving that zone since
the zone's last forgiveness. It speaks only for itself: a position learnt from a peer is
that peer's to publish. A device reading the digests of its zones (its own retained one
too, after losing its store) merges each entry like a crossing; a repeat changes nothing.

The link's drain thread builds the digests from the store through its own connection, on
every connect and then at most every `DIGEST_EVERY_S` when one changed; an inbound digest
is judged here and merged on the loop's thread (`edge.peers`).
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime

from pydantic import ValidationError
from sqlite_utils import Database

from edge.link import topics
from edge.link.crossings import PeerCrossing, Refused, claim, from_the_future
from edge.link.payloads import MAX_DIGEST_ENTRIES, PositionsPayload
from edge.store import state

log = logging.getLogger(__name__)
DIGEST_EVERY_S = 30.0  # a changed digest goes out at most this often (and on every connect)
# A peer back on the broker says hello with its first digests; what changed here since the
# last digest then goes out early, at most this often (a hostile peer's hellos cost no more).
EARLY_EVERY_S = 2.0
# A peer takes a device's digest of a zone at most this often and drops the rest unread: a
# stolen gate flooding digests costs the loop a topic check each, not a judge and a merge.
TAKE_EVERY_S = 1.0
HELLO = ("edge", "hello")  # the MQTT 5 user property on a device's first digests after a connect
# 10,000 entries of about 140 bytes (250 with the longest ids and seq); larger is refused.
MAX_DIGEST_BYTES = 3 * 1024 * 1024


def digest_body(device: str, zone: str, ts: str, entries: list[state.OwnPosition]) -> bytes:
    """Return the JSON of one digest (`PositionsPayload`), compact."""
    body = {"v": 1, "device": device, "zone": zone, "ts": ts, "entries": entries}
    return json.dumps(body, separators=(",", ":")).encode()


class Digests:
    """Which digests the drain thread publishes: each served zone's, when it changed.

    Used by the drain thread only. A digest is not published empty for a zone this process
    has not yet published: after losing its store the device first reads its own retained
    digest back, rather than wiping it.
    """

    def __init__(
        self,
        root: str,
        site: str,
        device: str,
        zones: frozenset[str],
        every_s: float = DIGEST_EVERY_S,
    ) -> None:
        self.root, self.site, self.device = root, site, device
        self.zones = zones
        self.every_s = every_s
        self.published = 0
        self._sent: dict[str, list[state.OwnPosition]] = {}  # zone -> entries last published
        self._ever: set[str] = set()  # zones published since this process started
        self._mids: dict[int, str] = {}  # publish mid -> zone, until its PUBACK
        self._next = 0.0
        self._last = float("-inf")
        self._soon = threading.Event()  # a peer said hello: publish what changed early
        self.greeting = True  # the next digests are the first since a connect

    def __repr__(self) -> str:
        return f"<Digests {self.device} zones={sorted(self.zones)} published={self.published}>"

    def reset(self) -> None:
        """Publish every digest again now (a new connection: the broker may have lost them)."""
        self._sent.clear()
        self._mids.clear()
        self._next = 0.0
        self.greeting = True

    def soon(self) -> None:
        """A peer is back: publish what changed since the last digest early (any thread)."""
        self._soon.set()

    def due(self, db: Database, mono: float, utc: str) -> list[tuple[str, str, bytes]]:
        """Return (zone, topic, payload) of each digest to publish now, if any is due."""
        if not self.zones or mono < self._last + EARLY_EVERY_S:
            return []  # never closer than that: peers take no more (edge.peers)
        if mono < self._next and not self._soon.is_set():
            return []
        self._soon.clear()
        self._last = mono
        self._next = mono + self.every_s
        out = []
        for zone in sorted(self.zones):
            entries = state.own_positions(db, self.device, zone, MAX_DIGEST_ENTRIES)
            if entries == self._sent.get(zone) or (not entries and zone not in self._ever):
                continue
            topic = topics.positions(self.root, self.site, self.device, zone)
            out.append((zone, topic, digest_body(self.device, zone, utc, entries)))
            self._sent[zone] = entries
        return out

    def sent(self, zone: str, mid: int, queued: bool) -> None:
        """Note a digest handed to paho (`queued`) or not (it goes again next time)."""
        if queued:
            self._mids[mid] = zone
            self._ever.add(zone)
            self.published += 1
        else:
            self._sent.pop(zone, None)

    def acked(self, mid: int, ok: bool, reason: str) -> bool:
        """Take a PUBACK; return whether it was a digest's. A refused one goes again later."""
        zone = self._mids.pop(mid, None)
        if zone is None:
            return False
        if not ok:
            self._sent.pop(zone, None)
            log.error("broker refused the positions digest of %s (%s)", zone, reason)
        return True


def judge_digest(
    topic: str,
    payload: bytes,
    retained: bool,
    where: tuple[str, str, str],
    zones: frozenset[str],
    now: datetime,
) -> list[PeerCrossing] | Refused | None:
    """Return the crossings a digest claims if every one passes, a refusal if any does not,
    None if there is nothing to learn (a deleted digest, or our own live one).

    `where` is (root, site, this device). This device's own digest counts only as the broker
    kept it (`retained`): that is how a device whose store was lost reads itself back.
    """
    root, site, device = where
    levels = topics.positions_levels(topic, root, site)
    if levels is None:
        return Refused("not a positions topic")
    sender, zone = levels
    if sender == device and not retained:
        return None
    if zone not in zones:
        return Refused(f"zone {zone[:64]!r} is not served here")
    if not payload:
        return None  # the retained digest was deleted
    if len(payload) > MAX_DIGEST_BYTES:
        return Refused(f"digest over {MAX_DIGEST_BYTES} bytes")
    try:
        digest = PositionsPayload.model_validate_json(payload)
    except (ValidationError, ValueError, RecursionError) as exc:
        return Refused(f"malformed digest ({type(exc).__name__})")
    if digest.device != sender or digest.zone != zone:
        return Refused("digest device or zone does not match the topic")
    claims: list[PeerCrossing] = []
    cards: set[str] = set()
    for index, entry in enumerate(digest.entries):
        verdict = claim(sender, zone, *entry)
        if isinstance(verdict, PeerCrossing):
            verdict = from_the_future(verdict, now) or verdict
        if entry[0] in cards:
            verdict = Refused("a card listed twice")
        if isinstance(verdict, Refused):
            return Refused(f"entry {index}: {verdict.reason}")
        cards.add(entry[0])
        claims.append(verdict)
    return claims
