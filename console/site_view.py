"""The console across sites: which site a page shows, and how each site's link to the centre is.

Every event, device and occupancy row carries its `site`. In an SQLite log written before
sites existed the column is NULL: those rows are the console's own site's (`home`: the
site id of the provisioning registry it was given, else the log's only named site). A page
shows one site (`site=…`) or every site (no value), each grouped under its name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from console.log import CentralLog
from edge.errors import EdgeError

# A site is known by its devices, and by zones a device reported without anything else yet.
_SITES = "SELECT site FROM devices UNION SELECT site FROM occupancy"
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")


class SiteError(EdgeError, ValueError):
    """A site asked for is not one of the log's; the message names the ones it has."""


@dataclass(frozen=True, slots=True)
class SiteScope:
    """One site (`site`), or every site (`site` empty); NULL rows are `home`'s."""

    site: str = ""
    home: str | None = None

    def where(self, column: str = "site") -> tuple[str, list[str]]:
        """Return an SQL condition on `column` (a constant of ours) and its parameters."""
        if not self.site:
            return "1 = 1", []
        if self.site == self.home:
            return f"({column} = ? OR {column} IS NULL)", [self.site]
        return f"{column} = ?", [self.site]

    def name(self, site: object) -> str:
        """Return a row's site as a page shows it: its own, else the console's site."""
        return site if isinstance(site, str) and site else (self.home or "")


def home_site(log: CentralLog, given: str | None) -> str | None:
    """Return the site that owns rows without one: the registry's (`given`), else the
    log's only named site (an SQLite log a site's collector went on writing), else None."""
    if given:
        return given
    named = [row for row in log.db.execute(_SITES).fetchall() if row[0] is not None]
    return str(named[0][0]) if len(named) == 1 else None


def known_sites(log: CentralLog, home: str | None) -> list[str]:
    """Return every site the log has devices or zones of, by name (NULL rows as `home`'s)."""
    home = home_site(log, home)
    rows = log.db.execute(_SITES).fetchall()
    return sorted({SiteScope(home=home).name(site) for (site,) in rows})


def scope_of(log: CentralLog, site: str, home: str | None) -> SiteScope:
    """Return the scope of a site someone asked for, or raise SiteError naming the choices."""
    site = site.strip()
    home = home_site(log, home)
    if not site:
        return SiteScope("", home)
    known = known_sites(log, home)
    if site not in known or not SLUG.match(site):
        shown = repr(site[:40] if site.isprintable() else site.encode("unicode_escape")[:40])
        choices = ", ".join(known) or "none yet"
        raise SiteError(f"{shown} is not a site of this log; use one of: {choices}")
    return SiteScope(site, home)


def device_health(
    log: CentralLog, scope: SiteScope
) -> list[tuple[str, str, dict[str, Any], list[int]]]:
    """Return (site, device, its row, its missing seqs) for the scope's devices, by device."""
    where, params = scope.where()
    gaps = log.gaps()
    rows = log.db.query(
        "SELECT site, device, contiguous, max_seq, duplicates, status, status_at "  # noqa: S608  # a condition of ours
        f"FROM devices WHERE {where} ORDER BY device",
        params,
    )
    return [
        (scope.name(r["site"]), r["device"], r, gaps.get(_keyed(log, r["site"], r["device"]), []))
        for r in rows
    ]


def _keyed(log: CentralLog, site: str | None, device: str) -> str:
    """Return a device's key in `log.gaps()`: `site/device` on a log of many sites."""
    return f"{site}/{device}" if log.keys_sites else device


@dataclass(frozen=True, slots=True)
class SiteLink:
    """One site as the Sites page shows it."""

    site: str
    connected: bool | None  # None: the centre has not heard from its bridge
    since: str | None  # when `connected` last changed (or was last reported)
    stored: int | None  # messages the site broker holds for the centre, if it says
    newest_ts: str | None  # the newest event time from the site
    behind_s: float | None  # now - newest_ts while disconnected or catching up
    online: int
    devices: int


def site_links(log: CentralLog, home: str | None, now: datetime) -> list[SiteLink]:
    """Return every site's link to the centre, its newest event and its devices online."""
    scope = SiteScope(home=home_site(log, home))
    online: dict[str, list[int]] = {}
    for site, status in log.db.execute("SELECT site, status FROM devices"):
        counts = online.setdefault(scope.name(site), [0, 0])
        counts[0] += _is_online(status)
        counts[1] += 1
    reported = {scope.name(site): row for site, row in log.sites().items()}
    links = []
    for site in sorted(set(online) | set(reported)):
        row: dict[str, Any] = reported.get(site, {})
        connected = row.get("connected")
        newest = row.get("newest_ts")
        stored = row.get("stored")
        on, total = online.get(site, [0, 0])
        links.append(
            SiteLink(
                site,
                None if connected is None else bool(connected),
                row.get("link_at"),
                None if stored is None else int(stored),
                newest,
                _behind(newest, now, connected, stored),
                on,
                max(total, int(row.get("devices") or 0)),
            )
        )
    return links


def _behind(newest: object, now: datetime, connected: object, stored: object) -> float | None:
    """Seconds between now and the newest event, while the site is cut off or catching up."""
    cut_off = connected is not None and not connected
    catching_up = isinstance(stored, int) and stored > 0
    if not isinstance(newest, str) or not (cut_off or catching_up):
        return None
    try:
        moment = datetime.fromisoformat(newest.replace("Z", "+00:00"))
        return max(0.0, (now - moment).total_seconds())
    except (ValueError, TypeError, OverflowError):  # a device's made-up time: not a lag
        return None


def status_of(text: object) -> dict[str, Any]:
    """Return a device's retained status as a dict ({} if none, unreadable or not an object)."""
    try:
        body = json.loads(text) if isinstance(text, str) else {}
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _is_online(status: object) -> int:
    return int(status_of(status).get("state") == "online")


def duration(seconds: float | None) -> str:
    """Return a lag as people read it: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    if seconds is None:
        return ""
    whole = int(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min"
    if whole < 86400:
        return f"{whole // 3600} h {whole % 3600 // 60} min"
    return f"{whole // 86400} d {whole % 86400 // 3600} h"
