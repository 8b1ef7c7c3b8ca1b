"""Crossings shared between the devices of a zone: which zones, what is sent, what is taken.

A device serves every zone its doors lead into or out of. Each crossing it records goes out
on `crossings/{zone}` for both zones of the door (the one left and the one entered), so
every device serving either zone learns where the card is now; whether a zone's
anti-passback is on can change with the access policy, while the broker's rights follow the
provisioned configuration, so every served zone is shared. Inbound crossings are judged here,
before the loop applies them: the topic, the payload and the zone must all agree.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from pydantic import ValidationError

from edge.core.antipassback import Stamp
from edge.core.clock import utc_text
from edge.link import topics
from edge.link.payloads import CrossingPayload
from edge.store.outbox import OutboxEvent
from firmware_config.model import DeviceConfig

MAX_CROSSING_BYTES = 1024  # a crossing is about 300 bytes; anything larger is refused
AHEAD = timedelta(minutes=5)  # a peer's clock may be this far ahead of ours, no more
_FIELDS = ("v", "id", "device", "seq", "card_ref", "from_zone", "to_zone", "ts", "clock_synced")


def served_zones(config: DeviceConfig) -> frozenset[str]:
    """Return the zones whose crossings a device shares and learns: both sides of its doors."""
    return frozenset(z for d in config.doors for z in (d.outside_zone, d.inside_zone))


def outgoing(
    event: OutboxEvent, root: str, site: str, device: str, zones: Iterable[str]
) -> list[tuple[str, bytes]]:
    """Return the (topic, payload) of each zone a stored crossing event is shared on."""
    if event.kind != "access" or '"crossing"' not in event.text:
        return []
    fields = event.payload
    if fields.get("type") != "crossing":
        return []
    body = json.dumps({k: fields[k] for k in _FIELDS}, sort_keys=True).encode()
    sides = dict.fromkeys((fields["from_zone"], fields["to_zone"]))  # ordered, no repeat
    return [(topics.crossings(root, site, device, z), body) for z in sides if z in zones]


@dataclass(frozen=True, slots=True)
class PeerCrossing:
    """A peer's crossing that passed every check, ready for the loop to merge."""

    card_ref: str
    from_zone: str
    to_zone: str
    stamp: Stamp


@dataclass(frozen=True, slots=True)
class Refused:
    """Why an inbound crossing was dropped (for one rate-limited log line)."""

    reason: str


def judge(
    topic: str, payload: bytes, root: str, site: str, device: str, zones: frozenset[str]
) -> PeerCrossing | Refused | None:
    """Return the crossing if a peer may claim it, a refusal if not, None if it is our own."""
    levels = topics.crossing_levels(topic, root, site)
    if levels is None:
        return Refused("not a crossings topic")
    sender, zone = levels
    if sender == device:
        return None
    if zone not in zones:
        return Refused(f"zone {zone[:64]!r} is not served here")
    if len(payload) > MAX_CROSSING_BYTES:
        return Refused(f"payload over {MAX_CROSSING_BYTES} bytes")
    try:
        crossing = CrossingPayload.model_validate_json(payload)
    except (ValidationError, ValueError, RecursionError) as exc:
        return Refused(f"malformed payload ({type(exc).__name__})")
    if crossing.device != sender or crossing.id != f"{sender}:{crossing.seq}":
        return Refused("payload device or id does not match the topic")
    return claim(
        sender,
        zone,
        crossing.card_ref,
        crossing.from_zone,
        crossing.to_zone,
        crossing.ts,
        crossing.seq,
    )


def claim(
    sender: str, zone: str, card_ref: str, from_zone: str, to_zone: str, ts: str, seq: int
) -> PeerCrossing | Refused:
    """Return `sender`'s parsed claim that a card crossed, if it leaves or enters the topic's
    zone (a crossing on its own or an entry of a positions digest)."""
    if zone not in (from_zone, to_zone):
        return Refused("the crossing neither leaves nor enters the topic's zone")
    return PeerCrossing(card_ref, from_zone, to_zone, (ts, sender, seq))


def from_the_future(crossing: PeerCrossing, now: datetime) -> Refused | None:
    """Refuse a crossing stamped over `AHEAD` past `now`: it would win over every real
    crossing until then."""
    if crossing.stamp[0] > utc_text(now + AHEAD):
        return Refused(f"stamped over {AHEAD.seconds // 60} minutes ahead of this clock")
    return None
