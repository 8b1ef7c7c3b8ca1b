"""The desk's commands are each in the guides: edge-console card and pass for security staff,
edge-provision passes and the card-level cards commands for operators."""

from __future__ import annotations

from pathlib import Path

from console.cli_desk import card_group, pass_group
from provisioning.cli_cards import cards
from provisioning.cli_passes import passes

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_every_desk_command_is_documented() -> None:
    guide = (DOCS / "security-staff.md").read_text(encoding="utf-8")
    assert set(card_group.commands) == {"lost", "revoke", "reinstate"}
    assert "`card lost|revoke|reinstate --staff-no N [--card 45e6…]`" in guide
    for name in pass_group.commands:
        assert f"$ edge-console pass {name} " in guide, name
    for option in ("--user", "--password-file", "--site-dir", "--broker-host", "--timeout-s"):
        assert f"`{option}`" in guide, option
    operators = (DOCS / "operators.md").read_text(encoding="utf-8")
    for name in passes.commands:
        assert f"$ edge-provision passes {name} " in operators, name
    assert {"lost", "revoke", "reinstate"} <= set(cards.commands)
    assert "`edge-provision cards lost|revoke|reinstate STAFF_NO [--card 45e6…]`" in operators
