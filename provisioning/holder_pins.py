"""PINs the holder sets at the desk: find them by their card, check the PIN, keep its hash.

The PIN and the duress PIN share one salt (`edge.pin_hash`), and the registry keeps neither
in the clear. So a new PIN is hashed under the salt of the duress PIN it sits beside (and a
new duress PIN under the PIN's), and "the PIN equals the duress PIN" is found by checking the
new digits against the stored hash. Nothing here returns, logs or audits the digits.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Final

from edge.core.credentials import CardProfile, PinHash
from edge.core.events import PinOutcome
from edge.errors import EdgeError
from edge.pin_hash import N, P, R, check_digits, check_pin, hash_pin, parse_pin, pin_text
from edge.store.connection import write_transaction
from provisioning.card_keys import LITE_S_SLOT
from provisioning.registry import Registry

# Among the most used 4-digit PINs that the rules below let through (a keypad's middle
# column, its reverse, years, 1122), as published analyses of leaked PIN lists rank them.
COMMON: Final = frozenset({"2580", "0852", "1004", "2000", "2001", "1122", "1998", "1999"})


class HolderPinError(EdgeError, ValueError):
    """A PIN or card refused at the desk; the message never carries the PIN or the card id."""


@dataclass(frozen=True, slots=True)
class Holder:
    """The person a card belongs to, as the desk needs them."""

    staff_no: str
    name: str
    card_status: str
    profile: CardProfile
    lite_s_key: bytes | None = None  # the key a lite-s card must prove at the desk
    pin: PinHash | None = None


def holder_of(registry: Registry, card_ref: str) -> Holder:
    """Return the holder of the card `card_ref`; HolderPinError if there is none."""
    row = registry.db.execute(
        "SELECT c.staff_no, p.name, c.status, c.profile, c.card_keys, p.pin FROM cards c "
        "JOIN people p ON p.staff_no = c.staff_no WHERE c.card_ref = ?",
        [card_ref],
    ).fetchone()
    if row is None:
        raise HolderPinError(
            "this card is not in the registry: import its holder with edge-provision cards "
            "import (or personalise it for them) first"
        )
    staff_no, name, status, profile, card_keys, pin = row
    keys = json.loads(card_keys) if card_keys else {}
    key = keys.get(LITE_S_SLOT)
    return Holder(
        staff_no=staff_no,
        name=name,
        card_status=status,
        profile=CardProfile(profile or "uid"),
        lite_s_key=bytes.fromhex(key) if key else None,
        pin=parse_pin(pin) if pin else None,
    )


def weakness(pin: str) -> str | None:
    """Return why `pin` is too easy to guess, or None."""
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    if steps == {0}:
        return "it is one digit repeated"
    if steps in ({1}, {9}):
        return "it is a run of digits, up or down"
    if len(pin) % 2 == 0 and pin == pin[:2] * (len(pin) // 2):
        return "it is one pair of digits repeated"
    if pin in COMMON:
        return "it is one of the most used PINs"
    return None


def new_pin_hash(current: PinHash | None, pin: str, *, duress: bool) -> PinHash:
    """Return the person's PIN hash with `pin` as their PIN (or duress PIN) in it.

    HolderPinError says what is wrong with `pin` without quoting it.
    """
    what = "duress PIN" if duress else "PIN"
    try:
        check_digits(pin, what)
    except EdgeError as error:
        raise HolderPinError(str(error)) from None
    reason = weakness(pin)
    if reason is not None:
        raise HolderPinError(f"that {what} is too easy to guess: {reason}; choose another")
    if duress:
        if current is None:
            raise HolderPinError(
                "a duress PIN goes with a PIN: set the PIN first (cards set-pin without --duress)"
            )
        if check_pin(current, pin) is PinOutcome.RIGHT:
            raise HolderPinError("the duress PIN must differ from the PIN; choose another")
        return replace(current, duress=_beside(current, pin))
    if current is None or current.duress is None:
        return hash_pin(pin)  # a fresh salt
    if check_pin(current, pin) is PinOutcome.DURESS:
        raise HolderPinError("the PIN must differ from the duress PIN; choose another")
    return replace(current, hash=_beside(current, pin))


def _beside(current: PinHash, pin: str) -> bytes:
    """Hash `pin` under the salt of the PIN hash it joins."""
    if (current.n, current.r, current.p) != (N, R, P):
        raise HolderPinError(
            "this person's PINs were hashed with other scrypt parameters; give both the PIN "
            "and the duress PIN again through the HR import"
        )
    return hash_pin(pin, salt=current.salt).hash


def knows_pin(holder: Holder, keyed: str) -> bool:
    """True if `keyed` is the holder's PIN (their duress PIN is not: it opens nothing here)."""
    return holder.pin is not None and check_pin(holder.pin, keyed) is PinOutcome.RIGHT


def record_refusal(registry: Registry, holder: Holder, card_ref: str, reason: str) -> None:
    """Audit a refused PIN change at the desk: who, which card, why (never the digits)."""
    with write_transaction(registry.db) as db:
        registry.record(
            db, "cards set-pin refused", staff_no=holder.staff_no, card=card_ref[:12], why=reason
        )


def store_pin(
    registry: Registry,
    holder: Holder,
    pin_hash: PinHash,
    *,
    duress: bool,
    card_ref: str,
    reset: bool = False,
) -> None:
    """Keep the new hash as the holder's PIN (audited: who, which card, which PIN, whether an
    operator's reset; no digits)."""
    with write_transaction(registry.db) as db:
        db.execute(
            "UPDATE people SET pin = ?, updated_at = ? WHERE staff_no = ?",
            [pin_text(pin_hash), datetime.now(UTC).isoformat(), holder.staff_no],
        )
        registry.record(
            db,
            "cards set-pin reset" if reset else "cards set-pin",
            staff_no=holder.staff_no,
            card=card_ref[:12],
            which="duress PIN" if duress else "PIN",
        )
