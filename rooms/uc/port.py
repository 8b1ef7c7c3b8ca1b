"""The port every UC presence adapter implements, and its errors."""

from __future__ import annotations

from typing import Protocol

from edge.errors import EdgeError
from rooms.uc.states import UcState


class UcError(EdgeError):
    """A UC server could not be told; the message names the server and the fix, never a
    person, a token or a UC id."""


class UcServerError(UcError):
    """The server failed or refused the service itself: everyone's updates wait."""


class UcPersonError(UcError):
    """The server refused one person (unknown UC id, not allowed): only theirs is dropped."""


class UcLaterError(UcError):
    """The server asked to wait before this person's next change: only theirs waits."""

    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PresenceAdapter(Protocol):
    """A UC server that is told each opted-in person's state."""

    name: str  # the server, for logs: e.g. "matrix https://matrix.city.example"

    def publish(self, uc_id: str, state: UcState) -> None:
        """Set the person's status to `state` (AWAY clears what this service set).

        Blocking, never waiting out a rate limit; raises UcServerError, UcPersonError or
        UcLaterError.
        """
        ...

    def refresh_s(self, state: UcState) -> float | None:
        """Return how soon `state` must be set again before the server lets it lapse."""
        ...

    def close(self) -> None:
        """Release connections and sessions; idempotent."""
        ...
