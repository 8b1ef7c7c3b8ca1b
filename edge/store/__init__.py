"""The device store: one SQLite file (WAL) with credentials, agent state and the event outbox."""

from edge.store.database import Store, StoreError

__all__ = ["Store", "StoreError"]
