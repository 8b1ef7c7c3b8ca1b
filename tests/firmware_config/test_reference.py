"""The README's configuration reference is generated from the models and must be current."""

from __future__ import annotations

from pathlib import Path

from firmware_config.model import DeviceConfig
from firmware_config.reference import END, START, markdown_reference, update

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_reference_is_current() -> None:
    text = README.read_text(encoding="utf-8")
    assert update(text) == text, (
        "README.md's configuration reference is stale: run "
        "`.venv/bin/python -m firmware_config.reference README.md`"
    )


def test_reference_names_every_top_level_key_and_required_fields() -> None:
    reference = markdown_reference()
    for name in DeviceConfig.model_fields:
        assert f"[{name}]" in reference or f"[[{name}]]" in reference
    fail_row = next(line for line in reference.splitlines() if line.startswith("| `fail` |"))
    assert "**required**" in fail_row
    assert '`"safe"`' in fail_row


def test_update_needs_the_markers() -> None:
    import pytest

    with pytest.raises(ValueError, match="markers not found"):
        update("no markers here")
    assert markdown_reference() in update(f"a\n{START}\nold\n{END}\nb")
