"""The room latch ("wasp in a box"): a closed room where someone was seen stays occupied.

A PIR loses a person who sits still; a booth's door does not lie. Presence seen after the
room's doors all closed means someone is shut in: the room stays occupied, whatever the
sensors say, until one of its doors opens. Then the latch clears and the normal hold runs
from the opening: vacant after `hold_s` with no presence (someone left), or kept occupied
by presence (someone is still there). A door opening by itself never makes a room occupied.

"Seen after the close" is a new detection after the close, or a sensor output still on
`latch_after_s` after it: a sensor's output outlasts the person who just walked out and
shut the door by a few seconds, and a radar's output holds for a still person, so it never
rises again.
"""

from __future__ import annotations

from collections.abc import Iterable

from edge.core.clock import Instant


class RoomLatch:
    """The doors of one booth or meeting room and the latch they hold."""

    def __init__(
        self, zone: str, doors: Iterable[str], *, hold_s: float, latch_after_s: float
    ) -> None:
        self.zone = zone
        self.hold_s = hold_s
        self.latch_after_s = latch_after_s
        self._open: dict[str, bool | None] = dict.fromkeys(doors)  # None: not read yet
        self.latched = False
        self._closed_at: float | None = None  # while every door is closed, since when
        self._settle_at: float | None = None  # when a still-on sensor latches the room
        self._release_at: float | None = None  # the hold after the latch cleared

    def __repr__(self) -> str:
        shown = {None: "?", True: "open", False: "shut"}
        doors = ",".join(f"{d}={shown[o]}" for d, o in self._open.items())
        return f"<RoomLatch {self.zone} {doors} latched={self.latched}>"

    @property
    def closed(self) -> bool:
        """True while every door of the room is known to be closed."""
        return all(state is False for state in self._open.values())

    @property
    def occupied(self) -> bool:
        """True while the latch, or the hold after it cleared, keeps the room occupied."""
        return self.latched or self._release_at is not None

    def door(self, at: Instant, door: str, is_open: bool) -> bool:
        """Take a door's contact; return True if the door's state changed."""
        if self._open.get(door) is is_open:
            return False
        self._open[door] = is_open
        if is_open:
            self._closed_at = self._settle_at = None
            if self.latched:
                self.latched = False
                self._release_at = at.mono + self.hold_s
        elif self.closed:
            self._closed_at = at.mono
            self._settle_at = at.mono + self.latch_after_s
        return True

    def presence(self, at: Instant) -> bool:
        """Take a new detection in the room; return True if it latched the room."""
        if self.latched or self._closed_at is None or at.mono <= self._closed_at:
            return False
        self.latched = True
        self._settle_at = self._release_at = None
        return True

    def restore(self, at: Instant) -> None:
        """Latch again after a restart (the doors, read at start, may clear it)."""
        self.latched = True
        self._closed_at = at.mono if self.closed else None

    def next_deadline(self) -> float | None:
        """Return the monotonic time the next check or the release hold is due, or None."""
        times = [t for t in (self._settle_at, self._release_at) if t is not None]
        return min(times, default=None)

    def tick(self, at: Instant, sensing: bool) -> bool:
        """Run the timers, `sensing` if a sensor of the room is on; return True if `occupied`
        changed."""
        before = self.occupied
        if self._settle_at is not None and at.mono >= self._settle_at:
            self._settle_at = None
            if sensing and self.closed:
                self.latched = True
                self._release_at = None
        if self._release_at is not None and at.mono >= self._release_at:
            self._release_at = None
        return self.occupied != before
