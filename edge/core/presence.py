"""Presence debouncing: raw sensor edges in, occupied / vacant out.

Any presence makes a sensor occupied at once; it turns vacant only after `hold_s` with no
presence, so a person sitting still in a booth does not flicker it (PIR sensors drop out
between movements).
"""

from __future__ import annotations

from edge.core.clock import Instant
from edge.core.spec import PresenceSpec


class PresenceDebouncer:
    """One sensor's debounced state."""

    def __init__(self, spec: PresenceSpec) -> None:
        self.spec = spec
        self.occupied = False
        self._active = False
        self._vacant_at: float | None = None

    def __repr__(self) -> str:
        state = "occupied" if self.occupied else "vacant"
        return f"<PresenceDebouncer {self.spec.id} zone={self.spec.zone} {state}>"

    def edge(self, at: Instant, active: bool) -> bool:
        """Take a raw edge; return True if the debounced state changed."""
        self._active = active
        if active:
            self._vacant_at = None
            if not self.occupied:
                self.occupied = True
                return True
            return False
        if self.occupied:
            self._vacant_at = at.mono + self.spec.hold_s
        return self.tick(at)

    def next_deadline(self) -> float | None:
        """Return the monotonic time the hold timer ends (None while none runs)."""
        return self._vacant_at if self.occupied and not self._active else None

    def tick(self, at: Instant) -> bool:
        """Run the hold timer; return True if the sensor just turned vacant."""
        if (
            self.occupied
            and not self._active
            and self._vacant_at is not None
            and at.mono >= self._vacant_at
        ):
            self.occupied = False
            self._vacant_at = None
            return True
        return False
