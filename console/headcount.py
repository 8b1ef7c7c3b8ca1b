"""Head counts that add up across gates: every device's movements into a zone since its baseline.

A gate counts only what it saw and stops at zero, so with several gates on one line no
device's count is the zone's. The console adds up, over every device, the movements into
the zone minus those out of it (card `crossing`s, and `button_exit`s: one person leaving by
an exit button), after the zone's baseline, the newer of:

- the zone's newest `occupancy_reset` (someone counted the zone by hand: its `count` is the
  start; if several devices were reset, the newest one's), and
- the zone's newest daily forgiveness (`anti_passback_forgiven`: the hour the site sets for
  the line to be empty, start 0). Devices record it when they notice the hour (one that was
  off notices it late), so the earliest record of that local date is taken.

Without either, the whole log counts from 0. A total below zero (people inside before the
baseline leaving after it) is shown as 0. The log keeps each event once (by its id), so an
event sent again is never counted twice.

Every query reads an index (console.log migration 0008): the baseline is two seeks on
(zone, ts); each count reads the zone's index entries after the baseline, so a year of log
costs what the day since the baseline holds. The zones counted are found by skipping
through the same indexes, one seek per zone.

Zones without movements (booths and meeting rooms watched by sensor nodes) keep the
devices' occupied or vacant (CentralLog.occupancy).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from console.log import BASELINES, MOVES, CentralLog
from console.site_view import SiteScope
from edge.core.clock import utc_text

_ZONE: Final = "json_extract(body, '$.zone')"
_MOVE: Final = f"kind = 'access' AND type IN {MOVES}"
_BASE: Final = f"kind = 'system' AND type IN {BASELINES}"
_DAY_WINDOW: Final = timedelta(hours=36)
EVERY: Final = (
    SiteScope()
)  # no site condition: a log of one site  # a forgiveness of one local date, seen late


@dataclass(frozen=True, slots=True)
class ZoneCount:
    """A zone as the occupancy page shows it."""

    zone: str
    count: int | None  # None: a presence-only zone (occupied or vacant, no count)
    occupied: bool
    since: str | None = None  # the baseline's time (None: the whole log)
    basis: str = "log"  # occupancy_reset, anti_passback_forgiven or log


@dataclass(frozen=True, slots=True)
class Baseline:
    """Where a zone's count starts: a time (None: the log's start) and a count."""

    ts: str | None
    count: int
    basis: str


def baseline(log: CentralLog, zone: str, scope: SiteScope = EVERY) -> Baseline:
    """Return the zone's baseline: its newest reset or daily forgiveness, else the log's start."""
    site, at = scope.where()
    reset = log.db.execute(
        f"SELECT ts, body FROM events WHERE {_BASE} AND {site} "  # noqa: S608  # constants
        f"AND {_ZONE} = ? AND type = 'occupancy_reset' ORDER BY ts DESC, row DESC LIMIT 1",
        [*at, zone],
    ).fetchone()
    forgiven = _forgiven(log, zone, scope)
    if reset is not None and (forgiven is None or reset[0] >= forgiven):
        # Read from the body: json_extract gives a number on SQLite, text on PostgreSQL.
        count = json.loads(reset[1]).get("count")
        start = int(count) if isinstance(count, int) and 0 <= count <= 100_000 else 0
        return Baseline(str(reset[0]), start, "occupancy_reset")
    if forgiven is not None:
        return Baseline(forgiven, 0, "anti_passback_forgiven")
    return Baseline(None, 0, "log")


def head_count(
    log: CentralLog, zone: str, base: Baseline | None = None, scope: SiteScope = EVERY
) -> int:
    """Return the zone's count: its baseline plus every device's movements in, less out."""
    base = base or baseline(log, zone, scope)
    after, params = ("AND ts > ?", [base.ts]) if base.ts is not None else ("", [])
    site, at = scope.where()
    moved = 0
    for field, sign in (("to_zone", 1), ("from_zone", -1)):
        (found,) = log.db.execute(
            f"SELECT count(*) FROM events WHERE {_MOVE} AND {site} "  # noqa: S608  # constants
            f"AND json_extract(body, '$.{field}') = ? {after}",
            [*at, zone, *params],
        ).fetchone()
        moved += sign * int(found)
    return max(0, base.count + moved)


def counted_zones(log: CentralLog, scope: SiteScope = EVERY) -> list[str]:
    """Return every zone some movement entered or left, or a reset or forgiveness named."""
    site, at = scope.where()
    zones: set[str] = set()
    for field, where in (("to_zone", _MOVE), ("from_zone", _MOVE), ("zone", _BASE)):
        expression = f"json_extract(body, '$.{field}')"
        last = ""
        while True:  # skip through the index: one seek per zone, never a scan
            (found,) = log.db.execute(
                f"SELECT min({expression}) FROM events WHERE {where} "  # noqa: S608  # constants
                f"AND {site} AND {expression} > ?",
                [*at, last],
            ).fetchone()
            if not isinstance(found, str):
                break
            zones.add(found)
            last = found
    return sorted(zones)


def occupancy(log: CentralLog, scope: SiteScope = EVERY) -> dict[str, ZoneCount]:
    """Return every zone's count (zones with doors) or occupied/vacant (presence only).

    Zones are a site's own: with several sites in the log, ask for one site at a time.
    """
    reported = _reported(log, scope)
    zones: dict[str, ZoneCount] = {}
    for zone in counted_zones(log, scope):
        base = baseline(log, zone, scope)
        count = head_count(log, zone, base, scope)
        # A device says occupied with no count of its own only from a presence sensor.
        sensed = _sensed(reported.get(zone))
        zones[zone] = ZoneCount(zone, count, count > 0 or sensed, base.ts, base.basis)
    for zone, row in reported.items():
        if zone not in zones:
            zones[zone] = ZoneCount(zone, None, bool(row.get("occupied")))
    return dict(sorted(zones.items()))


def _reported(log: CentralLog, scope: SiteScope) -> dict[str, dict[str, Any]]:
    """Return the newest occupancy report per zone among the site's devices."""
    site, at = scope.where()
    zones: dict[str, dict[str, Any]] = {}
    for row in log.db.query(
        f"SELECT device, zone, count, occupied, ts FROM occupancy WHERE {site} ORDER BY ts",  # noqa: S608  # constants
        at,
    ):
        zones[row["zone"]] = row
    return zones


