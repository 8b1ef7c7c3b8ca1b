"""The shape of an HR file before its values: header, fields per row, lengths, characters.

A problem names the line and the column, never the value: any column may hold a card number
when HR swaps two of them, and a file without a header starts with a staff row.
"""

from __future__ import annotations

import csv
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

COLUMNS: Final = (
    "staff_no",
    "name",
    "department",
    "card_tech",
    "card_id",
    "groups",
    "valid_from",
    "valid_until",
)
# card_profile: uid (default), lite-s or desfire; pin and duress_pin: 4-8 digits, hashed at
# import and never shown.
OPTIONAL: Final = ("card_profile", "pin", "duress_pin")
MAX_FIELD: Final = 200
"""Most characters in one field; `groups` may hold up to MAX_GROUPS_FIELD."""
MAX_GROUPS_FIELD: Final = 1000
_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cs", "Co"})
_BIDI: Final = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
_COLUMNS_TEXT: Final = ",".join(COLUMNS) + " (and optionally " + ",".join(OPTIONAL) + ")"


@dataclass(frozen=True)
class RowProblem:
    """One bad field (or row) in one line; `value` is already fit to show, or empty."""

    line: int
    field: str
    value: str
    fix: str

    def __str__(self) -> str:
        where = f"line {self.line}: {self.field}"
        return f"{where} = {self.value}: {self.fix}" if self.value else f"{where}: {self.fix}"


def unreadable(error: csv.Error) -> str:
    reason = str(error)
    if "field larger than field limit" in reason:
        why = "a field is longer than 128 KiB (an unclosed double quote?)"
    else:
        why = "the line cannot be read as CSV"
    return f"{why}; nothing after it was read: check the quotes on that line, or export again"


def header_problems(header: list[str] | None) -> list[RowProblem]:
    if header is None:
        return [
            RowProblem(
                1,
                "header",
                "",
                f"the file is empty; the first line names the columns: {_COLUMNS_TEXT}",
            )
        ]
    names = [fold(name).lower() for name in header]
    known = [name for name in names if name in COLUMNS or name in OPTIONAL]
    if not known:
        # Not a header at all: most likely the first staff row. Show nothing of it.
        return [
            RowProblem(
                1,
                "header",
                "",
                f"the first line is not a header row; add one naming the columns: {_COLUMNS_TEXT}",
            )
        ]
    problems = []
    for number, name in enumerate(names, start=1):
        if name not in COLUMNS and name not in OPTIONAL:
            problems.append(
                RowProblem(
                    1,
                    f"header column {number}",
                    "",
                    f"not a known column; remove it or rename it to one of: {_COLUMNS_TEXT}",
                )
            )
        elif names.index(name) != number - 1:
            problems.append(RowProblem(1, name, "", "this column appears twice; keep one"))
    missing = [column for column in COLUMNS if column not in names]
    if missing:
        problems.append(RowProblem(1, "header", "", f"add the columns {', '.join(missing)}"))
    return problems


def extra_fields(line: int, found: int, expected: int) -> RowProblem:
    return RowProblem(
        line,
        "row",
        "",
        f"{found} fields, but the header names {expected} columns; remove the extra fields "
        "(a value with a comma in it goes in double quotes)",
    )


def field_problems(line: int, raw: dict[str, str]) -> Iterator[RowProblem]:
    for column, value in raw.items():
        limit = MAX_GROUPS_FIELD if column == "groups" else MAX_FIELD
        if len(value) > limit:
            yield RowProblem(
                line, column, "", f"{len(value)} characters; at most {limit} fit in this column"
            )
        elif any(_hidden(char) for char in value):
            yield RowProblem(
                line,
                column,
                "",
                "holds a control character (line break, tab, escape, NUL) or a direction "
                "mark; retype the value in the spreadsheet and export again",
            )


def _hidden(char: str) -> bool:
    return unicodedata.category(char) in _HIDDEN_CATEGORIES or char in _BIDI


def fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()
