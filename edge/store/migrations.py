"""The store's schema, as named migrations applied in order (never edited once shipped)."""

from __future__ import annotations

from datetime import datetime

from sqlite_utils import Database, Migrations

from edge.store.guard import Guard, ms, write_row

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


@migrations(name="0004_rollback_guard")
def rollback_guard(db: Database) -> None:
    """Keep nonce expiries as instants (ms since 1970) and the rollback guard in one row."""

    def instant(text: object) -> int | None:
        try:
            moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
        except ValueError:
            return None
        return ms(moment) if moment.tzinfo is not None else None

    db.table("nonces").add_column("expires_ms", int)
    latest = 0
    for nonce, text in db.execute("SELECT nonce, expires_at FROM nonces").fetchall():
        value = instant(text)
        if value is None:  # never written by the agent; no command can match it
            db.execute("DELETE FROM nonces WHERE nonce = ?", [nonce])
            continue
        latest = max(latest, value)
        db.execute("UPDATE nonces SET expires_ms = ? WHERE nonce = ?", [value, nonce])
    db.execute("CREATE INDEX nonces_expires_ms ON nonces (expires_ms)")
    db.table("rollback_guard").create(
        {"id": int, "credentials_version": int, "command_mark_ms": int, "command_expiry_ms": int},
        pk="id",
    )
    version = db.execute("SELECT max(version) FROM policy").fetchone()[0] or 0
    hwm = db.execute("SELECT value FROM device_state WHERE key = 'clock_hwm'").fetchone()
    mark = (instant(hwm[0]) or 0) if hwm else 0
    db.execute("DELETE FROM device_state WHERE key = 'clock_hwm'")
    if version or mark or latest:
        write_row(db, Guard(int(version), mark, latest))


@migrations(name="0005_card_profiles")
def card_profiles(db: Database) -> None:
    """Keep what each card can prove and the key this device checks it with."""
    db.table("credentials").add_column("profile", str, not_null_default="uid")
    db.table("credentials").add_column("card_key", str)


@migrations(name="0006_pins")
def pins(db: Database) -> None:
    """Keep each card's PIN hash (salted scrypt, text form of edge.pin_hash), if it has one."""
    db.table("credentials").add_column("pin", str)


@migrations(name="0007_position_stamps")
def position_stamps(db: Database) -> None:
    """Stamp each anti-passback position with its crossing (ts, device, seq) for merging."""
    db.table("positions").add_column("ts", str)
    db.table("positions").add_column("device", str)
    db.table("positions").add_column("seq", int)


@migrations(name="0008_position_origins")
def position_origins(db: Database) -> None:
    """Keep the zone each position's crossing left and, for this device's own, the seq of its
    event, for the positions digests."""
    db.table("positions").add_column("from_zone", str)
    db.table("positions").add_column("event_seq", int)
