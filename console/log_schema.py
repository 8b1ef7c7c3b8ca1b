"""The central log's schema: its named migrations, applied in order when the log opens.

sqlite-utils records each migration's name in the database once applied: a name changed
would run its migration again on every existing log.
"""

from __future__ import annotations

from sqlite_utils import Database, Migrations

from console.chain import EVENTS, ack_columns_migration, newest, set_head

migrations = Migrations("edge-console")


@migrations(name="0001_events_devices")
def events_devices(db: Database) -> None:
    """Create the chained events, the devices' seq bookkeeping and status, and occupancy."""
    for statement in (
        "CREATE TABLE events (row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, "
        "device TEXT NOT NULL, seq INTEGER NOT NULL, ts TEXT NOT NULL, kind TEXT NOT NULL, "
        "type TEXT NOT NULL, door TEXT, card_ref TEXT, reason TEXT, body TEXT NOT NULL, "
        "received_at TEXT NOT NULL, hash TEXT NOT NULL)",
        "CREATE UNIQUE INDEX events_device_seq ON events (device, seq)",
        "CREATE INDEX events_ts ON events (ts)",
        "CREATE INDEX events_card ON events (card_ref, ts)",
        "CREATE INDEX events_door ON events (door, ts)",
        "CREATE TABLE devices (device TEXT PRIMARY KEY, contiguous INTEGER NOT NULL, "
        "max_seq INTEGER NOT NULL, duplicates INTEGER NOT NULL DEFAULT 0, "
        "status TEXT, status_at TEXT)",
        "CREATE TABLE occupancy (device TEXT NOT NULL, zone TEXT NOT NULL, count INTEGER, "
        "occupied INTEGER, ts TEXT, PRIMARY KEY (device, zone))",
    ):
        db.execute(statement)


@migrations(name="0002_users_audit_acks")
def users_audit_acks(db: Database) -> None:
    """Create the console's users, its audit trail and alarm acknowledgements."""
    db.table("users").create(
        {"username": str, "role": str, "password_hash": str, "created_at": str},
        pk="username",
        not_null={"role", "password_hash"},
    )
    db.table("audit").create(
        {"id": int, "at": str, "username": str, "action": str, "detail": str}, pk="id"
    )
    db.table("alarm_acks").create(
        {"alarm": str, "username": str, "at": str, "note": str}, pk="alarm"
    )


@migrations(name="0003_search_indexes")
def search_indexes(db: Database) -> None:
    """Index door and card alone: their entries end in the row, so newest-first pages of one
    door or card are read straight off the index (a (door, ts) index had to sort them)."""
    db.execute("DROP INDEX IF EXISTS events_door")
    db.execute("DROP INDEX IF EXISTS events_card")
    db.execute("CREATE INDEX events_door_row ON events (door)")
    db.execute("CREATE INDEX events_card_row ON events (card_ref)")


@migrations(name="0004_door_time_index")
def door_time_index(db: Database) -> None:
    """Index door with time too: "this door, that day" reads just the day's rows."""
    db.execute("CREATE INDEX events_door_ts ON events (door, ts)")


@migrations(name="0005_refusals")
def refusals(db: Database) -> None:
    """Keep refused messages aside (reason, never the payload); flag implausible device times."""
    db.execute(
        "CREATE TABLE refusals (id INTEGER PRIMARY KEY, device TEXT NOT NULL, "
        "alarm TEXT NOT NULL, reason TEXT NOT NULL, topic TEXT NOT NULL, size INTEGER NOT NULL, "
        "digest TEXT NOT NULL, count INTEGER NOT NULL DEFAULT 1, at TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX refusals_device ON refusals (device, id)")
    db.execute(
        "CREATE TABLE refusal_totals (device TEXT NOT NULL, alarm TEXT NOT NULL, "
        "total INTEGER NOT NULL, first_at TEXT NOT NULL, last_at TEXT NOT NULL, "
        "last_reason TEXT NOT NULL, PRIMARY KEY (device, alarm))"
    )
    db.execute("ALTER TABLE events ADD COLUMN ts_implausible INTEGER NOT NULL DEFAULT 0")


@migrations(name="0006_chain")
def chain_every_column(db: Database) -> None:
    """Chain every column of new events (`scheme` 2; older rows keep 1, the body only), and
    the audit trail and alarm acknowledgements (their rows so far are chained now)."""
    db.execute("ALTER TABLE events ADD COLUMN scheme INTEGER NOT NULL DEFAULT 1")
    db.execute(
        "CREATE TABLE chain_heads (chain TEXT PRIMARY KEY, row INTEGER NOT NULL, "
        "hash TEXT NOT NULL)"
    )
    ack_columns_migration(db.conn)
    if db.execute("SELECT 1 FROM events LIMIT 1").fetchone():
        set_head(db.conn, EVENTS, *newest(db.conn, EVENTS))


