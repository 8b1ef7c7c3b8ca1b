"""What one device takes from the registry: its doors' policy and the cards allowed there.

Devices with the same `cards_key` (the groups they act on, a keypad or not, their role and
whether they read cards) take the same credential rows, so a publish works those out once
per key, not once per device.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from edge.core.credentials import CardProfile, Credential, DenyReason
from edge.core.policy import AccessPolicy
from edge.pin_hash import parse_pin
from edge.policy_json import policy_to_json
from firmware_config.loader import load_config
from provisioning.card_keys import device_key
from provisioning.passes import pass_credentials
from provisioning.registry import Registry
from provisioning.rules import policy_for

CardsKey = tuple[frozenset[str], bool, str, bool]
CHUNK = 500  # refs bound per query, under SQLite's limit on variables


@dataclass(frozen=True)
class DeviceView:
    """One device's policy (at this publish's version) and what decides its cards."""

    device: str
    policy: AccessPolicy
    wanted: frozenset[str]  # the groups it acts on
    keypads: bool  # a PIN hash goes only to a device with a keypad to key it on
    role: str
    readers: bool  # a device without readers (a sensor node) gets no card keys

    @property
    def cards_key(self) -> CardsKey:
        """Return what decides the device's credential rows."""
        return (self.wanted, self.keypads, self.role, self.readers)

    def fingerprint(self) -> str:
        """Return a hash of the policy (whatever its version) and the cards key.

        A delta carries no policy: when this changes the device gets a full snapshot.
        """
        policy = policy_to_json(replace(self.policy, version=0))
        shape = [policy, sorted(self.wanted), self.keypads, self.role, self.readers]
        text = json.dumps(shape, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def device_view(registry: Registry, site_dir: Path, device: str, version: int) -> DeviceView:
    """Return the view of `device` from its configuration file and the site's rules."""
    config = load_config(site_dir / "devices" / f"{device}.toml")
    zones = {z for d in config.doors for z in (d.inside_zone, d.outside_zone)}
    policy = policy_for(registry, {d.id for d in config.doors}, version, zones)
    # The groups the device acts on: its rules, lockdown override, proof and PIN demands.
    wanted = {r.group for r in policy.rules} | set(policy.override_groups)
    wanted |= policy.authenticated_groups | policy.pin_groups
    keypads = any(r.keypad is not None for r in config.readers)
    return DeviceView(
        device, policy, frozenset(wanted), keypads, config.device.role, bool(config.readers)
    )


@dataclass(frozen=True, slots=True)
class CardRow:
    """An active card as the registry holds it (groups before any device's filter)."""

    ref: str
    groups: frozenset[str]
    valid_from: datetime | None
    valid_until: datetime | None
    profile: CardProfile
    keys: dict[str, str]
    pin: str | None


_ROWS = (
    "SELECT c.card_ref, p.groups, p.valid_from, p.valid_until, c.profile, c.card_keys, p.pin "
    "FROM cards c JOIN people p ON p.staff_no = c.staff_no WHERE c.status = 'active'"
)


def card_rows(registry: Registry, refs: Iterable[str] | None = None) -> list[CardRow]:
    """Return the active cards: every one, or only those among `refs`."""
    return [_card_row(row) for row in _rows(registry, refs)]


def _rows(registry: Registry, refs: Iterable[str] | None) -> Iterator[tuple[Any, ...]]:
    if refs is None:
        yield from registry.db.execute(_ROWS)
        return
    wanted = sorted(refs)
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        # Only "?" placeholders are formatted in; the values are bound.
        marks = ",".join("?" * len(chunk))
        yield from registry.db.execute(f"{_ROWS} AND c.card_ref IN ({marks})", chunk)


def _card_row(row: tuple[Any, ...]) -> CardRow:
    ref, groups_json, valid_from, valid_until, profile, keys_json, pin = row
    return CardRow(
        ref,
        frozenset(json.loads(groups_json)),
        datetime.fromisoformat(valid_from) if valid_from else None,
        datetime.fromisoformat(valid_until) if valid_until else None,
        CardProfile(profile),
        json.loads(keys_json or "{}"),
        pin or None,
    )


def deny_list(registry: Registry, refs: Iterable[str] | None = None) -> dict[str, DenyReason]:
    """Return the cards denied outright (lost or revoked): every one, or those among `refs`."""
    sql = "SELECT card_ref, status FROM cards WHERE status IN ('revoked', 'lost')"
    found: dict[str, DenyReason] = {}
    chunks: list[list[str]] = [[]] if refs is None else _chunks(sorted(refs))
    for chunk in chunks:
        where = f" AND card_ref IN ({','.join('?' * len(chunk))})" if chunk else ""
        for ref, status in registry.db.execute(sql + where, chunk):
            found[ref] = DenyReason.LOST if status == "lost" else DenyReason.REVOKED
    return found


def _chunks(refs: list[str]) -> list[list[str]]:
    return [refs[i : i + CHUNK] for i in range(0, len(refs), CHUNK)]


@dataclass(frozen=True)
class DeviceCards:
    """The credentials and card keys of every device with one cards key."""

    credentials: list[Credential]
    card_keys: dict[str, bytes]
    passes_left_out: set[str]  # spares that are someone's own card: the owner's row wins


def device_cards(
    registry: Registry,
    view: DeviceView,
    rows: Iterable[CardRow],
    now: datetime,
    only: set[str] | None = None,
) -> DeviceCards:
    """Return the device's credentials from `rows` (with live passes) and its card keys.

    `only`: the passes of these cards alone (a delta's), else every live pass.
    """
    credentials = []
    card_keys: dict[str, bytes] = {}
    for row in rows:
        groups = row.groups & view.wanted
        if not groups:
            continue
        pin = parse_pin(row.pin) if row.pin and view.keypads else None
        credentials.append(
            Credential(row.ref, groups, row.valid_from, row.valid_until, row.profile, pin)
        )
        # Only the key this device checks the card with: never the master, never the
        # keys of other kinds of door (a sensor node has no readers and gets none).
        key = device_key(row.profile, row.keys, view.role)
        if key is not None and view.readers:
            card_keys[row.ref] = key
    owned = {c.ref for c in credentials}
    skipped: set[str] = set()
    for lent in pass_credentials(registry, now, set(view.wanted), view.keypads):
        if only is not None and lent.ref not in only:
            continue
        if lent.ref in owned:
            skipped.add(lent.ref)
            continue
        owned.add(lent.ref)
        credentials.append(lent)
    return DeviceCards(credentials, card_keys, skipped)
