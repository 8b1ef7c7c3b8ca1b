"""The central log's schema on PostgreSQL: named migrations, applied in order when it opens.

Each migration runs in a transaction of its own and records its name in `migrations` in
that transaction; an advisory lock makes collectors opening the log at once take turns. The
tables mean what the SQLite log's do (console.log_schema), keyed by site where devices and
event ids are a site's. `events` is partitioned by month of its `ts`; it is numbered by one
sequence across sites (`row`, the log's order), and each row keeps the row it chained on
(`prev`): one chain per site. A partitioned table's unique keys must hold its partition key,
so the (site, id) that de-duplicates events is kept in `event_ids`. Names, ids and ISO-8601
times are in collation "C" whatever the database's locale: byte order is time order, and
pages and ranges come out as on SQLite. `json_extract(text, text)` answers the body's
fields as SQLite's does (as text), so the readers' SQL and the zone indexes run unchanged.
"""

from __future__ import annotations

from typing import Final

from console.log_schema import BASELINES, MOVES

Migration = tuple[str, tuple[str, ...]]
C: Final = 'text COLLATE "C"'  # names, ids and times compare byte by byte, as on SQLite

LOCK: Final = 7_172_026  # the advisory lock opening the log takes (any fixed number)
PARTITIONS_LOCK: Final = 7_172_027  # the one creating a month's partition takes

# A fine histogram of `ts`: with the default one the planner walks a month's `row` index
# backwards to answer "one hour, newest first" instead of reading the hour off the `ts`
# index (bench/central_log.py: seconds against a millisecond on 20,000,000 rows). A new
# partition does not inherit it from the parent, so each month's table gets it when made.
TS_STATISTICS: Final = "ALTER TABLE {table} ALTER COLUMN ts SET STATISTICS 1000"

