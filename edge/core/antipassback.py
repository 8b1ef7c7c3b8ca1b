"""Anti-passback positions: the zone each card was last seen entering, per device.

A card may not enter a zone it is already in (a card passed back to a colleague). Positions
are forgotten once a day at each zone's `forgive_at` local time, so one missed exit
(another gate, a door held for a group) does not lock someone out the next morning. The
forgiveness is dated at that scheduled instant, not when a device got round to it, so
every device of a zone forgets the same crossings, whenever it started.

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
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from types import MappingProxyType

from edge.core.clock import utc_text
from edge.core.spec import AntiPassback, OfflineFallback, ZoneSpec

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

    def __init__(self, zones: Iterable[ZoneSpec], tz: tzinfo = UTC) -> None:
        self._tz = tz  # the site's: forgive_at is local time there
        self._base = {z.id: z for z in zones}
        self._zones = dict(self._base)
        self._positions: dict[str, str] = {}
        self._stamps: dict[str, Stamp] = {}
        self._forgiven_on: dict[str, date] = {}
        self._forgiven_at: dict[str, str] = {}  # zone -> UTC time (contract text) of forgiveness

    def __repr__(self) -> str:
        return f"<AntiPassbackTracker positions={len(self._positions)}>"

    def apply_overrides(
        self,
        overrides: Mapping[str, tuple[str, str | None]],
        offline: Mapping[str, str] = MappingProxyType({}),
    ) -> None:
        """Take anti-passback settings from the access policy for the zones this device knows.

        `offline`: the fallback of each overridden zone; a zone it leaves out falls back hard.
        """
        for zone_id, (mode, forgive) in overrides.items():
            zone = self._base.get(zone_id)
            if zone is not None:
                self._zones[zone_id] = replace(
                    zone,
                    anti_passback=AntiPassback(mode),
                    forgive_at=time.fromisoformat(forgive) if forgive else None,
                    offline=OfflineFallback(offline.get(zone_id, OfflineFallback.HARD)),
                )
        for zone_id, zone in self._base.items():
            if zone_id not in overrides:
                self._zones[zone_id] = zone

    def setting(self, *zones: str, cut_off: bool = False) -> AntiPassback:
        """Return the strictest anti-passback setting among `zones`; `cut_off` (from the
        zones' peers) turns hard into soft in the zones whose offline fallback is soft."""
        settings = [self._effective(self._zones[z], cut_off) for z in zones if z in self._zones]
        return max(settings, key=_STRICTNESS.__getitem__, default=AntiPassback.OFF)

    @staticmethod
    def _effective(zone: ZoneSpec, cut_off: bool) -> AntiPassback:
        if (
            cut_off
            and zone.offline is OfflineFallback.SOFT
            and zone.anti_passback is AntiPassback.HARD
        ):
            return AntiPassback.SOFT
        return zone.anti_passback

    def soft_fallback_zones(self) -> list[str]:
        """Return the zones with anti-passback on that fall back to soft while cut off."""
        return sorted(
            z.id
            for z in self._zones.values()
            if z.anti_passback is not AntiPassback.OFF and z.offline is OfflineFallback.SOFT
        )

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

    def causal(self, card_ref: str, now: datetime) -> datetime:
        """Return the time to stamp this device's next crossing of the card with: `now`, or
        1 ms after the position's stamp if that is later (a peer's clock ahead of this one).

        A crossing made after this device learnt the card's last one is then later wherever
        the two meet, whatever the clocks say: an exit here is never lost to the entry it
        follows. A peer's stamp is at most 5 minutes ahead (later ones are refused).
        """
        held = self._stamps.get(card_ref)
        if held is None:
            return now
        return max(now, datetime.fromisoformat(held[0]) + timedelta(milliseconds=1))

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

    def contradicted(
        self, card_ref: str, from_zone: str, to_zone: str, stamp: Stamp, device: str
    ) -> tuple[str, Stamp] | None:
        """Return the zone and stamp of `device`'s own crossing that a peer's crossing
        contradicts, or None.

        It does when the peer's crossing is the later one and leaves another zone than the
        one `device` saw the card enter, a zone with anti-passback on: the card entered twice
        without leaving (a card handed back over the line, or a missed exit). Only the
        device whose crossing it contradicts finds it, so one contradiction is reported once.
        Where anti-passback is off, leaving without a crossing is normal and no conflict.
        """
        held, held_stamp = self._positions.get(card_ref), self._stamps.get(card_ref)
        if held is None or held_stamp is None or held_stamp[1] != device:
            return None
        if self.setting(held) is AntiPassback.OFF:
            return None
        if held in (NOWHERE, from_zone) or self.forgotten(to_zone, stamp):
            return None
        if (stamp, to_zone) <= (held_stamp, held):
            return None  # older: it does not move the card
        return held, held_stamp

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
        """Resume after a restart: a zone forgiven today is not forgiven again, and a peer's
        crossing from before its last forgiveness is still stale."""
        for zone_id, day in dates:
            self._forgiven_on[zone_id] = date.fromisoformat(day)
            zone = self._zones.get(zone_id)
            if zone is not None and zone.forgive_at is not None:
                self._forgiven_at[zone_id] = self._scheduled(
                    self._forgiven_on[zone_id], zone.forgive_at
                )

    def _scheduled(self, day: date, at: time) -> str:
        return utc_text(datetime.combine(day, at, tzinfo=self._tz))

    def forgiven_at(self, zone: str) -> str | None:
        """Return the UTC time (contract text) of the zone's last forgiveness, or None."""
        return self._forgiven_at.get(zone)

    def forgive_due(self, local: datetime) -> list[str]:
        """Forget positions in every zone whose forgive time has come today; return those zones.

        What is forgotten is what was crossed before the scheduled time (a device that
        starts at 10:00 with forgive_at 03:00 keeps the positions crossed since 03:00).
        """
        forgiven = []
        for zone in self._zones.values():
            if zone.forgive_at is None or local.time() < zone.forgive_at:
                continue
            if self._forgiven_on.get(zone.id) == local.date():
                continue
            self._forgiven_on[zone.id] = local.date()
            instant = self._forgiven_at[zone.id] = self._scheduled(local.date(), zone.forgive_at)
            stale = [
                card
                for card, held in self._positions.items()
                if held == zone.id and (card not in self._stamps or self._stamps[card][0] < instant)
            ]
            for card in stale:
                del self._positions[card]
                self._stamps.pop(card, None)
            forgiven.append(zone.id)
        return forgiven
