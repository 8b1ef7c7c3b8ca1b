"""A recording UC adapter for the tracker and courier tests (the adapters have real servers)."""

from __future__ import annotations

import threading

from rooms.uc.port import UcLaterError, UcPersonError, UcServerError
from rooms.uc.states import UcState


class RecordingAdapter:
    """Keep every publish; fail on demand like a server that is down or refuses a person."""

    def __init__(
        self, name: str = "fake https://uc.example", refresh_s: float | None = 20.0
    ) -> None:
        self.name = name
        self.calls: list[tuple[str, UcState]] = []
        self.down = False
        self.refused: set[str] = set()
        self.broken = False  # raise something no adapter should (a bug)
        self.later: dict[str, float] = {}  # rate-limited people: the wait the server asks
        self.hang: threading.Event | None = None  # publish blocks until it is set
        self.closed = 0
        self._refresh_s = refresh_s
        self._lock = threading.Lock()

    def publish(self, uc_id: str, state: UcState) -> None:
        with self._lock:
            self.calls.append((uc_id, state))
        if self.hang is not None:
            self.hang.wait(30)
        if self.broken:
            raise KeyError(uc_id)
        if uc_id in self.later:
            raise UcLaterError(f"{self.name}: rate-limited for {uc_id}", self.later[uc_id])
        if self.down:
            raise UcServerError(f"{self.name}: connection refused for {uc_id}")
        if uc_id in self.refused:
            raise UcPersonError(f"{self.name}: no such user {uc_id}")

    def refresh_s(self, state: UcState) -> float | None:
        return None if state is UcState.AWAY else self._refresh_s

    def close(self) -> None:
        self.closed += 1

    def states(self, uc_id: str) -> list[UcState]:
        with self._lock:
            return [s for who, s in self.calls if who == uc_id]
