"""Zone head counts from crossings, never below zero.

A count is what this device has seen: people who entered a zone by another way are not in
it, so a count that would go negative stops at zero (and the next reset corrects it).
"""

from __future__ import annotations

from collections.abc import Iterable


class OccupancyCounter:
    """Head counts for the zones this device's doors lead into or out of."""

    def __init__(self, zones: Iterable[str]) -> None:
        self._counts = dict.fromkeys(zones, 0)

    def __repr__(self) -> str:
        return f"<OccupancyCounter {self._counts}>"

    def count(self, zone: str) -> int | None:
        """Return the zone's count, or None if this device does not count it."""
        return self._counts.get(zone)

    def cross(self, from_zone: str, to_zone: str) -> list[str]:
        """Move one person; return the zones whose count changed."""
        changed = []
        if self._counts.get(from_zone, 0) > 0:
            self._counts[from_zone] -= 1
            changed.append(from_zone)
        if to_zone in self._counts:
            self._counts[to_zone] += 1
            changed.append(to_zone)
        return changed

    def reset(self, zone: str, count: int = 0) -> bool:
        """Set a zone's count by hand; return True if the zone is counted here."""
        if zone not in self._counts:
            return False
        self._counts[zone] = max(0, count)
        return True
