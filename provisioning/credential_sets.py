"""Build each device's full snapshot or delta for one publish, sharing work between devices.

The registry's cards are read once per publish (when some device needs a full snapshot);
devices that take the same cards share one serialised, compressed body; deltas read only
the cards journaled since each base.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.core.credentials import DenyReason
from edge.snapshot import Prepared
from edge.snapshot_delta import build as build_delta
from provisioning import deltas
from provisioning.device_view import (
    CardRow,
    CardsKey,
    DeviceCards,
    DeviceView,
    card_rows,
    deny_list,
    device_cards,
)
from provisioning.passes import pass_credentials
from provisioning.registry import Registry


@dataclass(frozen=True)
class Built:
    """One device's snapshot, or its delta on top of snapshot `base`."""

    device: str
    version: int
    cards: int  # on the device once it has applied this
    data: bytes
    base: int | None = None  # None: `data` is a full snapshot (the device's new base)
    # A full snapshot's base record, kept by `publish.commit_bases` once the broker has it.
    new_base: deltas.Base | None = None

    @property
    def kind(self) -> str:
        """Return "full" or "delta"."""
        return "full" if self.base is None else "delta"


class SetBuilder:
    """Builds the devices' snapshots and deltas of one version."""

    def __init__(
        self,
        registry: Registry,
        private: Ed25519PrivateKey,
        *,
        site: str,
        version: int,
        now: datetime,
        journal: int,
    ) -> None:
        self.registry = registry
        self.private = private
        self.site = site
        self.version = version
        self.now = now
        self.journal = journal  # read before any card
        self.left_out: set[str] = set()  # spares that are someone's own card
        self._rows: list[CardRow] | None = None
        self._deny: dict[str, DenyReason] | None = None
        self._prepared: dict[CardsKey, Prepared] = {}
        self._touched: dict[int, set[str]] = {}
        self._changed: dict[str, CardRow] = {}
        self._changed_deny: dict[str, DenyReason] = {}
        self._fetched: set[str] = set()
        self._delta_cards: dict[tuple[CardsKey, int], DeviceCards] = {}
        self._groups: dict[str, int] | None = None  # see group_masks
        self._counts: dict[tuple[frozenset[str], bool], int] = {}

    def __repr__(self) -> str:
        return f"<SetBuilder v{self.version} {self.site} bodies={len(self._prepared)}>"

    def full(self, view: DeviceView) -> Built:
        """Return the device's full snapshot."""
        prepared = self._prepared.get(view.cards_key)
        if prepared is None:
            if self._rows is None:
                self._rows = card_rows(self.registry)
                self._deny = deny_list(self.registry)
            assert self._deny is not None
            cards = device_cards(self.registry, view, self._rows, self.now)
            self.left_out |= cards.passes_left_out
            prepared = Prepared(cards.credentials, self._deny, cards.card_keys)
            self._prepared[view.cards_key] = prepared
        data = prepared.build(
            self.private,
            site=self.site,
            device=view.device,
            version=self.version,
            policy=view.policy,
            issued_at=self.now,
        )
        return Built(view.device, self.version, prepared.cards, data)

    def delta(
        self, view: DeviceView, base: deltas.Base, share: float, fingerprint: str | None = None
    ) -> Built | None:
        """Return the device's delta since `base`, or None when a full snapshot is due.

        Due when the policy or the cards key changed (`fingerprint`: the view's, when the
        caller has it), or the delta would pass `share` of the base's size.
        """
        fingerprint = fingerprint or view.fingerprint()
        if base.fingerprint != fingerprint or base.version >= self.version:
            return None
        refs = self._touched_since(base.journal)
        if not deltas.worth_a_delta(base, len(refs), share):
            return None
        cards = self._cards_since(view, base.journal, refs)
        present = {c.ref for c in cards.credentials}
        denied = {ref: self._changed_deny[ref] for ref in refs if ref in self._changed_deny}
        data = build_delta(
            self.private,
            site=self.site,
            device=view.device,
            base=base.version,
            version=self.version,
            credentials=cards.credentials,
            removed=refs - present,
            deny=denied,
            allowed=refs - denied.keys(),
            issued_at=self.now,
            card_keys=cards.card_keys,
        )
        if len(data) > share * base.bytes:
            return None
        return Built(view.device, self.version, self.count(view), data, base.version)

    def count(self, view: DeviceView) -> int:
        """Return how many credentials the device holds at this version (as a snapshot would)."""
        key = (view.wanted, view.keypads)
        found = self._counts.get(key)
        if found is None:
            found = self._counts[key] = self._count(view)
        return found

    def _count(self, view: DeviceView) -> int:
        if self._groups is None:
            self._groups = group_masks(deltas.group_counts(self.registry.db))
        owned = 0
        for group in view.wanted:
            owned |= self._groups.get(group, 0)
        lent = pass_credentials(self.registry, self.now, set(view.wanted), view.keypads)
        active = {c.ref for c in card_rows(self.registry, [p.ref for p in lent])}
        return owned.bit_count() + sum(1 for p in lent if p.ref not in active)

    def _touched_since(self, journal: int) -> set[str]:
        refs = self._touched.get(journal)
        if refs is None:
            refs = deltas.touched(self.registry.db, journal, self.journal)
            self._touched[journal] = refs
        return refs

    def _cards_since(self, view: DeviceView, journal: int, refs: set[str]) -> DeviceCards:
        key = (view.cards_key, journal)
        found = self._delta_cards.get(key)
        if found is None:
            missing = refs - self._fetched
            self._changed.update((r.ref, r) for r in card_rows(self.registry, missing))
            self._changed_deny.update(deny_list(self.registry, missing))
            self._fetched |= missing
            rows = [self._changed[ref] for ref in sorted(refs) if ref in self._changed]
            found = device_cards(self.registry, view, rows, self.now, only=refs)
            self.left_out |= found.passes_left_out
            self._delta_cards[key] = found
        return found


def group_masks(combinations: Iterable[tuple[str, int]]) -> dict[str, int]:
    """Return each group's active cards as a bit mask, from (groups JSON, cards) rows.

    Each card has one bit (the cards of one combination of groups side by side), so the
    cards holding any of several groups are the bits set in the masks' OR: a device's count
    costs a few ORs, not a pass over every combination.
    """
    spans: dict[str, list[tuple[int, int]]] = {}
    total = 0
    for groups, cards in combinations:
        for group in json.loads(groups):
            spans.setdefault(group, []).append((total, int(cards)))
        total += int(cards)
    masks = {}
    for group, found in spans.items():
        digits = bytearray(b"0" * total)  # most significant first: bit i is digits[-1 - i]
        for start, cards in found:
            digits[total - start - cards : total - start] = b"1" * cards
        masks[group] = int(digits, 2)
    return masks
