"""Whether a device is cut off from its zones' peers, and the alarm of each zone it degrades.

A device hears its peers' crossings through the broker. While it does not, its positions
miss what happened at the other gates, and each zone chooses (`OfflineFallback`): hard keeps
refusing on what this device knows; soft grants what anti-passback would refuse, flags each
such grant, and raises `anti_passback_degraded` for the zone until the device hears its peers
again. A link that is down for less than `PEERS_LOST_AFTER_S` (a broker restart, a Wi-Fi
roam) cuts nothing off, so it raises no alarm; the time runs from start until the first
connection too.
"""

from __future__ import annotations

from collections.abc import Iterable

from edge.core.clock import Instant, utc_text
from edge.core.outputs import EventKind, Output, record

PEERS_LOST_AFTER_S = 10.0  # the link down this long: the device is cut off from its peers


class PeerCutoff:
    """The link's state as the loop last saw it, and the zones raised as degraded."""

    def __init__(self, lost_after_s: float = PEERS_LOST_AFTER_S) -> None:
        self.lost_after_s = lost_after_s
        self._down_since: Instant | None = None  # None: up, or an agent without a link
        self._raised: dict[str, str] = {}  # zone -> UTC text of when the link went down
        self._settled = False  # the cut-off has been acted on since the link went down

    def __repr__(self) -> str:
        state = "up" if self._down_since is None else f"down since {utc_text(self._down_since.utc)}"
        return f"<PeerCutoff {state} degraded={sorted(self._raised)}>"

    def link(self, up: bool, at: Instant) -> None:
        """The link came up or went down at `at`."""
        if up:
            self._down_since = None
            self._settled = False
        elif self._down_since is None:
            self._down_since = at
            self._settled = False

    def cut_off(self, at: Instant) -> bool:
        """Return whether the link has been down for `lost_after_s` at `at`."""
        down = self._down_since
        return down is not None and at.mono - down.mono >= self.lost_after_s

    def next_deadline(self) -> float | None:
        """Return the monotonic time the device becomes cut off, if the link is down and that
        has not been acted on yet (with no soft zone there is nothing to raise, and no
        deadline once it has passed)."""
        if self._down_since is None or self._settled:
            return None
        return self._down_since.mono + self.lost_after_s

    def settle(self, at: Instant, soft_zones: Iterable[str]) -> list[Output]:
        """Raise the alarm of each soft-fallback zone while cut off; clear those no longer so."""
        cut_off = self.cut_off(at)
        self._settled = self._settled or cut_off
        want = set(soft_zones) if cut_off else set()
        out: list[Output] = []
        for zone in sorted(set(self._raised) - want):
            since = self._raised.pop(zone)
            out.append(self._alarm(at, zone, "cleared", since))
        if want - set(self._raised):
            assert self._down_since is not None  # cut off: the link is down
            since = utc_text(self._down_since.utc)
            for zone in sorted(want - set(self._raised)):
                self._raised[zone] = since
                out.append(self._alarm(at, zone, "raised", since))
        return out

    @staticmethod
    def _alarm(at: Instant, zone: str, state: str, since: str) -> Output:
        return record(
            EventKind.ALARM, "anti_passback_degraded", at.utc, zone=zone, state=state, since=since
        )
