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

A room occupied when its doors close stays occupied for `settle_s` (minutes) while that
detection is awaited: a PIR's output drops seconds after the close, before `latch_after_s`,
and a person who then sits still for a while is only seen again when they move. If nothing
is seen in that window the room may go vacant (whoever it was walked out).

`release` clears the latch and that window without a door opening: the zone's radars saying
nobody for long enough (see `edge.core.zone_presence`).
"""

from __future__ import annotations

from collections.abc import Iterable

from edge.core.clock import Instant


class RoomLatch:
    """The doors of one booth or meeting room and the latch they hold."""

    def __init__(
        self,
        zone: str,
        doors: Iterable[str],
        *,
        hold_s: float,
        latch_after_s: float,
        settle_s: float = 300.0,
    ) -> None:
        self.zone = zone
        self.hold_s = hold_s
        self.latch_after_s = latch_after_s
        self.settle_s = settle_s
        self._open: dict[str, bool | None] = dict.fromkeys(doors)  # None: not read yet
        self.latched = False
        self.held_since: float | None = None  # since when the latch or the window holds
        self._closed_at: float | None = None  # while every door is closed, since when
        self._check_at: float | None = None  # when a still-on sensor latches the room
        self._settle_until: float | None = None  # the window after a close, awaiting presence
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
    def holding(self) -> bool:
        """True while the latch, or the window after a close, holds the room occupied."""
        return self.latched or self._settle_until is not None

    @property
    def occupied(self) -> bool:
        """True while the latch, the window after a close, or the hold after the latch cleared
        keeps the room occupied."""
        return self.holding or self._release_at is not None

    def door(self, at: Instant, door: str, is_open: bool, *, occupied: bool = False) -> bool:
        """Take a door's contact, `occupied` if the room was; return True if it changed."""
        if self._open.get(door) is is_open:
            return False
        self._open[door] = is_open
        if is_open:
            if self.holding:
                self._release_at = at.mono + self.hold_s
            self.latched = False
            self._closed_at = self._check_at = self._settle_until = self.held_since = None
        elif self.closed:
            self._closed_at = at.mono
            self._check_at = at.mono + self.latch_after_s
            if occupied:
                self._settle_until = at.mono + self.settle_s
                self.held_since = at.mono
        return True

    def presence(self, at: Instant) -> bool:
        """Take a new detection in the room; return True if it latched the room."""
        if self.latched or self._closed_at is None or at.mono <= self._closed_at:
            return False
        self._latch(at)
        return True

    def release(self) -> None:
        """Clear the latch and the window after a close: the room's radars see nobody."""
        self.latched = False
        self._check_at = self._settle_until = self._release_at = self.held_since = None

    def restore(self, at: Instant) -> None:
        """Latch again after a restart (the doors, read at start, may clear it)."""
        self._latch(at)
        self._closed_at = at.mono if self.closed else None

    def next_deadline(self) -> float | None:
        """Return the monotonic time the next check or hold is due, or None."""
        times = (self._check_at, self._settle_until, self._release_at)
        return min((t for t in times if t is not None), default=None)

    def tick(self, at: Instant, sensing: bool) -> bool:
        """Run the timers, `sensing` if a working sensor of the room is on; return True if
        `occupied` changed."""
        before = self.occupied
        if self._check_at is not None and at.mono >= self._check_at:
            self._check_at = None
            if sensing and self.closed:
                self._latch(at)
        if self._settle_until is not None and at.mono >= self._settle_until:
            self._settle_until = None
            if not self.latched:
                self.held_since = None
        if self._release_at is not None and at.mono >= self._release_at:
            self._release_at = None
        return self.occupied != before

    def _latch(self, at: Instant) -> None:
        self.latched = True
        self.held_since = at.mono
        self._check_at = self._settle_until = self._release_at = None
