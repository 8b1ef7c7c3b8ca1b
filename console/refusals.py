"""Messages the collector refused, kept aside for the guards: bounded, and never the payload.

Each refusal keeps its device, the alarm it raises (`bad_messages` for a message that breaks
the limits, `device_claim_refused` for one that claims what the device was not provisioned
with), the reason, the topic, the size and a SHA-256 digest of the payload (the payload
itself may hold anything). Only the newest `KEEP` per device stay; a running total per device
and alarm stays too, and drives the console alarm.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from console.log import CentralLog

KEEP: Final = 100  # newest refusals kept per device
BAD_MESSAGES: Final = "bad_messages"
CLAIM_REFUSED: Final = "device_claim_refused"
_TOPIC_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class Refusal:
    """One refused message (or `count` alike ones, e.g. over the rate budget)."""

    device: str
    alarm: str
    reason: str
    topic: str
    size: int
    digest: str
    count: int = 1

    @classmethod
    def of(cls, device: str, alarm: str, reason: str, topic: str, payload: bytes) -> Refusal:
        """Return the refusal of one message, with a digest in place of its payload."""
        return cls(
            device,
            alarm,
            reason,
            _printable(topic)[:_TOPIC_CHARS],
            len(payload),
            hashlib.sha256(payload).hexdigest(),
        )


@dataclass(frozen=True, slots=True)
class Total:
    """What one device had refused, for its console alarm."""

    device: str
    alarm: str
    total: int
    first_at: str
    last_at: str
    last_reason: str
    site: str | None = None  # None: the log's own site


def keep(log: CentralLog, refusals: Iterable[Refusal], at: str, *, site: str | None = None) -> None:
    """Store refusals (from `site`; None: the log's own) in one transaction, dropping each
    device's oldest beyond `KEEP`."""
    refusals = list(refusals)
    if not refusals:
        return
    totals: dict[tuple[str, str], tuple[int, str]] = {}
    for r in refusals:
        total, _ = totals.get((r.device, r.alarm), (0, ""))
        totals[r.device, r.alarm] = (total + r.count, r.reason)
    with log.transaction() as conn:
        conn.executemany(
            "INSERT INTO refusals (site, device, alarm, reason, topic, size, digest, count, at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [site, r.device, r.alarm, r.reason, r.topic, r.size, r.digest, r.count, at]
                for r in refusals
            ],
        )
        # In key order: two collectors counting the same devices' refusals never deadlock.
        for (device, alarm), (total, reason) in sorted(totals.items()):
            conn.execute(
                "INSERT INTO refusal_totals (site, device, alarm, total, first_at, last_at, "
                "last_reason) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site, device, alarm) "
                "DO UPDATE SET total = refusal_totals.total + excluded.total, "
                "last_at = excluded.last_at, last_reason = excluded.last_reason",
                [site or "", device, alarm, total, at, at, reason],
            )
        # Per device (of its site, where device ids are kept per site): what one device
        # floods the refusals with drops only its own.
        mine = "COALESCE(site, '') = ? AND device = ?" if log.keys_sites else "device = ?"
        for device in sorted({r.device for r in refusals}):
            key = [site or "", device] if log.keys_sites else [device]
            conn.execute(
                f"DELETE FROM refusals WHERE {mine} AND id <= (SELECT id FROM refusals "  # noqa: S608
                f"WHERE {mine} ORDER BY id DESC LIMIT 1 OFFSET ?)",
                [*key, *key, KEEP],
            )


def totals(log: CentralLog) -> list[Total]:
    """Return each device's refusal totals per alarm."""
    return [
        Total(device, alarm, total, first_at, last_at, last_reason, site or None)
        for device, alarm, total, first_at, last_at, last_reason, site in log.db.execute(
            "SELECT device, alarm, total, first_at, last_at, last_reason, site "
            "FROM refusal_totals ORDER BY site, device, alarm"
        )
    ]


def recent(
    log: CentralLog, device: str, limit: int = KEEP, *, site: str | None = None
) -> list[dict[str, object]]:
    """Return a device's newest refusals kept aside (of one site, if given), newest first."""
    mine, params = ("device = ? AND site = ?", [device, site]) if site else ("device = ?", [device])
    return list(
        log.db.query(
            "SELECT site, device, alarm, reason, topic, size, digest, count, at "  # noqa: S608
            f"FROM refusals WHERE {mine} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        )
    )


def latest(log: CentralLog) -> int:
    """Return how many refusals were ever counted (0 if none): a change marker for live pages.

    A total, not the newest id: two collectors commit their refusals out of id order.
    """
    row = log.db.execute("SELECT sum(total) FROM refusal_totals").fetchone()
    return int(row[0] or 0)  # PostgreSQL sums to a Decimal


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)
