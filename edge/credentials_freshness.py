"""How fresh the device's credential set is: pick up a newer set, judge it stale.

One judgement for the agent's loop (the `credentials_stale` alarm) and for the retained
status payload (`credentials.stale`): a set with no issue time, or older than the
configured limit, is stale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from edge.core.clock import Instant
from edge.core.controller import Controller
from edge.core.outputs import EventKind, Output, record
from edge.store.credentials import SqliteCredentials


@dataclass(frozen=True)
class Freshness:
    """The stored credential set's version, issue time and age, and whether it is stale."""

    version: int
    issued_at: str | None
    age_s: float | None
    stale: bool


def judge(credentials: SqliteCredentials, now: datetime, stale_after_s: float) -> Freshness:
    """Return how fresh the stored set is at `now` (aware UTC)."""
    issued = credentials.meta().get("issued_at")
    age_s = (now - datetime.fromisoformat(issued)).total_seconds() if issued else None
    return Freshness(
        version=credentials.version(),
        issued_at=issued,
        age_s=age_s,
        stale=age_s is None or age_s > stale_after_s,
    )


class CredentialRefresh:
    """Hands a newer stored set to the core and raises or clears `credentials_stale`.

    `changed` is told (on the loop's thread) whenever what the status shows has changed:
    a new set applied, or the set turned stale or fresh again.
    """

    def __init__(
        self,
        controller: Controller,
        credentials: SqliteCredentials,
        *,
        stale_after_s: float,
        changed: Callable[[], None],
    ) -> None:
        self.controller = controller
        self.credentials = credentials
        self.stale_after_s = stale_after_s
        self.changed = changed
        self.stale_alarm = False

    def __repr__(self) -> str:
        return (
            f"<CredentialRefresh v{self.controller.policy.version} "
            f"stale_after_s={self.stale_after_s:g} stale={self.stale_alarm}>"
        )

    def check(self, now: Instant, stale: bool = True) -> list[Output]:
        """Pick up a newer credential set; with `stale`, raise or clear credentials_stale.

        A tap checks only the version (one indexed row); the age is judged on the ticks.
        """
        out: list[Output] = []
        version = self.credentials.version()
        if version != self.controller.policy.version:
            self.controller.policy = self.credentials.policy()
            meta = self.credentials.meta()
            # A set that came over MQTT had its event stored with it, in one transaction.
            if not meta.get("recorded"):
                out.append(
                    record(
                        EventKind.SYSTEM,
                        "credentials_applied",
                        now.utc,
                        version=version,
                        cards=meta.get("cards"),
                        issued_at=meta.get("issued_at"),
                    )
                )
            self.changed()
        if not stale:
            return out
        fresh = judge(self.credentials, now.utc, self.stale_after_s)
        if fresh.stale != self.stale_alarm:
            self.stale_alarm = fresh.stale
            self.changed()
            out.append(
                record(
                    EventKind.ALARM,
                    "credentials_stale",
                    now.utc,
                    state="raised" if fresh.stale else "cleared",
                    version=version,
                    age_h=None if fresh.age_s is None else round(fresh.age_s / 3600, 2),
                )
            )
        return out
