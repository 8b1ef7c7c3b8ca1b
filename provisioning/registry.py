"""The provisioning registry: one SQLite file per site, schema by named migrations, audited.

It runs past 500 lines because the migrations must stay in one module, in order, beside the
writes that depend on each table's shape; people, cards and their statuses live here, passes
in provisioning.passes.
"""

from __future__ import annotations

import getpass
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database, Migrations

from edge.errors import EdgeError
from edge.pin_hash import pin_text
from edge.store.connection import write_transaction

migrations = Migrations("edge-provision")


@migrations(name="0001_site_accounts_audit")
def site_accounts_audit(db: Database) -> None:
    """Create the site, the broker accounts and the audit trail."""
    db.table("site").create({"id": int, "slug": str, "timezone": str, "created_at": str}, pk="id")
    db.table("accounts").create(
        {"username": str, "role": str, "password_hash": str, "created_at": str}, pk="username"
    )
    db.table("audit").create(
        {"id": int, "ts": str, "actor": str, "action": str, "detail": str}, pk="id"
    )


class RegistryError(EdgeError, ValueError):
    """The registry is missing or an action is not allowed."""


class Registry:
    """A site's registry; every change goes with an audit row in the same transaction."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = Database(path)
        self.db.execute("PRAGMA journal_mode=WAL")
        migrations.apply(self.db)

    def __repr__(self) -> str:
        return f"<Registry {self.path}>"

    def close(self) -> None:
        """Close the file."""
        self.db.close()

    def site(self) -> dict[str, Any]:
        """Return the site, or raise if `site init` has not run."""
        row = self.db.execute("SELECT slug, timezone FROM site WHERE id = 1").fetchone()
        if row is None:
            raise RegistryError(f"{self.path}: no site yet; run edge-provision site init first")
        return {"slug": row[0], "timezone": row[1]}

    def record(self, db: Database, action: str, **detail: object) -> None:
        """Write an audit row (inside the caller's transaction), the OS user as the actor."""
        self.record_by(db, getpass.getuser(), action, detail)

    def record_by(
        self, db: Database, actor: str | None, action: str, detail: Mapping[str, object]
    ) -> None:
        """Write an audit row naming its actor (the console's logged-in user); the OS user
        when None."""
        db.execute(
            "INSERT INTO audit (ts, actor, action, detail) VALUES (?, ?, ?, ?)",
            [
                datetime.now(UTC).isoformat(),
                actor or getpass.getuser(),
                action,
                json.dumps(detail, ensure_ascii=False),
            ],
        )

    def init_site(self, slug: str, timezone: str, key_ids: dict[str, str]) -> None:
        """Create the site row."""
        with write_transaction(self.db) as db:
            if db.execute("SELECT 1 FROM site").fetchone():
                raise RegistryError(f"{self.path} already holds a site")
            db.execute(
                "INSERT INTO site (id, slug, timezone, created_at) VALUES (1, ?, ?, ?)",
                [slug, timezone, datetime.now(UTC).isoformat()],
            )
            self.record(db, "site init", site=slug, timezone=timezone, key_ids=key_ids)

    def add_account(self, username: str, role: str, password_hash: str) -> None:
        """Add a broker account (or replace its password; its role never changes).

        A device's account is named after the device, so a console or operator account may
        not take a device's id, and no account changes role (a device account turned into a
        console would read every device).
        """
        with write_transaction(self.db) as db:
            row = db.execute("SELECT role FROM accounts WHERE username = ?", [username]).fetchone()
            if row is not None and row[0] != role:
                raise RegistryError(
                    f"account {username} exists as a {row[0]} account; an account keeps its "
                    f"role: pick another name for the {role} account"
                )
            if role != "device" and _is_device(db, username):
                raise RegistryError(
                    f"{username} is a device id; a {role} account needs a name no device has"
                )
            db.execute(
                "INSERT INTO accounts (username, role, password_hash, created_at) "
                "VALUES (?, ?, ?, ?) "
                "ON CONFLICT(username) DO UPDATE SET role = excluded.role, "
                "password_hash = excluded.password_hash",
                [username, role, password_hash, datetime.now(UTC).isoformat()],
            )
            self.record(db, "account add", username=username, role=role)

    def accounts(self) -> list[dict[str, str]]:
        """Return the broker accounts."""
        rows = self.db.execute(
            "SELECT username, role, password_hash FROM accounts ORDER BY username"
        )
        return [{"username": u, "role": r, "password_hash": h} for u, r, h in rows]

    def audit(self) -> list[dict[str, str]]:
        """Return the audit trail, oldest first."""
        rows = self.db.execute("SELECT ts, actor, action, detail FROM audit ORDER BY id")
        return [{"ts": t, "actor": a, "action": x, "detail": d} for t, a, x, d in rows]


@migrations(name="0002_devices")
def devices(db: Database) -> None:
    """Create the devices: id, role and their configuration file."""
    db.table("devices").create({"id": str, "role": str, "added_at": str}, pk="id")


def add_device(registry: Registry, device_id: str, role: str) -> None:
    """Add a device to the registry (audited)."""
    with write_transaction(registry.db) as db:
        if _is_device(db, device_id):
            raise RegistryError(f"device {device_id} already exists")
        row = db.execute("SELECT role FROM accounts WHERE username = ?", [device_id]).fetchone()
        if row is not None and row[0] != "device":
            # The device's broker account is named after it: it would be a console's rights.
            raise RegistryError(
                f"{device_id} is the name of a {row[0]} broker account; pick another device id"
            )
        db.execute(
            "INSERT INTO devices (id, role, added_at) VALUES (?, ?, ?)",
            [device_id, role, datetime.now(UTC).isoformat()],
        )
        registry.record(db, "device add", device=device_id, role=role)


def _is_device(db: Database, name: str) -> bool:
    return db.execute("SELECT 1 FROM devices WHERE id = ?", [name]).fetchone() is not None


def device_role(registry: Registry, device_id: str) -> str:
    """Return a device's role, or raise with the fix."""
    row = registry.db.execute("SELECT role FROM devices WHERE id = ?", [device_id]).fetchone()
    if row is None:
        raise RegistryError(f"no device {device_id}; add it with edge-provision device add")
    return str(row[0])


@migrations(name="0003_people_cards")
def people_cards(db: Database) -> None:
    """Create people and their cards; cards by reference only, never the raw card id."""
    db.table("people").create(
        {
            "staff_no": str,
            "name": str,
            "department": str,
            "groups": str,
            "valid_from": str,
            "valid_until": str,
            "updated_at": str,
        },
        pk="staff_no",
    )
    db.table("cards").create(
        {"card_ref": str, "staff_no": str, "technology": str, "status": str, "updated_at": str},
        pk="card_ref",
        not_null={"staff_no", "technology", "status"},
    )
    db.table("cards").create_index(["staff_no"])


def card_owners(registry: Registry, refs: list[str]) -> dict[str, str]:
    """Return {card_ref: staff_no} for the cards already in the registry."""
    owners: dict[str, str] = {}
    for start in range(0, len(refs), 500):
        chunk = refs[start : start + 500]
        marks = ",".join("?" * len(chunk))
        # Only "?" placeholders are formatted in; the values are bound.
        query = f"SELECT card_ref, staff_no FROM cards WHERE card_ref IN ({marks})"  # noqa: S608
        for ref, staff_no in registry.db.execute(query, chunk):
            owners[ref] = staff_no
    return owners


def spare_numbers(registry: Registry, refs: list[str]) -> dict[str, str]:
    """Return {card_ref: printed number} for the cards that are the desk's spare cards."""
    found: dict[str, str] = {}
    for start in range(0, len(refs), 500):
        chunk = refs[start : start + 500]
        marks = ",".join("?" * len(chunk))
        # Only "?" placeholders are formatted in; the values are bound.
        query = f"SELECT card_ref, number FROM spares WHERE card_ref IN ({marks})"  # noqa: S608
        for ref, number in registry.db.execute(query, chunk):
            found[ref] = number
    return found


def import_people(registry: Registry, rows: list[Any], source: str) -> int:
    """Add or update people and their cards in one transaction (audited); return the count."""
    now = datetime.now(UTC).isoformat()
    with write_transaction(registry.db) as db:
        for row in rows:
            # A file without a pin column leaves each person's PIN as it was.
            db.execute(
                "INSERT INTO people (staff_no, name, department, groups, valid_from, valid_until, "
                "updated_at, pin) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(staff_no) DO UPDATE "
                "SET name = excluded.name, department = excluded.department, "
                "groups = excluded.groups, valid_from = excluded.valid_from, "
                "valid_until = excluded.valid_until, updated_at = excluded.updated_at, "
                "pin = CASE WHEN ? THEN excluded.pin ELSE people.pin END",
                [
                    row.staff_no,
                    row.name,
                    row.department,
                    json.dumps(list(row.groups)),
                    row.valid_from.isoformat() if row.valid_from else None,
                    row.valid_until.isoformat() if row.valid_until else None,
                    now,
                    None if row.pin is None else pin_text(row.pin),
                    row.pin_column,
                ],
            )
            db.execute(
                "INSERT INTO cards (card_ref, staff_no, technology, status, updated_at, profile, "
                "card_keys) VALUES (?, ?, ?, 'active', ?, ?, ?) ON CONFLICT(card_ref) DO UPDATE "
                "SET updated_at = excluded.updated_at, profile = excluded.profile, "
                "card_keys = excluded.card_keys",
                [
                    row.card_ref,
                    row.staff_no,
                    row.technology,
                    now,
                    row.profile,
                    json.dumps({k: v.hex() for k, v in row.card_keys.items()})
                    if row.card_keys
                    else None,
                ],
            )
        registry.record(db, "cards import", source=source, people=len(rows))
    return len(rows)


@migrations(name="0004_rules_publish")
def rules_publish(db: Database) -> None:
    """Create schedules, rules (group -> doors on a schedule), settings and published versions."""
    db.table("schedules").create({"id": str, "body": str}, pk="id")
    db.table("rules").create({"id": int, "grp": str, "doors": str, "schedule": str}, pk="id")
    db.table("settings").create({"key": str, "value": str}, pk="key")
    db.table("published").create(
        {"device": str, "version": int, "published_at": str, "cards": int}, pk="device"
    )


@migrations(name="0005_card_profiles")
def card_profiles(db: Database) -> None:
    """Keep what each card can prove and its diversified keys (by slot), never its raw id."""
    db.table("cards").add_column("profile", str, not_null_default="uid")
    db.table("cards").add_column("card_keys", str)


@migrations(name="0006_pins")
def pins(db: Database) -> None:
    """Keep each person's PIN as a salted scrypt hash (edge.pin_hash text form), never the PIN."""
    db.table("people").add_column("pin", str)


@migrations(name="0007_day_passes")
def day_passes(db: Database) -> None:
    """Create the desk's spare cards (by reference and printed number) and their day passes."""
    db.table("spares").create(
        {"number": str, "card_ref": str, "technology": str, "added_at": str},
        pk="number",
        not_null={"card_ref", "technology"},
    )
    db.table("spares").create_index(["card_ref"], unique=True)
    db.table("passes").create(
        {
            "id": int,
            "number": str,
            "card_ref": str,
            "staff_no": str,
            "issued_at": str,
            "issued_by": str,
            "until": str,
            "returned_at": str,
            "returned_by": str,
        },
        pk="id",
        not_null={"number", "card_ref", "staff_no", "issued_at", "until"},
    )
    db.table("passes").create_index(["number"])


@migrations(name="0008_uc_presence")
def uc_presence(db: Database) -> None:
    """Let each person opt in to UC presence (off by default), with their UC id and mail."""
    db.table("people").add_column("uc_presence", int, not_null_default=0)
    db.table("people").add_column("uc_id", str)
    db.table("people").add_column("uc_mail", str)


CARD_STATUSES = ("active", "lost", "revoked")
MIN_CARD_PREFIX = 4
"""The fewest characters of a card reference the desk may pick a card by."""


def short_ref(ref: str) -> str:
    """Return how a card reference is shown: its first 12 hex digits."""
    return ref[:12]


def cards_of(registry: Registry, staff_no: str) -> list[dict[str, str]]:
    """Return a person's cards: short reference, technology, status (never raw ids)."""
    _person(registry.db, staff_no)
    return [
        {"ref": short_ref(ref), "technology": tech, "status": status}
        for ref, tech, status in registry.db.execute(
            "SELECT card_ref, technology, status FROM cards WHERE staff_no = ? ORDER BY card_ref",
            [staff_no],
        )
    ]


def find_people(registry: Registry, who: str, limit: int = 20) -> list[dict[str, Any]]:
    """Return the people with this staff number, or whose name holds `who` (spaces ignored)."""
    who = who.strip()
    if not who:
        return []
    folded = who.replace(" ", "").replace("\u3000", "")
    found = []
    for staff_no, name, department, groups in registry.db.execute(
        "SELECT staff_no, name, department, groups FROM people "
        "WHERE staff_no = ? OR replace(replace(name, ' ', ''), '\u3000', '') LIKE ? "
        "ESCAPE '\\' ORDER BY staff_no = ? DESC, staff_no LIMIT ?",
        [who, "%" + _like(folded) + "%", who, limit],
    ):
        found.append(
            {
                "staff_no": staff_no,
                "name": name,
                "department": department,
                "groups": json.loads(groups),
                "cards": cards_of(registry, staff_no),
            }
        )
    return found


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def change_cards(
    registry: Registry,
    staff_no: str,
    status: str,
    card: str | None = None,
    actor: str | None = None,
    *,
    may_unrevoke: bool = False,
) -> list[str]:
    """Mark a person's card lost or revoked, or reinstate it (`active`); audited.

    `card` is the start of one card's reference (at least MIN_CARD_PREFIX digits). Without
    it: every active card for lost/revoked, and the only inactive card for a reinstatement.
    A revoked card is reinstated only with `may_unrevoke` (who may revoke): the check is
    made on the card picked, in the same transaction as the change. Return the short
    references changed; raise with the fix when none can be.
    """
    if status not in CARD_STATUSES:
        raise RegistryError(f"card status {status!r}: use one of {', '.join(CARD_STATUSES)}")
    with write_transaction(registry.db) as db:
        _person(db, staff_no)
        rows = [
            (ref, tech, current)
            for ref, tech, current in db.execute(
                "SELECT card_ref, technology, status FROM cards WHERE staff_no = ? "
                "ORDER BY card_ref",
                [staff_no],
            )
        ]
        if card is not None:
            chosen = _pick(staff_no, rows, card)
            if chosen[2] == status:
                raise RegistryError(
                    f"card {short_ref(chosen[0])}… of staff {staff_no} is already {status}"
                )
            targets = [chosen]
        elif status == "active":
            targets = [r for r in rows if r[2] != "active"]
            if len(targets) != 1:
                raise RegistryError(_which(staff_no, rows, "to reinstate", targets))
        else:
            targets = [r for r in rows if r[2] == "active"]
            if not targets:
                raise RegistryError(f"staff {staff_no} has no active card to mark {status}")
        revoked = [r for r in targets if r[2] == "revoked"]
        if status == "active" and revoked and not may_unrevoke:
            raise RegistryError(
                f"card {short_ref(revoked[0][0])}… of staff {staff_no} is revoked: only a "
                "manager may reinstate a revoked card"
            )
        now = datetime.now(UTC).isoformat()
        for ref, _tech, before in targets:
            db.execute(
                "UPDATE cards SET status = ?, updated_at = ? WHERE card_ref = ?",
                [status, now, ref],
            )
            action = "card reinstated" if status == "active" else f"card {status}"
            detail = {"staff_no": staff_no, "card": short_ref(ref), "was": before}
            registry.record_by(db, actor, action, detail)
        if status == "revoked":
            _close_passes_of_revoked(registry, db, staff_no, now, actor)
    return [short_ref(r[0]) for r in targets]


def _close_passes_of_revoked(
    registry: Registry, db: Database, staff_no: str, now: str, actor: str | None
) -> None:
    """Close the live passes of a person left with no active card (audited): a pass stands
    in for a card, never for a revoked one."""
    if db.execute(
        "SELECT 1 FROM cards WHERE staff_no = ? AND status = 'active'", [staff_no]
    ).fetchone():
        return
    for pass_id, number, until in db.execute(
        "SELECT id, number, until FROM passes WHERE staff_no = ? AND returned_at IS NULL",
        [staff_no],
    ).fetchall():
        if datetime.fromisoformat(until) <= datetime.fromisoformat(now):
            continue  # expired: the desk takes the card back as usual
        db.execute(
            "UPDATE passes SET returned_at = ?, returned_by = ? WHERE id = ?",
            [now, actor or "", pass_id],
        )
        detail = {"number": number, "staff_no": staff_no, "reason": "card revoked"}
        registry.record_by(db, actor, "pass closed", detail)


def _person(db: Database, staff_no: str) -> None:
    if not db.execute("SELECT 1 FROM people WHERE staff_no = ?", [staff_no]).fetchone():
        raise RegistryError(f"no staff {staff_no!r}; look them up by name or in cards list")


def _pick(staff_no: str, rows: list[tuple[str, str, str]], prefix: str) -> tuple[str, str, str]:
    prefix = prefix.strip().lower().removesuffix("…")
    if len(prefix) < MIN_CARD_PREFIX or any(c not in "0123456789abcdef" for c in prefix):
        raise RegistryError(
            f"--card: give at least {MIN_CARD_PREFIX} hex digits of the card reference "
            "as the card list shows it"
        )
    matches = [r for r in rows if r[0].startswith(prefix)]
    if len(matches) != 1:
        raise RegistryError(_which(staff_no, rows, f"starting {prefix}", matches))
    return matches[0]


def _which(
    staff_no: str, rows: list[tuple[str, str, str]], what: str, matches: Sequence[object]
) -> str:
    listed = ", ".join(f"{tech} {short_ref(ref)}… ({status})" for ref, tech, status in rows)
    if not rows:
        return f"staff {staff_no} has no card"
    return (
        f"staff {staff_no} has {len(matches)} cards {what}; their cards: {listed}; "
        "pick one with its reference"
    )


def set_card_status(registry: Registry, staff_no: str, status: str) -> int:
    """Revoke (or flag as lost) every active card of a person; return how many (audited)."""
    return len(change_cards(registry, staff_no, status))


def people_with_cards(registry: Registry) -> list[dict[str, Any]]:
    """Return everyone with their cards (references shortened, never raw ids)."""
    people = []
    for staff_no, name, department, groups in registry.db.execute(
        "SELECT staff_no, name, department, groups FROM people ORDER BY staff_no"
    ):
        cards = [
            {"ref": ref[:12], "technology": tech, "status": status}
            for ref, tech, status in registry.db.execute(
                "SELECT card_ref, technology, status FROM cards WHERE staff_no = ? "
                "ORDER BY card_ref",
                [staff_no],
            )
        ]
        people.append(
            {
                "staff_no": staff_no,
                "name": name,
                "department": department,
                "groups": json.loads(groups),
                "cards": cards,
            }
        )
    return people