def _forgiven(log: CentralLog, zone: str, scope: SiteScope) -> str | None:
    """Return the earliest record of the zone's newest daily forgiveness, or None."""
    site, at = scope.where()
    newest = log.db.execute(
        f"SELECT ts, json_extract(body, '$.local_date') FROM events WHERE {_BASE} AND {site} "  # noqa: S608  # constants
        f"AND {_ZONE} = ? AND type = 'anti_passback_forgiven' ORDER BY ts DESC, row DESC LIMIT 1",
        [*at, zone],
    ).fetchone()
    if newest is None:
        return None
    ts, local_date = str(newest[0]), newest[1]
    try:
        moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        window = utc_text((moment if moment.tzinfo else moment.replace(tzinfo=UTC)) - _DAY_WINDOW)
    except (ValueError, OverflowError):  # a time the device made up: that record alone
        return ts
    same_date = "IS NULL" if local_date is None else "= ?"
    (earliest,) = log.db.execute(
        f"SELECT min(ts) FROM events WHERE {_BASE} AND {site} AND {_ZONE} = ? "  # noqa: S608  # constants
        "AND type = 'anti_passback_forgiven' AND ts > ? "
        f"AND json_extract(body, '$.local_date') {same_date}",
        [*at, zone, window, *([] if local_date is None else [local_date])],
    ).fetchone()
    return str(earliest or ts)


def _sensed(row: dict[str, Any] | None) -> bool:
    return row is not None and bool(row.get("occupied")) and not row.get("count")
