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
from console.site_view import SiteScope

LINE_ZONE = "staff-area"


@dataclass(frozen=True, slots=True)
class Present:
    """A card inside a site's line, and where and when it crossed in."""

    card_ref: str
    door: str
    ts: str
    site: str = ""


def inside(
    log: CentralLog,
    line_zone: str = LINE_ZONE,
    until: str | None = None,
    scope: SiteScope | None = None,
) -> list[Present]:
    """Return the cards inside the line (as of `until`, an ISO UTC time, if given).

    Each site's line is its own: a card is inside a site when its latest crossing of that
    site's line went in, whatever it did at another site. `scope` keeps to one site.
    """
    scope = scope or SiteScope()
    where, params = scope.where()
    query = (
        "SELECT card_ref, door, ts, json_extract(body, '$.to_zone'), site FROM events "  # noqa: S608  # a condition of ours
        "WHERE kind = 'access' AND type = 'crossing' AND card_ref IS NOT NULL "
        "AND (json_extract(body, '$.to_zone') = ? OR json_extract(body, '$.from_zone') = ?) "
        f"AND {where} "
    )
    params = [line_zone, line_zone, *params]
    if until is not None:
        query += "AND ts <= ? "
        params.append(until)
    query += "ORDER BY ts, row"
    latest: dict[tuple[str, str], Present | None] = {}
    for card_ref, door, ts, to_zone, site in log.db.execute(query, params):
        name = scope.name(site)
        latest[(name, card_ref)] = (
            Present(card_ref, door, ts, name) if to_zone == line_zone else None
        )
    return sorted((p for p in latest.values() if p is not None), key=lambda p: p.ts)


def by_site(present: list[Present]) -> dict[str, list[Present]]:
    """Return the roll call grouped by site, sites by name."""
    groups: dict[str, list[Present]] = {}
    for p in present:
        groups.setdefault(p.site, []).append(p)
    return dict(sorted(groups.items()))
