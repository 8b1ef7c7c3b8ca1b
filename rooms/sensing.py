"""What the service knows of one zone's presence: pure data the engine judges.

The feed builds a `Sensing` per zone from the devices' messages; the check-in engine asks it
two questions: was anyone seen in a window, and was the reading trustworthy all that time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

Span = tuple[datetime, datetime | None]  # seen occupied from .. to (None: still occupied)


@dataclass(frozen=True, slots=True)
class Sensing:
    """One zone's reading at a moment, with its recent history."""

    zone: str
    device: str  # the one device trusted for this zone
    occupied: bool | None  # None: unknown (see `reason`)
    spans: tuple[Span, ...] = ()  # times seen occupied, oldest first
    healthy_since: datetime | None = None  # continuously trustworthy since (None: not now)
    unhealthy_since: datetime | None = None  # when the current or last trouble began
    reason: str = ""  # why unknown now, in plain words ("" while healthy)
    last_status_at: datetime | None = None  # when the device's status was last heard

    @property
    def known(self) -> bool:
        """True while the reading can be trusted."""
        return self.occupied is not None and self.healthy_since is not None

    def presence_between(self, start: datetime, end: datetime) -> datetime | None:
        """Return the first moment seen occupied within [start, end], or None."""
        for begin, finish in self.spans:
            if begin <= end and (finish is None or finish >= start):
                return max(begin, start)
        return None

    def healthy_throughout(self, start: datetime) -> bool:
        """Return whether the reading has been trustworthy, without a break, since `start`."""
        return self.known and self.healthy_since is not None and self.healthy_since <= start

    def vacant_since(self) -> datetime | None:
        """Return when the zone was last seen occupied (None: never seen, or occupied now)."""
        if self.occupied is not False or not self.spans:
            return None
        return self.spans[-1][1]
