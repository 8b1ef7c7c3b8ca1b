"""Tap debouncing: a card held on a reader, or tapped twice in a hurry, is one tap."""

from __future__ import annotations


class TapDebouncer:
    """Decides whether a card's arrival is a new tap.

    A card counts again only after it has been away from the reader for `window_s`
    seconds; while it stays on the reader, it is the same tap.
    """

    def __init__(self, window_s: float) -> None:
        if window_s < 0:
            raise ValueError(f"debounce window must be >= 0 s, got {window_s}")
        self.window_s = window_s
        self._last_seen: dict[str, float] = {}
        self._present: set[str] = set()

    def __repr__(self) -> str:
        return f"<TapDebouncer window={self.window_s}s present={len(self._present)}>"

    def arrived(self, card_ref: str, now: float) -> bool:
        """Note the card on the reader at monotonic time `now`; return True for a new tap."""
        if card_ref in self._present:
            return False
        self._present.add(card_ref)
        last = self._last_seen.get(card_ref)
        self._last_seen[card_ref] = now
        self._forget_before(now - self.window_s)
        return last is None or now - last >= self.window_s

    def left(self, card_ref: str, now: float) -> None:
        """Note that the card left the reader at `now`."""
        self._present.discard(card_ref)
        self._last_seen[card_ref] = now

    def _forget_before(self, cutoff: float) -> None:
        if len(self._last_seen) > 256:
            self._last_seen = {
                ref: t for ref, t in self._last_seen.items() if t >= cutoff or ref in self._present
            }
