"""Each door's live state, as the log knows it from the devices' door and alarm events.

The lock (`unlocked`/`locked`), the leaf (`opened`/`closed`) and the mode (`normal`,
`held_open`, `lockdown`, `fire_release`) are each the newest event of its kind for the door;
a fire input is the newest `fire` alarm of its device; the door's active alarms are those of
console.alarms; online is the device's retained status. A door starts locked, closed and
normal, so a device that has reported but never mentioned the door shows that; a door of a
device never heard from shows `unknown`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from console.actions import Site
from console.alarms import active
from console.log import CentralLog
from console.site_view import SiteScope

UNKNOWN = "unknown"


@dataclass(frozen=True)
class DoorState:
    """One door as the log knows it now."""

    door: str
    device: str
    lock: str  # unlocked, locked or unknown
    leaf: str  # open, closed or unknown
    mode: str  # normal, held_open, lockdown, fire_release or unknown
    fire: bool  # its device's fire input is active
    alarms: tuple[str, ...]
    online: bool


def door_states(log: CentralLog, site: Site) -> list[DoorState]:
    """Return the state of every provisioned door of the site, by door id.

    Only the site's own rows count (a door or device of the same id at another site of the
    log is another door); rows written before sites existed are this site's.
    """
    scope = SiteScope(site.registry.site, site.registry.site)
    alarms: dict[str, list[str]] = {}
    for alarm in active(log, scope=scope):
        if alarm.where:
            alarms.setdefault(alarm.where, []).append(alarm.type)
    # A log of many sites keys its devices `site/device` unless asked for one site's.
    devices = log.devices(site=scope.site) if log.keys_sites else log.devices()
    states = []
    for door, claims in sorted(site.doors().items()):
        heard = claims.device in devices
        lock = _newest(log, scope, door, ("unlocked", "locked")) or ("locked" if heard else UNKNOWN)
        leaf = _newest(log, scope, door, ("opened", "closed")) or ("closed" if heard else UNKNOWN)
        mode = _mode(log, scope, door) or ("normal" if heard else UNKNOWN)
        states.append(
            DoorState(
                door,
                claims.device,
                lock,
                {"opened": "open", "closed": "closed"}.get(leaf, UNKNOWN),
                mode,
                _fire(log, scope, claims.device),
                tuple(sorted(set(alarms.get(door, ())))),
                _online(devices.get(claims.device)),
            )
        )
    return states


def _newest(log: CentralLog, scope: SiteScope, door: str, types: tuple[str, str]) -> str | None:
    site, at = scope.where()
    row = log.db.execute(
        "SELECT type FROM events WHERE door = ? AND kind = 'door' AND type IN (?, ?) "  # noqa: S608  # a condition of ours
        f"AND {site} ORDER BY ts DESC, row DESC LIMIT 1",
        [door, *types, *at],
    ).fetchone()
    return None if row is None else str(row[0])


def _mode(log: CentralLog, scope: SiteScope, door: str) -> str | None:
    site, at = scope.where()
    row = log.db.execute(
        "SELECT json_extract(body, '$.mode') FROM events WHERE door = ? AND kind = 'door' "  # noqa: S608  # a condition of ours
        f"AND type = 'mode' AND {site} ORDER BY ts DESC, row DESC LIMIT 1",
        [door, *at],
    ).fetchone()
    return None if row is None else str(row[0])


def _fire(log: CentralLog, scope: SiteScope, device: str) -> bool:
    site, at = scope.where()
    row = log.db.execute(
        "SELECT json_extract(body, '$.state') FROM events WHERE device = ? AND kind = 'alarm' "  # noqa: S608  # a condition of ours
        f"AND type = 'fire' AND {site} ORDER BY ts DESC, row DESC LIMIT 1",
        [device, *at],
    ).fetchone()
    return row is not None and row[0] == "raised"


def _online(device: dict[str, object] | None) -> bool:
    status = (device or {}).get("status")
    if not isinstance(status, str):
        return False
    try:
        body = json.loads(status)
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("state") == "online"