@migrations(name="0007_sessions")
def sessions(db: Database) -> None:
    """Keep the web page's sessions on the server; let a user be disabled."""
    db.execute("ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0")
    db.execute(
        "CREATE TABLE sessions (key TEXT PRIMARY KEY, username TEXT NOT NULL, "
        "csrf TEXT NOT NULL, created REAL NOT NULL, last_seen REAL NOT NULL)"
    )
    db.execute("CREATE INDEX sessions_username ON sessions (username)")


@migrations(name="0008_zone_indexes")
def zone_indexes(db: Database) -> None:
    """Index movements by the zone they enter and leave, and zone resets by zone, each with
    time: a zone's head count since its baseline reads only the rows since then
    (console.headcount). Partial indexes on the body's fields, written as the queries write
    them (SQLite uses such an index only for the same expression and condition)."""
    for name, field, kind, types in (
        ("events_into_zone", "to_zone", "access", MOVES),
        ("events_out_of_zone", "from_zone", "access", MOVES),
        ("events_zone_baseline", "zone", "system", BASELINES),
    ):
        db.execute(
            f"CREATE INDEX {name} ON events (json_extract(body, '$.{field}'), ts) "
            f"WHERE kind = '{kind}' AND type IN {types}"
        )


@migrations(name="0009_rooms")
def rooms_table(db: Database) -> None:
    """Keep the rooms service's newest building view and status (console.rooms_view)."""
    db.execute(
        "CREATE TABLE rooms (what TEXT PRIMARY KEY, body TEXT NOT NULL, received_at TEXT NOT NULL)"
    )


@migrations(name="0010_sites")
def sites(db: Database) -> None:
    """Give events, devices, occupancy and refusals their site (NULL: the log's own site,
    as every row written before sites existed), and keep each site's link (`sites`)."""
    for table in ("events", "devices", "occupancy", "refusals"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN site TEXT")
    db.execute("CREATE INDEX events_site_ts ON events (site, ts)")
    # Totals are keyed by site too; '' is the log's own site (a key column cannot be NULL).
    db.execute("ALTER TABLE refusal_totals RENAME TO refusal_totals_unsited")
    db.execute(
        "CREATE TABLE refusal_totals (site TEXT NOT NULL DEFAULT '', device TEXT NOT NULL, "
        "alarm TEXT NOT NULL, total INTEGER NOT NULL, first_at TEXT NOT NULL, "
        "last_at TEXT NOT NULL, last_reason TEXT NOT NULL, PRIMARY KEY (site, device, alarm))"
    )
    db.execute(
        "INSERT INTO refusal_totals (device, alarm, total, first_at, last_at, last_reason) "
        "SELECT device, alarm, total, first_at, last_at, last_reason FROM refusal_totals_unsited"
    )
    db.execute("DROP TABLE refusal_totals_unsited")
    db.execute(
        "CREATE TABLE sites (site TEXT PRIMARY KEY, connected INTEGER, stored INTEGER, "
        "link_at TEXT)"
    )


@migrations(name="0011_rooms_sites")
def rooms_sites(db: Database) -> None:
    """Key the rooms service's view and status by site ('' is the log's own), so one site's
    rooms service never overwrites another's."""
    db.execute("ALTER TABLE rooms RENAME TO rooms_unsited")
    db.execute(
        "CREATE TABLE rooms (site TEXT NOT NULL DEFAULT '', what TEXT NOT NULL, "
        "body TEXT NOT NULL, received_at TEXT NOT NULL, PRIMARY KEY (site, what))"
    )
    db.execute(
        "INSERT INTO rooms (what, body, received_at) SELECT what, body, received_at "
        "FROM rooms_unsited"
    )
    db.execute("DROP TABLE rooms_unsited")


@migrations(name="0012_site_index")
def site_index(db: Database) -> None:
    """Index the site alone: its entries end in the row, so a site's newest page (and its
    denied ones) are read straight off the index, as a door's are."""
    db.execute("CREATE INDEX events_site_row ON events (site)")


# The zone indexes' conditions; a query must hold the same term for SQLite to use them.
MOVES = "('crossing', 'button_exit')"
BASELINES = "('occupancy_reset', 'anti_passback_forgiven')"
