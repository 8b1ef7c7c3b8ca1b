"""Which cards changed since each device's base snapshot: a journal kept by the registry.

SQLite triggers write the reference of every card whose entry may have changed (its
status, owner, profile or keys; its holder's groups, validity or PIN; a pass on it) to
`card_journal`, in the same transaction as the change, whoever makes it. Each device's
last full snapshot (its base) is remembered with the journal position it was read at, so
a publish reads the cards touched since then, not the whole registry per device.

The tables live in their own migrations (applied when a publish starts): a registry that
never published keeps none, and its first publish sends full snapshots.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlite_utils import Database, Migrations

from provisioning.registry import Registry

migrations = Migrations("edge-provision-deltas")

DELTA_SHARE = 0.2
"""A delta larger than this share of the device's last full snapshot is sent as a new full one."""
REF_BYTES = 48  # the least a touched card adds to a delta (a 64-hex reference, compressed, base64)

_LOG = "INSERT INTO card_journal (card_ref)"
# A pass is live only while its holder has no revoked card without an active one, so a
# card's change journals its holder's passes too. Updates that change nothing a device
# holds (a name, a department, `updated_at` on every import) journal nothing.
_TRIGGERS = (
    "cards_insert AFTER INSERT ON cards BEGIN {log} VALUES (NEW.card_ref); "
    "{log} SELECT card_ref FROM passes WHERE staff_no = NEW.staff_no; END",
    "cards_update AFTER UPDATE ON cards WHEN OLD.status IS NOT NEW.status "
    "OR OLD.staff_no IS NOT NEW.staff_no OR OLD.profile IS NOT NEW.profile "
    "OR OLD.card_keys IS NOT NEW.card_keys OR OLD.card_ref IS NOT NEW.card_ref BEGIN "
    "{log} VALUES (OLD.card_ref), (NEW.card_ref); "
    "{log} SELECT card_ref FROM passes WHERE staff_no IN (OLD.staff_no, NEW.staff_no); END",
    "cards_delete AFTER DELETE ON cards BEGIN {log} VALUES (OLD.card_ref); "
    "{log} SELECT card_ref FROM passes WHERE staff_no = OLD.staff_no; END",
    "people_insert AFTER INSERT ON people BEGIN "
    "{log} SELECT card_ref FROM cards WHERE staff_no = NEW.staff_no "
    "UNION SELECT card_ref FROM passes WHERE staff_no = NEW.staff_no; END",
    "people_update AFTER UPDATE ON people WHEN OLD.groups IS NOT NEW.groups "
    "OR OLD.valid_from IS NOT NEW.valid_from OR OLD.valid_until IS NOT NEW.valid_until "
    "OR OLD.pin IS NOT NEW.pin OR OLD.staff_no IS NOT NEW.staff_no BEGIN "
    "{log} SELECT card_ref FROM cards WHERE staff_no IN (OLD.staff_no, NEW.staff_no) "
    "UNION SELECT card_ref FROM passes WHERE staff_no IN (OLD.staff_no, NEW.staff_no); END",
    "people_delete AFTER DELETE ON people BEGIN "
    "{log} SELECT card_ref FROM cards WHERE staff_no = OLD.staff_no "
    "UNION SELECT card_ref FROM passes WHERE staff_no = OLD.staff_no; END",
    "passes_insert AFTER INSERT ON passes BEGIN {log} VALUES (NEW.card_ref); END",
    "passes_update AFTER UPDATE ON passes BEGIN {log} VALUES (OLD.card_ref), (NEW.card_ref); END",
    "passes_delete AFTER DELETE ON passes BEGIN {log} VALUES (OLD.card_ref); END",
)


@migrations(name="0001_card_journal")
def card_journal(db: Database) -> None:
    """Journal every card whose entry on a device may have changed, by triggers."""
    db.execute(
        "CREATE TABLE card_journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, card_ref TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS passes_staff_no ON passes (staff_no)")
    for trigger in _TRIGGERS:
        db.execute("CREATE TRIGGER card_journal_" + trigger.replace("{log}", _LOG))


@migrations(name="0002_credential_bases")
def credential_bases(db: Database) -> None:
    """Remember each device's last full snapshot: version, journal position, size, shape."""
    db.table("credential_bases").create(
        {"device": str, "version": int, "journal": int, "fingerprint": str, "bytes": int},
        pk="device",
        not_null={"version", "journal", "fingerprint", "bytes"},
    )


