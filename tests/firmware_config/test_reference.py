"""docs/configuration.md's reference is generated from the models and must be current."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_config.model import DeviceConfig
from firmware_config.reference import END, START, main, markdown_reference, update

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_configuration_doc_reference_is_current() -> None:
    text = REFERENCE.read_text(encoding="utf-8")
    assert update(text) == text, (
        "docs/configuration.md's configuration reference is stale: run "
        "`.venv/bin/python -m firmware_config.reference docs/configuration.md`"
    )


def test_reference_names_every_top_level_key_and_required_fields() -> None:
    reference = markdown_reference()
    for name in DeviceConfig.model_fields:
        assert f"[{name}]" in reference or f"[[{name}]]" in reference
    fail_row = next(line for line in reference.splitlines() if line.startswith("| `fail` |"))
    assert "**required**" in fail_row
    assert '`"safe"`' in fail_row


def test_update_needs_the_markers() -> None:
    with pytest.raises(ValueError, match="markers not found"):
        update("no markers here")
    assert markdown_reference() in update(f"a\n{START}\nold\n{END}\nb")


def test_main_rewrites_a_stale_reference_in_place(tmp_path: Path) -> None:
    doc = tmp_path / "configuration.md"
    doc.write_text(f"# Reference\n\n{START}\nOUTDATED ROWS\n{END}\n\nafter\n", encoding="utf-8")
    assert main([str(doc)]) == 0
    text = doc.read_text(encoding="utf-8")
    assert "OUTDATED ROWS" not in text
    assert text == f"# Reference\n\n{START}\n{markdown_reference()}{END}\n\nafter\n"
