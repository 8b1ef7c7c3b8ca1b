"""Day passes: spare cards at the security desk lent to a person until a set time.

A spare card is registered once by its printed number (the number on its face) and its
card reference; the raw card id is never kept. A pass lends a spare to a person with that
person's groups until an end time (by default the end of the site's day) that never
outlives the person's own validity. Published snapshots carry each live pass as a
credential whose `valid_until` is the pass's end, so a pass stops at every door at its
end even where the next snapshot is late; a return drops it from the next snapshot.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from edge.cardref import card_reference
from edge.core.credentials import CardProfile, Credential
from edge.pin_hash import parse_pin
from edge.store.connection import write_transaction
from provisioning.registry import Registry, RegistryError, short_ref

_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,7}$")
PASS_STATES = ("live", "returned", "expired")


@dataclass(frozen=True)
class DayPass:
    """One pass: which spare, whose, until when, and what became of it."""

    number: str
    staff_no: str
    name: str
    issued_at: datetime
    issued_by: str
    until: datetime
    returned_at: datetime | None
    returned_by: str | None
    state: str  # live, returned or expired

    def __repr__(self) -> str:
        return f"<DayPass {self.number} {self.staff_no} {self.state} until {self.until}>"


def check_number(number: str) -> str:
    """Return a spare card's printed number, or raise saying what one looks like."""
    number = number.strip()
    if not _NUMBER.match(number):
        raise RegistryError(
            "spare card number: 1-8 letters, digits or '-' as printed on the card, e.g. 07"
        )
    return number


def spare_ref(card_key: bytes, card: str) -> tuple[str, str]:
    """Return (reference, technology) of a card typed as `technology:ID`."""
    technology, _, card_id = card.partition(":")
    if not card_id:
        raise RegistryError("card id: key technology:ID, e.g. felica:0114A1B2C3D4E5F6")
    return card_reference(card_key, technology, card_id), technology.strip().lower()


def add_spare(
    registry: Registry, number: str, ref: str, technology: str, actor: str | None = None
) -> str:
    """Register a spare card by printed number and reference; return its short reference."""
    number = check_number(number)
    with write_transaction(registry.db) as db:
        if db.execute("SELECT 1 FROM spares WHERE number = ?", [number]).fetchone():
            raise RegistryError(f"spare card {number} exists; pick another number")
        other = db.execute("SELECT number FROM spares WHERE card_ref = ?", [ref]).fetchone()
        if other:
            raise RegistryError(f"this card is already spare card {other[0]}")
        owner = db.execute("SELECT staff_no FROM cards WHERE card_ref = ?", [ref]).fetchone()
        if owner:
            raise RegistryError(
                f"this card belongs to staff {owner[0]}; a spare must be a card of its own"
            )
        db.execute(
            "INSERT INTO spares (number, card_ref, technology, added_at) VALUES (?, ?, ?, ?)",
            [number, ref, technology, datetime.now(UTC).isoformat()],
        )
        registry.record_by(db, actor, "spare add", {"number": number, "card": short_ref(ref)})
    return short_ref(ref)


def spares(registry: Registry, now: datetime) -> list[dict[str, str]]:
    """Return the spare cards: number, technology, short reference and who has it now."""
    live = {p.number: p.staff_no for p in list_passes(registry, now) if p.state == "live"}
    return [
        {
            "number": number,
            "technology": tech,
            "ref": short_ref(ref),
            "out_to": live.get(number, ""),
        }
        for number, ref, tech in registry.db.execute(
            "SELECT number, card_ref, technology FROM spares ORDER BY number"
        )
    ]


def end_of_day(registry: Registry, now: datetime) -> datetime:
    """Return the next midnight in the site's time zone after `now`."""
    zone = ZoneInfo(registry.site()["timezone"])
    local = now.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), time(0), zone)


def at_local(registry: Registry, now: datetime, hhmm: str) -> datetime:
    """Return today's `HH:MM` in the site's time zone (the day `now` falls on there)."""
    found = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", hhmm.strip())
    if not found:
        raise RegistryError(f"until {hhmm[:20]!r}: give the end time as HH:MM, e.g. 17:30")
    zone = ZoneInfo(registry.site()["timezone"])
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(int(found[1]), int(found[2])), zone)