_ADD = (
    "INSERT INTO card_counts (groups, cards) SELECT coalesce(p.groups, '[]'), {n} "
    "FROM people p WHERE p.staff_no = {who} AND {when} "
    "ON CONFLICT(groups) DO UPDATE SET cards = cards + excluded.cards;"
)
_TAKE = (
    "INSERT INTO card_counts (groups, cards) VALUES (coalesce(OLD.groups, '[]'), -{n}) "
    "ON CONFLICT(groups) DO UPDATE SET cards = cards + excluded.cards;"
)
_ACTIVE = "(SELECT count(*) FROM cards WHERE staff_no = {who} AND status = 'active')"
# The active cards per combination of groups, kept by triggers: a delta's card count reads
# these few rows, not every card of the site.
_COUNT_TRIGGERS = (
    "cards_insert AFTER INSERT ON cards BEGIN "
    + _ADD.format(n="1", who="NEW.staff_no", when="NEW.status = 'active'")
    + " END",
    "cards_update AFTER UPDATE ON cards WHEN OLD.status IS NOT NEW.status "
    "OR OLD.staff_no IS NOT NEW.staff_no BEGIN "
    + _ADD.format(n="-1", who="OLD.staff_no", when="OLD.status = 'active'")
    + _ADD.format(n="1", who="NEW.staff_no", when="NEW.status = 'active'")
    + " END",
    "cards_delete AFTER DELETE ON cards BEGIN "
    + _ADD.format(n="-1", who="OLD.staff_no", when="OLD.status = 'active'")
    + " END",
    "people_insert AFTER INSERT ON people BEGIN "
    + _ADD.format(n=_ACTIVE.format(who="NEW.staff_no"), who="NEW.staff_no", when="true")
    + " END",
    "people_update AFTER UPDATE ON people WHEN OLD.groups IS NOT NEW.groups "
    "OR OLD.staff_no IS NOT NEW.staff_no BEGIN "
    + _TAKE.format(n=_ACTIVE.format(who="OLD.staff_no"))
    + _ADD.format(n=_ACTIVE.format(who="NEW.staff_no"), who="NEW.staff_no", when="true")
    + " END",
    "people_delete AFTER DELETE ON people BEGIN "
    + _TAKE.format(n=_ACTIVE.format(who="OLD.staff_no"))
    + " END",
)


@migrations(name="0003_card_counts")
def card_counts(db: Database) -> None:
    """Count the active cards per combination of groups, kept by triggers."""
    db.execute("CREATE TABLE card_counts (groups TEXT PRIMARY KEY, cards INTEGER NOT NULL)")
    db.execute(
        "INSERT INTO card_counts (groups, cards) SELECT coalesce(p.groups, '[]'), count(*) "
        "FROM cards c JOIN people p ON p.staff_no = c.staff_no WHERE c.status = 'active' "
        "GROUP BY coalesce(p.groups, '[]')"
    )
    for trigger in _COUNT_TRIGGERS:
        db.execute("CREATE TRIGGER card_counts_" + trigger)


def group_counts(db: Database) -> list[tuple[str, int]]:
    """Return the active cards per combination of groups (groups as JSON text)."""
    return [
        (groups, int(n))
        for groups, n in db.execute("SELECT groups, cards FROM card_counts WHERE cards > 0")
    ]


def ensure(registry: Registry) -> None:
    """Create the journal and the bases table if this registry has none yet."""
    migrations.apply(registry.db)


@dataclass(frozen=True)
class Base:
    """A device's last full snapshot as published."""

    version: int
    journal: int  # the journal position its cards were read at
    fingerprint: str  # edge-provision's DeviceView.fingerprint at the time
    bytes: int


def head(db: Database) -> int:
    """Return the journal's newest position (read it before the cards it covers)."""
    row = db.execute("SELECT max(seq) FROM card_journal").fetchone()
    return int(row[0] or 0)


def bases(db: Database) -> dict[str, Base]:
    """Return every device's base."""
    return {
        device: Base(version, journal, fingerprint, size)
        for device, version, journal, fingerprint, size in db.execute(
            "SELECT device, version, journal, fingerprint, bytes FROM credential_bases"
        )
    }


def touched(db: Database, since: int, until: int) -> set[str]:
    """Return the cards journaled after position `since`, up to `until`."""
    return {
        ref
        for (ref,) in db.execute(
            "SELECT DISTINCT card_ref FROM card_journal WHERE seq > ? AND seq <= ?",
            [since, until],
        )
    }


def worth_a_delta(base: Base, refs: int, share: float) -> bool:
    """Return whether a delta of `refs` cards may stay under `share` of the base's size."""
    return refs * REF_BYTES <= share * base.bytes


def set_base(db: Database, device: str, base: Base) -> None:
    """Record a device's new base; call inside the publish's write transaction."""
    db.execute(
        "INSERT INTO credential_bases (device, version, journal, fingerprint, bytes) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(device) DO UPDATE SET version = excluded.version, "
        "journal = excluded.journal, fingerprint = excluded.fingerprint, bytes = excluded.bytes",
        [device, base.version, base.journal, base.fingerprint, base.bytes],
    )


def drop_bases(db: Database, devices: list[str]) -> None:
    """Forget devices' bases (their next publish is full); call inside a write transaction."""
    db.conn.executemany("DELETE FROM credential_bases WHERE device = ?", ((d,) for d in devices))


def prune(db: Database) -> int:
    """Drop journal rows every device's base already covers; return how many.

    A device without a base gets a full snapshot anyway, so only devices that have one count.
    """
    row = db.execute(
        "SELECT min(b.journal) FROM credential_bases b JOIN devices d ON d.id = b.device"
    ).fetchone()
    if row is None or row[0] is None:
        return 0
    return db.execute("DELETE FROM card_journal WHERE seq <= ?", [int(row[0])]).rowcount
