"""The registry's rules at the desk, without services: who may undo a revocation, who may
have a day pass, and that a snapshot never carries a card twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioning.registry import Registry, RegistryError, change_cards, short_ref
from tests.provisioning.test_passes_unit import open_registry, site

__all__ = ["site"]  # four people, spare card 07


def status_of(registry: Registry, staff_no: str) -> list[str]:
    rows = registry.db.execute("SELECT status FROM cards WHERE staff_no = ?", [staff_no])
    return [r[0] for r in rows]


def full_ref(registry: Registry, staff_no: str) -> str:
    row = registry.db.execute("SELECT card_ref FROM cards WHERE staff_no = ?", [staff_no])
    return str(row.fetchone()[0])


def test_a_revoked_card_is_reinstated_only_with_leave_however_it_is_typed(site: Path) -> None:
    registry = open_registry(site)
    change_cards(registry, "S002", "revoked")
    ref = full_ref(registry, "S002")
    for card in (None, f"{short_ref(ref)}…", ref[:16], ref, f" {ref[:8].upper()} "):
        with pytest.raises(RegistryError, match="only a manager may reinstate a revoked card"):
            change_cards(registry, "S002", "active", card, actor="console:guard1")
    assert status_of(registry, "S002") == ["revoked"]
    assert [a["action"] for a in registry.audit()].count("card reinstated") == 0
    # A lost card is anyone's to reinstate; a revoked one with leave.
    assert change_cards(registry, "S002", "active", ref[:6], may_unrevoke=True)
    assert status_of(registry, "S002") == ["active"]