def issue_pass(
    registry: Registry,
    staff_no: str,
    number: str,
    now: datetime,
    until: datetime | None = None,
    actor: str | None = None,
) -> DayPass:
    """Lend spare `number` to a person until `until` (default: the end of the site's day).

    The end is cut to the person's own validity; refused for an unknown person or spare, a
    spare already out, an end not after `now`, or a person not valid now.
    """
    number = check_number(number)
    end = until if until is not None else end_of_day(registry, now)
    if end <= now:
        raise RegistryError(
            f"until: the end {_local(registry, end)} is not in the future; give a later time"
        )
    with write_transaction(registry.db) as db:
        person = db.execute(
            "SELECT name, valid_from, valid_until FROM people WHERE staff_no = ?", [staff_no]
        ).fetchone()
        if person is None:
            raise RegistryError(f"no staff {staff_no!r}; look them up by name or in cards list")
        name, valid_from, valid_until = person
        if valid_from and datetime.fromisoformat(valid_from) > now:
            raise RegistryError(f"staff {staff_no} is not valid yet (from {valid_from[:10]})")
        if valid_until:
            own_end = datetime.fromisoformat(valid_until)
            if own_end <= now:
                raise RegistryError(f"staff {staff_no}'s validity has ended; no pass for them")
            end = min(end, own_end)
        statuses = {
            r[0] for r in db.execute("SELECT status FROM cards WHERE staff_no = ?", [staff_no])
        }
        # A pass stands in for a card left at home or lost, never for a revoked one.
        if "revoked" in statuses and "active" not in statuses:
            raise RegistryError(
                f"staff {staff_no} has a revoked card and no active one; no pass for them "
                "(a manager reinstates the card first if the revocation was a mistake)"
            )
        spare = db.execute("SELECT card_ref FROM spares WHERE number = ?", [number]).fetchone()
        if spare is None:
            raise RegistryError(
                f"no spare card {number}; register it with edge-provision passes add-spare"
            )
        out = _open_pass(db, number)
        if out is not None and datetime.fromisoformat(out[2]) > now:
            raise RegistryError(
                f"spare card {number} is out to staff {out[1]} until "
                f"{_local(registry, datetime.fromisoformat(out[2]))}; return it first"
            )
        if out is not None:  # expired without a return: closed now, as returned late
            _close(db, out[0], now, actor)
        db.execute(
            "INSERT INTO passes (number, card_ref, staff_no, issued_at, issued_by, until) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [number, spare[0], staff_no, now.isoformat(), actor or "", end.isoformat()],
        )
        detail = {"number": number, "staff_no": staff_no, "until": end.isoformat()}
        registry.record_by(db, actor, "pass issued", detail)
    return DayPass(number, staff_no, name, now, actor or "", end, None, None, "live")


def return_pass(
    registry: Registry, number: str, now: datetime, actor: str | None = None
) -> DayPass:
    """Take spare `number` back (live or expired); its pass stops at the next publish."""
    number = check_number(number)
    with write_transaction(registry.db) as db:
        out = _open_pass(db, number)
        if out is None:
            known = db.execute("SELECT 1 FROM spares WHERE number = ?", [number]).fetchone()
            raise RegistryError(
                f"spare card {number} is not out" if known else f"no spare card {number}"
            )
        _close(db, out[0], now, actor)
        registry.record_by(db, actor, "pass returned", {"number": number, "staff_no": out[1]})
    return _passes(registry, now, "WHERE p.id = ?", [out[0]])[0]


def _open_pass(db: Any, number: str) -> tuple[int, str, str] | None:
    row = db.execute(
        "SELECT id, staff_no, until FROM passes WHERE number = ? AND returned_at IS NULL "
        "ORDER BY id DESC LIMIT 1",
        [number],
    ).fetchone()
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]))


def _close(db: Any, pass_id: int, now: datetime, actor: str | None) -> None:
    db.execute(
        "UPDATE passes SET returned_at = ?, returned_by = ? WHERE id = ?",
        [now.isoformat(), actor or "", pass_id],
    )


def list_passes(registry: Registry, now: datetime, limit: int = 200) -> list[DayPass]:
    """Return the newest passes first, each live, returned or expired as of `now`."""
    return _passes(registry, now, "ORDER BY p.id DESC LIMIT ?", [limit])


def _passes(registry: Registry, now: datetime, where: str, args: list[Any]) -> list[DayPass]:
    found = []
    for (
        number,
        staff_no,
        name,
        issued_at,
        issued_by,
        until,
        returned_at,
        returned_by,
    ) in registry.db.execute(
        # `where` is one of this module's constant clauses; its values are bound.
        "SELECT p.number, p.staff_no, coalesce(pe.name, ''), p.issued_at, p.issued_by, "  # noqa: S608
        "p.until, p.returned_at, p.returned_by FROM passes p "
        "LEFT JOIN people pe ON pe.staff_no = p.staff_no " + where,
        args,
    ):
        end = datetime.fromisoformat(until)
        returned = datetime.fromisoformat(returned_at) if returned_at else None
        state = "returned" if returned else ("live" if end > now else "expired")
        found.append(
            DayPass(
                number,
                staff_no,
                name,
                datetime.fromisoformat(issued_at),
                issued_by,
                end,
                returned,
                returned_by,
                state,
            )
        )
    return found


def pass_credentials(
    registry: Registry, now: datetime, wanted: set[str], with_pins: bool
) -> list[Credential]:
    """Return a credential per live pass: the person's groups in `wanted`, until its end.

    A spare card proves nothing (profile uid); the person's PIN goes with it to a device
    with a keypad (`with_pins`). A person with a revoked card and no active one has no pass
    (see issue_pass), whatever the passes table still says.
    """
    found = []
    for ref, groups_json, valid_from, valid_until, until, pin in registry.db.execute(
        "SELECT p.card_ref, pe.groups, pe.valid_from, pe.valid_until, p.until, pe.pin "
        "FROM passes p JOIN people pe ON pe.staff_no = p.staff_no "
        "WHERE p.returned_at IS NULL AND NOT ("
        "EXISTS (SELECT 1 FROM cards c WHERE c.staff_no = p.staff_no AND c.status = 'revoked') "
        "AND NOT EXISTS (SELECT 1 FROM cards c WHERE c.staff_no = p.staff_no "
        "AND c.status = 'active'))"
    ):
        end = datetime.fromisoformat(until)
        if valid_until:
            end = min(end, datetime.fromisoformat(valid_until))
        groups = frozenset(json.loads(groups_json)) & wanted
        if end <= now or not groups:
            continue
        found.append(
            Credential(
                ref,
                groups,
                datetime.fromisoformat(valid_from) if valid_from else None,
                end,
                CardProfile.UID,
                parse_pin(pin) if pin and with_pins else None,
            )
        )
    return found


def _local(registry: Registry, moment: datetime) -> str:
    zone = ZoneInfo(registry.site()["timezone"])
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")
