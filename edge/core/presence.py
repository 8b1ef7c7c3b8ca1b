"""Presence debouncing: raw sensor edges in, occupied / vacant out.

Any presence makes a sensor occupied at once; it turns vacant only after `hold_s` with no
presence, so a person sitting still in a booth does not flicker it (PIR sensors drop out
between movements; a radar's output holds for a still person, so its hold is short).

A sensor in fault (a radar that sends no frames) keeps the state it had: silence is not
absence, so a fault never turns a zone vacant. When it answers again, the hold starts anew.
A sensor that reports (an LD2410 on a UART) is not OK until its first report: a radar that
never spoke has not said the zone is empty.
"""

from __future__ import annotations

from edge.core.clock import Instant
from edge.core.spec import PresenceSpec


class PresenceDebouncer:
    """One sensor's debounced state."""

    def __init__(self, spec: PresenceSpec) -> None:
        self.spec = spec
        self.occupied = False
        self.fault = False
        self.heard = not spec.reports
        self._active = False
        self._vacant_at: float | None = None
        self._quiet_since: float | None = None  # raw output off, and the sensor OK, since then

    def __repr__(self) -> str:
        state = "occupied" if self.occupied else "vacant"
        fault = " fault" if self.fault else ""
        return f"<PresenceDebouncer {self.spec.id} zone={self.spec.zone} {state}{fault}>"

    @property
    def active(self) -> bool:
        """True while the sensor's raw output says someone is there."""
        return self._active

    @property
    def ok(self) -> bool:
        """True while the sensor works: heard since the start and not in fault."""
        return self.heard and not self.fault

    @property
    def quiet_since(self) -> float | None:
        """Return since when a working sensor's output has said nobody (None: it does not)."""
        return self._quiet_since if self.ok else None

    def edge(self, at: Instant, active: bool) -> bool:
        """Take a raw edge; return True if the debounced state changed."""
        self.heard = True
        if active or self._active or self._quiet_since is None:
            self._quiet_since = None if active else at.mono
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

    def set_fault(self, at: Instant, fault: bool) -> bool:
        """Mark the sensor in fault or back; return True if that changed."""
        if fault == self.fault:
            return False
        self.fault = fault
        # Silence is not absence: the quiet counts again only from the sensor's return.
        self._quiet_since = None
        if not fault:
            self.heard = True
            if not self._active:
                self._quiet_since = at.mono
        if not fault and self.occupied and not self._active:
            self._vacant_at = at.mono + self.spec.hold_s
        return True

    def hold(self, at: Instant) -> None:
        """Be occupied now, vacant after `hold_s` unless presence comes (a restored state)."""
        self.occupied = True
        if not self._active:
            self._vacant_at = at.mono + self.spec.hold_s

    def next_deadline(self) -> float | None:
        """Return the monotonic time the hold timer ends (None while none runs)."""
        if self.fault or not self.occupied or self._active:
            return None
        return self._vacant_at

    def tick(self, at: Instant) -> bool:
        """Run the hold timer; return True if the sensor just turned vacant."""
        deadline = self.next_deadline()
        if deadline is not None and at.mono >= deadline:
            self.occupied = False
            self._vacant_at = None
            return True
        return False
