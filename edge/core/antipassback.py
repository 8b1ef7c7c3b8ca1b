"""Anti-passback positions: the zone each card was last seen entering, per device.

A card may not enter a zone it is already in (a card passed back to a colleague). Positions
are forgotten once a day at each zone's `forgive_at` local time, so one missed exit
(another gate, a door held for a group) does not lock someone out the next morning.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime, time

from edge.core.spec import AntiPassback, ZoneSpec

_STRICTNESS = {AntiPassback.OFF: 0, AntiPassback.SOFT: 1, AntiPassback.HARD: 2}


class AntiPassbackTracker:
    """Card positions, and the daily forgiveness."""

    def __init__(self, zones: Iterable[ZoneSpec]) -> None:
        self._base = {z.id: z for z in zones}
        self._zones = dict(self._base)
        self._positions: dict[str, str] = {}
        self._forgiven_on: dict[str, date] = {}

    def __repr__(self) -> str:
        return f"<AntiPassbackTracker positions={len(self._positions)}>"

    def apply_overrides(self, overrides: Mapping[str, tuple[str, str | None]]) -> None:
        """Take anti-passback settings from the access policy for the zones this device knows."""
        for zone_id, (mode, forgive) in overrides.items():
            zone = self._base.get(zone_id)
            if zone is not None:
                self._zones[zone_id] = replace(
                    zone,
                    anti_passback=AntiPassback(mode),
                    forgive_at=time.fromisoformat(forgive) if forgive else None,
                )
        for zone_id, zone in self._base.items():
            if zone_id not in overrides:
                self._zones[zone_id] = zone

    def setting(self, *zones: str) -> AntiPassback:
        """Return the strictest anti-passback setting among `zones`."""
        settings = [self._zones[z].anti_passback for z in zones if z in self._zones]
        return max(settings, key=_STRICTNESS.__getitem__, default=AntiPassback.OFF)

    def position(self, card_ref: str) -> str | None:
        """Return the zone the card last entered, or None."""
        return self._positions.get(card_ref)

    def crossed(self, card_ref: str, to_zone: str) -> None:
        """Record that the card entered `to_zone`."""
        self._positions[card_ref] = to_zone

    def forgiven_dates(self) -> tuple[tuple[str, str], ...]:
        """Return (zone, ISO date) of each zone's last forgiveness, for the store."""
        return tuple(sorted((z, d.isoformat()) for z, d in self._forgiven_on.items()))

    def restore_forgiven(self, dates: Iterable[tuple[str, str]]) -> None:
        """Resume after a restart: a zone forgiven today is not forgiven again."""
        for zone, day in dates:
            self._forgiven_on[zone] = date.fromisoformat(day)

    def forgive_due(self, local: datetime) -> list[str]:
        """Forget positions in every zone whose forgive time has come today; return those zones."""
        forgiven = []
        for zone in self._zones.values():
            if zone.forgive_at is None or local.time() < zone.forgive_at:
                continue
            if self._forgiven_on.get(zone.id) == local.date():
                continue
            self._forgiven_on[zone.id] = local.date()
            self._positions = {c: z for c, z in self._positions.items() if z != zone.id}
            forgiven.append(zone.id)
        return forgiven
