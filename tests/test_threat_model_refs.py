"""Every test the threat model names as proof exists, in the file it names."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
THREAT_MODEL = ROOT / "docs" / "threat-model.md"
# `console/test_claims.py` or `console/test_claims.py::test_name`, and `::test_name` alone
# for another test in the file named just before it.
REFERENCE = re.compile(r"`((?:[a-z_]+/)*test_[a-z0-9_]+\.py)?(?:::([A-Za-z0-9_]+))?`")


def references(text: str) -> list[tuple[str, str | None]]:
    """Return (test file, test name or None) for every proof the text names."""
    found: list[tuple[str, str | None]] = []
    last: str | None = None
    for match in REFERENCE.finditer(text):
        path, name = match.group(1), match.group(2)
        if path is None and name is None:
            continue
        path = path or last
        assert path is not None, f"::{name} names no file before it"
        last = path
        found.append((path, name))
    return found


def test_the_reference_reader_finds_a_file_and_a_name_after_it() -> None:
    text = "`a/test_x.py::test_one`, `::test_two` and `b/test_y.py`"
    assert references(text) == [
        ("a/test_x.py", "test_one"),
        ("a/test_x.py", "test_two"),
        ("b/test_y.py", None),
    ]


def test_every_proof_the_threat_model_names_exists() -> None:
    missing = []
    for path, name in references(THREAT_MODEL.read_text(encoding="utf-8")):
        file = ROOT / "tests" / path
        if not file.exists():
            missing.append(path)
        elif name is not None and not re.search(
            rf"^(async )?def {name}\(", file.read_text(encoding="utf-8"), re.M
        ):
            missing.append(f"{path}::{name}")
    assert missing == [], f"the threat model names tests that do not exist: {missing}"
