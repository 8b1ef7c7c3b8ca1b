"""The retained status payload, read from the store by the link's own connection."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from edge.core.clock import utc_text
from edge.credentials_freshness import judge
from edge.link.payloads import CredentialsState, StatusPayload
from edge.store import outbox
from edge.store.credentials import SqliteCredentials


def status_builder(
    *,
    site: str,
    device: str,
    software: str,
    config_hash: str,
    clock_synced: Callable[[], bool],
    stale_after_s: float,
) -> Callable[[Database, str], dict[str, Any]]:
    """Return a function that builds the status payload from a store connection."""

    def build(db: Database, state: str) -> dict[str, Any]:
        now = datetime.now(UTC)
        fresh = judge(SqliteCredentials(db), now, stale_after_s)
        payload = StatusPayload(
            device=device,
            site=site,
            state="online" if state == "online" else "offline",
            ts=utc_text(now),
            software=software,
            config_hash=config_hash,
            credentials=CredentialsState(
                version=fresh.version,
                issued_at=fresh.issued_at,
                age_s=None if fresh.age_s is None else round(fresh.age_s, 1),
                stale=fresh.stale,
            ),
            clock_synced=clock_synced(),
            backlog=outbox.backlog(db),
        )
        return payload.model_dump()

    return build
