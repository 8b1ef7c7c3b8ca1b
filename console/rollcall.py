"""Who is inside the security line: the roll call fire wardens ask for.

A card is inside when its latest crossing of the line (into or out of the line's zone,
`staff-area` by default) went in. Crossings are ordered by their stored time (`ts`), then
by the log's row: the time on the device, so a gate's backlog arriving late after an
outage still lands in its place, or, where the collector could not believe the device's
time (unreadable, or ahead of the console's clock), the time the console received it. Only
a device provisioned with the door reports crossings through it (console.claims).
"""

from __future__ import annotations

from dataclasses import dataclass

from console.log import CentralLog

LINE_ZONE = "staff-area"


@dataclass(frozen=True, slots=True)
class Present:
    """A card inside the line, and where and when it crossed in."""

    card_ref: str
    door: str
    ts: str


def inside(log: CentralLog, line_zone: str = LINE_ZONE, until: str | None = None) -> list[Present]:
    """Return the cards inside the line (as of `until`, an ISO UTC time, if given)."""
    query = (
        "SELECT card_ref, door, ts, json_extract(body, '$.to_zone') FROM events "
        "WHERE kind = 'access' AND type = 'crossing' AND card_ref IS NOT NULL "
        "AND (json_extract(body, '$.to_zone') = ? OR json_extract(body, '$.from_zone') = ?) "
    )
    params = [line_zone, line_zone]
    if until is not None:
        query += "AND ts <= ? "
        params.append(until)
    query += "ORDER BY ts, row"
    latest: dict[str, Present | None] = {}
    for card_ref, door, ts, to_zone in log.db.execute(query, params):
        latest[card_ref] = Present(card_ref, door, ts) if to_zone == line_zone else None
    return sorted((p for p in latest.values() if p is not None), key=lambda p: p.ts)
