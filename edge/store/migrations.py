"""The store's schema, as named migrations applied in order (never edited once shipped)."""

from __future__ import annotations

from sqlite_utils import Database, Migrations

migrations = Migrations("edge-agent")


@migrations(name="0001_outbox_and_state")
def outbox_and_state(db: Database) -> None:
    """Create the outbox, the sequence counter and the agent state."""
    db.table("outbox").create(
        {"seq": int, "kind": str, "payload": str}, pk="seq", not_null={"kind", "payload"}
    )
    db.table("counters").create({"name": str, "value": int}, pk="name", not_null={"value"})
    db.table("device_state").create({"key": str, "value": str}, pk="key", not_null={"value"})
    db.table("positions").create({"card_ref": str, "zone": str}, pk="card_ref", not_null={"zone"})
    db.table("occupancy").create({"zone": str, "count": int}, pk="zone", not_null={"count"})


@migrations(name="0002_credentials")
def credentials(db: Database) -> None:
    """Create credentials and the deny list, keyed by card reference."""
    db.table("credentials").create(
        {"ref": str, "groups": str, "valid_from": str, "valid_until": str},
        pk="ref",
        not_null={"groups"},
    )
    db.table("deny").create({"ref": str, "reason": str}, pk="ref", not_null={"reason"})
    db.table("policy").create({"id": int, "version": int, "body": str}, pk="id")


@migrations(name="0003_command_nonces")
def command_nonces(db: Database) -> None:
    """Remember command nonces until they expire, so a replayed command is refused."""
    db.table("nonces").create(
        {"nonce": str, "expires_at": str}, pk="nonce", not_null={"expires_at"}
    )
