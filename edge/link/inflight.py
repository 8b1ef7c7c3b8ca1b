"""Outbox events in flight: an event may go out in several publishes (its event topic and the
crossings of its zones), and it is done only once the broker has acknowledged every one."""

from __future__ import annotations


class Inflight:
    """mid -> seq of each publish waiting for its PUBACK, and how many each seq still waits for."""

    def __init__(self) -> None:
        self._seqs: dict[int, int] = {}
        self._waiting: dict[int, int] = {}
        self._refused: set[int] = set()

    def __repr__(self) -> str:
        return f"<Inflight publishes={len(self._seqs)} events={len(self._waiting)}>"

    def __len__(self) -> int:
        return len(self._seqs)

    def add(self, mid: int, seq: int) -> None:
        """Remember one publish of event `seq`."""
        self._seqs[mid] = seq
        self._waiting[seq] = self._waiting.get(seq, 0) + 1

    def ack(self, mid: int, ok: bool) -> tuple[int, bool] | None:
        """Take a PUBACK; return (seq, every publish acknowledged) once its last one is in.

        None for a mid that is not ours (a status, a reply, one from before a reconnect).
        """
        seq = self._seqs.pop(mid, None)
        if seq is None:
            return None
        if not ok:
            self._refused.add(seq)
        self._waiting[seq] -= 1
        if self._waiting[seq]:
            return None
        del self._waiting[seq]
        refused = seq in self._refused
        self._refused.discard(seq)
        return seq, not refused

    def refuse(self, seq: int) -> None:
        """Keep event `seq` in the outbox even if its other publishes are acknowledged."""
        if seq in self._waiting:
            self._refused.add(seq)

    def clear(self) -> None:
        """Forget everything in flight (a reconnect: the outbox is sent again from the oldest)."""
        self._seqs.clear()
        self._waiting.clear()
        self._refused.clear()
