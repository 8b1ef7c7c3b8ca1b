"""What the provisioned device configurations let each device speak for: doors and counts.

The rooms service reads edge-provision's `SITE/devices/{device}.toml` (as the console does,
through `firmware_config.loader`) and takes from a device only what its configuration has:

* a door's opened/closed only from the device whose configuration has that door (door ids are
  site-wide; a door listed by two devices is taken from neither);
* a line crossing only through a door of the sending device that borders `line_zone`;
* a head count only for a zone its doors join; a zone counted by more than one device has no
  single count (each device's count floors at zero on its own), so it is not published.

A file that is not valid, or is for another site or device, is logged and trusts nothing.
The files are read again when they change (their mtime), at most once a second.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from firmware_config.errors import ConfigError
from firmware_config.loader import load_config

log = logging.getLogger(__name__)

RESCAN_S: Final = 1.0


@dataclass(frozen=True, slots=True)
class Door:
    """A provisioned door: its device and the two zones it joins."""

    id: str
    device: str
    outside: str
    inside: str

    def joins(self, zone: str) -> bool:
        return zone in (self.outside, self.inside)


class Devices:
    """The site's provisioned devices, read from a directory of device configurations."""

    def __init__(self, devices_dir: Path, site: str) -> None:
        self.devices_dir = devices_dir
        self.site = site
        self._files: dict[str, tuple[float, tuple[Door, ...] | None]] = {}
        self._doors: dict[str, Door] = {}
        self._counters: dict[str, frozenset[str]] = {}
        self._single: frozenset[str] = frozenset()
        self._scanned = float("-inf")
        if not devices_dir.is_dir():
            log.warning(
                "devices_dir %s is not a directory: no door, crossing or head count is trusted "
                "until it holds edge-provision's device files",
                devices_dir,
            )
        self.rescan()

    def __repr__(self) -> str:
        return f"<Devices {self.devices_dir} devices={len(self._files)} doors={len(self._doors)}>"

    def door(self, door: str) -> Door | None:
        """Return the provisioned door with this id (None: unknown, or listed twice)."""
        self._maybe_rescan()
        return self._doors.get(door)

    def doors(self) -> dict[str, Door]:
        """Return every provisioned door by id."""
        self._maybe_rescan()
        return dict(self._doors)

    def has_doors(self, device: str) -> bool:
        """Return whether the device's configuration has any door."""
        self._maybe_rescan()
        return device in self._counters

    def counts(self, device: str, zone: str) -> bool:
        """Return whether the device's configuration has a door joining `zone`."""
        self._maybe_rescan()
        return zone in self._counters.get(device, frozenset())

    def single_counter(self, zone: str) -> bool:
        """Return whether exactly one device counts `zone` (its count is the zone's)."""
        self._maybe_rescan()
        return zone in self._single

    def rescan(self) -> None:
        """Read the configurations that are new or changed; forget the removed ones."""
        self._scanned = time.monotonic()
        seen: dict[str, tuple[float, tuple[Door, ...] | None]] = {}
        try:
            paths = sorted(self.devices_dir.glob("*.toml"))
        except OSError:
            paths = []
        for path in paths:
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            old = self._files.get(path.stem)
            seen[path.stem] = old if old and old[0] == mtime else (mtime, self._load(path))
        if seen == self._files:
            return
        self._files = seen
        self._index()

    def _maybe_rescan(self) -> None:
        if time.monotonic() - self._scanned >= RESCAN_S:
            self.rescan()

    def _index(self) -> None:
        listed = [door for _, doors in self._files.values() if doors for door in doors]
        times = Counter(door.id for door in listed)
        for twice in sorted(d for d, n in times.items() if n > 1):
            log.warning("door %s is in more than one device file; it is taken from none", twice)
        self._doors = {d.id: d for d in listed if times[d.id] == 1}
        counters: dict[str, set[str]] = {}
        for door in listed:
            counters.setdefault(door.device, set()).update((door.outside, door.inside))
        self._counters = {device: frozenset(zones) for device, zones in counters.items()}
        per_zone = Counter(zone for zones in self._counters.values() for zone in zones)
        self._single = frozenset(zone for zone, n in per_zone.items() if n == 1)

    def _load(self, path: Path) -> tuple[Door, ...] | None:
        try:
            config = load_config(path)
        except ConfigError as error:
            first = (str(error).splitlines() or [""])[0]
            log.warning("%s is not valid; its device is trusted for nothing: %s", path, first)
            return None
        if config.device.id != path.stem or config.site.id != self.site:
            log.warning(
                "%s is for %s/%s, not %s/%s; trusted for nothing",
                path,
                config.site.id,
                config.device.id,
                self.site,
                path.stem,
            )
            return None
        device = config.device.id
        return tuple(Door(d.id, device, d.outside_zone, d.inside_zone) for d in config.doors)