MIGRATIONS: Final[tuple[Migration, ...]] = (
    (
        "0001_events",
        (
            "CREATE SEQUENCE events_row AS bigint",
            "CREATE TABLE events (row bigint NOT NULL DEFAULT nextval('events_row'), "
            f"site {C} NOT NULL, id {C} NOT NULL, device {C} NOT NULL, seq bigint NOT NULL, "
            f"ts {C} NOT NULL, kind {C} NOT NULL, type {C} NOT NULL, door {C}, "
            f"card_ref {C}, reason text, body text NOT NULL, received_at {C} NOT NULL, "
            "ts_implausible integer NOT NULL DEFAULT 0, hash text NOT NULL, "
            "scheme integer NOT NULL DEFAULT 2, prev bigint NOT NULL) PARTITION BY RANGE (ts)",
            "ALTER SEQUENCE events_row OWNED BY events.row",
            # Whatever no month holds lands here: nothing is refused for want of a partition.
            "CREATE TABLE events_default PARTITION OF events DEFAULT",
            f"CREATE TABLE event_ids (site {C} NOT NULL, id {C} NOT NULL, PRIMARY KEY (site, id))",
            "CREATE INDEX events_row_index ON events (row)",
            "CREATE INDEX events_site_row ON events (site, row)",
            "CREATE INDEX events_site_ts ON events (site, ts)",
            "CREATE INDEX events_device_seq ON events (site, device, seq)",
            "CREATE INDEX events_ts ON events (ts)",
            "CREATE INDEX events_door_row ON events (door, row)",
            "CREATE INDEX events_card_row ON events (card_ref, row)",
            "CREATE INDEX events_door_ts ON events (door, ts)",
            f"CREATE TABLE devices (site {C} NOT NULL, device {C} NOT NULL, "
            "contiguous bigint NOT NULL, max_seq bigint NOT NULL, "
            f"duplicates bigint NOT NULL DEFAULT 0, status text, status_at {C}, "
            "PRIMARY KEY (site, device))",
            f"CREATE TABLE occupancy (site {C} NOT NULL, device {C} NOT NULL, "
            f"zone {C} NOT NULL, count integer, occupied integer, ts {C}, "
            "PRIMARY KEY (site, device, zone))",
            f"CREATE TABLE chain_heads (chain {C} PRIMARY KEY, row bigint NOT NULL, "
            "hash text NOT NULL)",
            f"CREATE TABLE sites (site {C} PRIMARY KEY, connected integer, stored bigint, "
            f"link_at {C})",
        ),
    ),
    (
        "0002_zone_indexes",
        (
            # The body's field as text ('$.a.b' is the path a, b), as SQLite's json_extract
            # finds it. PostgreSQL's text holds no NUL: a device's \u0000 is read as U+FFFD
            # (the stored body keeps it), so it can neither refuse its event here nor break
            # every reader's query.
            "CREATE FUNCTION json_extract(body text, path text) RETURNS text LANGUAGE sql "
            "IMMUTABLE STRICT PARALLEL SAFE RETURN (replace(body, '\\u0000', '\\ufffd')::json) "
            "#>> string_to_array(substr(path, 3), '.')",
            *(
                f"CREATE INDEX {name} ON events (json_extract(body, '$.{field}'), ts) "
                f"WHERE kind = '{kind}' AND type IN {types}"
                for name, field, kind, types in (
                    ("events_into_zone", "to_zone", "access", MOVES),
                    ("events_out_of_zone", "from_zone", "access", MOVES),
                    ("events_zone_baseline", "zone", "system", BASELINES),
                )
            ),
        ),
    ),
    (
        "0003_console",
        (
            f"CREATE TABLE users (username {C} PRIMARY KEY, role {C} NOT NULL, "
            f"password_hash text NOT NULL, created_at {C}, disabled integer NOT NULL DEFAULT 0)",
            "CREATE TABLE audit (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
            f"at {C}, username {C}, action {C}, detail text, hash text)",
            "CREATE TABLE alarm_acks (row bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
            f"alarm {C} NOT NULL, username {C} NOT NULL, at {C} NOT NULL, note text, "
            "hash text NOT NULL)",
            "CREATE INDEX alarm_acks_alarm ON alarm_acks (alarm, row)",
            f"CREATE TABLE sessions (key {C} PRIMARY KEY, username {C} NOT NULL, "
            "csrf text NOT NULL, created double precision NOT NULL, "
            "last_seen double precision NOT NULL)",
            "CREATE INDEX sessions_username ON sessions (username)",
            f"CREATE TABLE rooms (what {C} PRIMARY KEY, body text NOT NULL, "
            f"received_at {C} NOT NULL)",
        ),
    ),
    (
        "0004_refusals",
        (
            "CREATE TABLE refusals (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
            f"site {C}, device {C} NOT NULL, alarm {C} NOT NULL, reason text NOT NULL, "
            "topic text NOT NULL, size integer NOT NULL, digest text NOT NULL, "
            f"count integer NOT NULL DEFAULT 1, at {C} NOT NULL)",
            "CREATE INDEX refusals_device ON refusals (device, id)",
            "CREATE INDEX refusals_site_device ON refusals (site, device, id)",
            # '' is the log's own site: a key column cannot be NULL.
            f"CREATE TABLE refusal_totals (site {C} NOT NULL DEFAULT '', device {C} NOT NULL, "
            f"alarm {C} NOT NULL, total bigint NOT NULL, first_at {C} NOT NULL, "
            f"last_at {C} NOT NULL, last_reason text NOT NULL, "
            "PRIMARY KEY (site, device, alarm))",
        ),
    ),
    (
        "0005_archive",
        (
            # A month dropped after its export keeps each event's place in its site's chain:
            # its row, the row it chained on, its hash, and its device's seq (for `verify`).
            f"CREATE TABLE events_archived (row bigint PRIMARY KEY, site {C} NOT NULL, "
            f"prev bigint NOT NULL, hash text NOT NULL, device {C} NOT NULL, "
            f"seq bigint NOT NULL, month {C} NOT NULL, archived_at {C} NOT NULL)",
            "CREATE INDEX events_archived_site_row ON events_archived (site, row)",
            "CREATE INDEX events_archived_device ON events_archived (site, device, seq)",
        ),
    ),
    (
        "0006_rooms_sites",
        (
            # One site's rooms service never overwrites another's; '' is the log's own.
            f"ALTER TABLE rooms ADD COLUMN site {C} NOT NULL DEFAULT ''",
            "ALTER TABLE rooms DROP CONSTRAINT rooms_pkey",
            "ALTER TABLE rooms ADD PRIMARY KEY (site, what)",
        ),
    ),
    (
        "0007_alarm_marker",
        (
            # The live pages' marker (each site's newest alarm row) reads it off this index.
            "CREATE INDEX events_alarm_site_row ON events (site, row) WHERE kind = 'alarm'",
        ),
    ),
    ("0008_ts_statistics", (TS_STATISTICS.format(table="events"),)),
)
