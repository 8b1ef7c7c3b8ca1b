"""Every module past 500 lines says why in its docstring (the house style's rule 19)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("edge", "firmware_config", "provisioning", "simulator", "console", "rooms")
LIMIT = 500


def unexplained(path: Path) -> str | None:
    """Return why `path` breaks the rule, or None when it keeps it."""
    text = path.read_text(encoding="utf-8")
    lines = len(text.splitlines())
    docstring = " ".join((ast.get_docstring(ast.parse(text)) or "").split())
    if lines <= LIMIT or f"past {LIMIT} lines" in docstring:
        return None
    return f"{path.name}: {lines} lines and no reason in its docstring"


def test_every_long_module_states_its_reason() -> None:
    paths = sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))
    assert len(paths) > 100
    found = [problem for path in paths if (problem := unexplained(path))]
    assert found == [], f"split these, or say why they run past {LIMIT} lines: {found}"


def test_the_check_catches_a_long_module_without_a_reason(tmp_path: Path) -> None:
    body = "x = 1\n" * LIMIT
    path = tmp_path / "long.py"
    path.write_text('"""Do a thing."""\n' + body, encoding="utf-8")
    assert unexplained(path) == f"long.py: {LIMIT + 1} lines and no reason in its docstring"
    path.write_text(f'"""Do a thing.\n\nIt runs past {LIMIT} lines: one reason.\n"""\n' + body)
    assert unexplained(path) is None
    path.write_text('"""Do a thing."""\n' + body[: -len("x = 1\n") * 2])
    assert unexplained(path) is None
