"""Text that cannot be turned against its reader: CSV cells for spreadsheets, terminal lines.

Names, device ids and reasons come from HR files and from devices, and any of them may be
hostile. A spreadsheet runs a cell that starts with `=`, `+`, `-`, `@`, tab or CR as a
formula (`=HYPERLINK(…)`), so such a cell gets a leading single quote (OWASP's advice). A
terminal obeys escape sequences, so what the console prints goes through `terminal`
(edge.text's, shared by every command line).
"""

from __future__ import annotations

from collections.abc import Iterable

from edge.text import terminal

__all__ = ["FORMULA_START", "csv_cell", "csv_row", "terminal"]

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """Return `value` as a CSV cell that no spreadsheet takes for a formula."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(FORMULA_START) else text


def csv_row(values: Iterable[object]) -> list[str]:
    """Return a row of safe CSV cells."""
    return [csv_cell(v) for v in values]
