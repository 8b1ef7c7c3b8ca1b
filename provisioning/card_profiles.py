"""Enrol one card with its profile at the desk: the person's card, proven by its keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from edge.cardref import card_reference
from edge.core.credentials import CardProfile
from edge.keys import read_card_key
from edge.store.connection import write_transaction
from provisioning.card_keys import keys_for, load_master
from provisioning.keys import SiteKeys
from provisioning.registry import Registry, RegistryError


def record(site_dir: Path, *, staff_no: str, technology: str, card_id: bytes, profile: str) -> str:
    """Give a person this card (active, with its profile and keys); return its reference.

    The raw id is used here to derive the reference and the keys and is never stored.
    RegistryError names the person or card that is wrong.
    """
    keys = SiteKeys(site_dir / "keys")
    kind = CardProfile(profile)
    ref = card_reference(read_card_key(keys.card_key), technology, card_id.hex())
    derived = keys_for(kind, technology, card_id, load_master(keys))
    registry = Registry(site_dir / "registry.db")
    try:
        db = registry.db
        if db.execute("SELECT 1 FROM people WHERE staff_no = ?", [staff_no]).fetchone() is None:
            raise RegistryError(
                f"no staff {staff_no!r}; import them with edge-provision cards import"
            )
        spare = db.execute("SELECT number FROM spares WHERE card_ref = ?", [ref]).fetchone()
        if spare is not None:
            # One card twice in a snapshot (someone's and a pass's) would be refused by
            # every device.
            raise RegistryError(
                f"this card is the desk's spare card {spare[0]}; give the person another card"
            )
        owner = db.execute("SELECT staff_no FROM cards WHERE card_ref = ?", [ref]).fetchone()
        if owner is not None and owner[0] != staff_no:
            raise RegistryError(f"this card belongs to staff {owner[0]!r}; revoke it there first")
        now = datetime.now(UTC).isoformat()
        with write_transaction(db):
            db.execute(
                "INSERT INTO cards (card_ref, staff_no, technology, status, updated_at, profile, "
                "card_keys) VALUES (?, ?, ?, 'active', ?, ?, ?) ON CONFLICT(card_ref) DO UPDATE "
                "SET status = 'active', updated_at = excluded.updated_at, "
                "profile = excluded.profile, card_keys = excluded.card_keys",
                [
                    ref,
                    staff_no,
                    technology,
                    now,
                    str(kind),
                    json.dumps({k: v.hex() for k, v in derived.items()}) if derived else None,
                ],
            )
            registry.record(db, "cards personalise", staff_no=staff_no, profile=str(kind))
    finally:
        registry.close()
    return ref
