"""The who-may-do-what table of docs/security-staff.md says what console.users enforces."""

from __future__ import annotations

import re
from pathlib import Path

from console.cli_doors import door_group, fire_reset, lockdown
from console.users import ACTIONS, PAGES, ROLES
from provisioning.cli_console_key import console_key

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "security-staff.md"
ROW = re.compile(r"^\| (page|action) `([a-z._]+)`: [^|]+\|((?: (?:yes|no) \|)+)$")


def documented() -> dict[tuple[str, str], frozenset[str]]:
    table: dict[tuple[str, str], frozenset[str]] = {}
    for line in GUIDE.read_text(encoding="utf-8").splitlines():
        found = ROW.match(line)
        if found:
            cells = found.group(3).replace("|", " ").split()
            assert len(cells) == len(ROLES), line
            table[(found.group(1), found.group(2))] = frozenset(
                role for role, cell in zip(ROLES, cells, strict=True) if cell == "yes"
            )
    return table


def test_the_table_heads_the_roles_in_order() -> None:
    assert f"| page or action | {' | '.join(ROLES)} |" in GUIDE.read_text(encoding="utf-8")


def test_the_docs_table_is_pages_and_actions_exactly() -> None:
    expected = {("page", p): r for p, r in PAGES.items()}
    expected |= {("action", a): r for a, r in ACTIONS.items()}
    assert documented() == expected


def test_every_door_command_is_documented() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    assert "`door unlock|hold|normal|reset DOOR`" in guide
    assert set(door_group.commands) == {"unlock", "hold", "normal", "reset"}
    assert "`lockdown on|off" in guide
    assert set(lockdown.commands) == {"on", "off"}
    assert f"`{fire_reset.name} [--door D]`" in guide
    operators = (GUIDE.parent / "operators.md").read_text(encoding="utf-8")
    assert f"edge-provision {console_key.name} --dir site --out" in operators
