"""Anti-passback positions: the zone each card was last seen entering, per device.

A card may not enter a zone it is already in (a card passed back to a colleague). Positions
are forgotten once a day at each zone's `forgive_at` local time, so one missed exit
(another gate, a door held for a group) does not lock someone out the next morning.

Every position carries the stamp of the crossing that set it, `(ts, device, seq)`: the
devices of a zone share their crossings, and the later crossing by stamp wins wherever it
is applied, so the same crossing applied twice, or crossings applied in any order, leave the
same positions (a last-writer-wins register per card). A device's own crossing is stamped
with seq 0: it never meets another crossing of its own device with the same time elsewhere
than here, where the one recorded later wins.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date, datetime, time

from edge.core.clock import utc_text
from edge.core.spec import AntiPassback, ZoneSpec

_STRICTNESS = {AntiPassback.OFF: 0, AntiPassback.SOFT: 1, AntiPassback.HARD: 2}

# (UTC time as the contract writes it, device id, seq): ISO text with milliseconds and "Z"
# sorts as time does.
Stamp = tuple[str, str, int]
Position = tuple[str, str] | tuple[str, str, Stamp]  # card_ref, zone[, stamp]
# The zone of a forgiven card: in no zone, stamped with the forgiveness, so a peer's older
# crossing arriving later loses to it like to any later crossing.
NOWHERE = ""


class AntiPassbackTracker:
    """Card positions, and the daily forgiveness."""

    def __init__(self, zones: Iterable[ZoneSpec]) -> None:
        self._base = {z.id: z for z in zones}
        self._zones = dict(self._base)
        self._positions: dict[str, str] = {}
        self._stamps: dict[str, Stamp] = {}
        self._forgiven_on: dict[str, date] = {}
        self._forgiven_at: dict[str, str] = {}  # zone -> UTC time (contract text) of forgiveness

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
        return self._positions.get(card_ref) or None

    def stamp(self, card_ref: str) -> Stamp | None:
        """Return the stamp of the crossing that set the card's position, or None."""
        return self._stamps.get(card_ref)

    def crossed(self, card_ref: str, to_zone: str, stamp: Stamp | None = None) -> None:
        """Record that the card entered `to_zone` here; an older stamp than the position's
        (a peer's clock ahead of this one) leaves the position as it is."""
        if stamp is None:
            self._positions[card_ref] = to_zone
            return
        held = self._stamps.get(card_ref)
        if held is None or stamp >= held:
            self._positions[card_ref] = to_zone
            self._stamps[card_ref] = stamp

    def forgive(self, card_ref: str, zone: str | None, stamp: Stamp) -> tuple[bool, str | None]:
        """Put the card nowhere as of `stamp` (when a zone is given, only if the card is in it
        or nowhere); return whether it was put there, and the zone it was in."""
        held = self.position(card_ref)
        if zone is not None and held not in (None, zone):
            return False, held
        self.crossed(card_ref, NOWHERE, stamp)
        placed = self._positions.get(card_ref) == NOWHERE and self._stamps[card_ref] == stamp
        return placed, held

    def forgotten(self, to_zone: str, stamp: Stamp) -> bool:
        """Return whether a crossing into `to_zone` is older than the zone's last forgiveness
        here (a late or repeated one must not bring a forgiven position back)."""
        forgiven = self._forgiven_at.get(to_zone)
        return forgiven is not None and stamp[0] < forgiven

    def merge(self, card_ref: str, to_zone: str, stamp: Stamp) -> bool:
        """Apply a peer's crossing if it is later than the position's; return whether it was."""
        if self.forgotten(to_zone, stamp):
            return False
        held = self._stamps.get(card_ref)
        # The zone breaks a tie too: two claims with one stamp (only a forged one can) end the
        # same in any order.
        if held is not None and (stamp, to_zone) <= (held, self._positions[card_ref]):
            return False
        self._positions[card_ref] = to_zone
        self._stamps[card_ref] = stamp
        return True

    def restore(self, positions: Iterable[Position]) -> None:
        """Resume after a restart with the stored positions and their stamps."""
        for position in positions:
            if len(position) == 3:
                self.crossed(position[0], position[1], position[2])
            else:
                self.crossed(position[0], position[1])

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
            self._forgiven_at[zone.id] = utc_text(local)
            self._positions = {c: z for c, z in self._positions.items() if z != zone.id}
            self._stamps = {c: s for c, s in self._stamps.items() if c in self._positions}
            forgiven.append(zone.id)
        return forgiven
