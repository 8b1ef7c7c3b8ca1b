"""Staff CSV from HR: read (UTF-8 or Shift_JIS), validate row by row, never echo a card id.

Columns (a header row names them, in any order):
    staff_no, name, department, card_tech, card_id, groups, valid_from, valid_until
`groups` is separated by `;`; dates are YYYY-MM-DD in the site's time zone, `valid_until`
inclusive (the card works to the end of that day); empty dates mean no limit.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from edge.cardref import CardIdError, card_reference, normalise

COLUMNS = (
    "staff_no",
    "name",
    "department",
    "card_tech",
    "card_id",
    "groups",
    "valid_from",
    "valid_until",
)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


@dataclass(frozen=True)
class RowProblem:
    """One bad field in one row."""

    line: int
    field: str
    value: str  # card ids are masked
    fix: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field} = {self.value!r}: {self.fix}"


@dataclass(frozen=True)
class StaffRow:
    """A valid row, with the card as a reference."""

    line: int
    staff_no: str
    name: str
    department: str
    technology: str
    card_ref: str
    groups: tuple[str, ...]
    valid_from: datetime | None
    valid_until: datetime | None


def decode(data: bytes, encoding: str | None = None) -> tuple[str, str]:
    """Return the text and the encoding used: UTF-8 (BOM or not), else Shift_JIS (cp932)."""
    candidates = [encoding] if encoding else ["utf-8-sig", "cp932"]
    for name in candidates:
        try:
            return data.decode(name), name
        except (UnicodeDecodeError, LookupError):
            continue
    raise ValueError(
        "the file is neither UTF-8 nor Shift_JIS; save it as UTF-8 or name the encoding "
        "with --encoding"
    )


def mask(card_id: str) -> str:
    """Show only the length of a card id: ids never go to screens, logs or files."""
    return f"<{len(card_id)} characters>"


def parse(text: str, site_key: bytes, timezone: str) -> tuple[list[StaffRow], list[RowProblem]]:
    """Validate every row; return the good rows and every problem (the file is judged whole)."""
    tz = ZoneInfo(timezone)
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        return [], [
            RowProblem(1, "header", ",".join(reader.fieldnames or []), f"add the columns {missing}")
        ]
    rows, problems = [], []
    seen_staff: dict[str, int] = {}
    seen_cards: dict[str, int] = {}
    for raw in reader:
        line = reader.line_num
        row_problems: list[RowProblem] = []

        if not any((value or "").strip() for value in raw.values()):
            continue  # a blank line, as spreadsheets leave at the end

        def get(key: str, raw: dict[str, str | None] = raw) -> str:
            return (raw.get(key) or "").strip()

        # HR systems type staff numbers, ids and dates in full-width (ＳＯＯ１, ２０２７): NFKC
        # folds them to ASCII; names are kept as written.
        staff_no, name = _fold(get("staff_no")), get("name")
        if not staff_no:
            row_problems.append(
                RowProblem(line, "staff_no", "", "every row needs the staff number")
            )
        elif staff_no in seen_staff:
            row_problems.append(
                RowProblem(line, "staff_no", staff_no, f"already on line {seen_staff[staff_no]}")
            )
        if not name:
            row_problems.append(RowProblem(line, "name", "", "every row needs a name"))
        card_ref = ""
        try:
            tech, card_id = _fold(get("card_tech")), _fold(get("card_id"))
            normalised = normalise(tech, card_id)
            card_ref = card_reference(site_key, tech, card_id)
            if card_ref in seen_cards:
                row_problems.append(
                    RowProblem(
                        line,
                        "card_id",
                        mask(get("card_id")),
                        f"the same card is on line {seen_cards[card_ref]}",
                    )
                )
        except CardIdError as exc:
            normalised = ""
            field = "card_tech" if "technology" in str(exc) else "card_id"
            value = get("card_tech") if field == "card_tech" else mask(get("card_id"))
            row_problems.append(RowProblem(line, field, value, str(exc)))
        groups = tuple(g.strip() for g in get("groups").split(";") if g.strip())
        for group in groups:
            if not _SLUG.match(group):
                row_problems.append(
                    RowProblem(
                        line,
                        "groups",
                        group,
                        "group names are lower-case letters, digits and hyphens",
                    )
                )
        valid_from = _date(_fold(get("valid_from")), line, "valid_from", row_problems)
        valid_until = _date(_fold(get("valid_until")), line, "valid_until", row_problems)
        if valid_from and valid_until and valid_until < valid_from:
            row_problems.append(
                RowProblem(line, "valid_until", get("valid_until"), "ends before valid_from")
            )
        if row_problems:
            problems += row_problems
            continue
        seen_staff[staff_no] = line
        seen_cards[card_ref] = line
        rows.append(
            StaffRow(
                line,
                staff_no,
                name,
                get("department"),
                normalised.split(":", 1)[0],
                card_ref,
                groups,
                datetime.combine(valid_from, time(0), tz) if valid_from else None,
                datetime.combine(valid_until + timedelta(days=1), time(0), tz)
                if valid_until
                else None,
            )
        )
    return rows, problems


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).strip()


def _date(text: str, line: int, field: str, problems: list[RowProblem]) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text.replace("/", "-"))
    except ValueError:
        problems.append(RowProblem(line, field, text, "write dates as YYYY-MM-DD, e.g. 2027-03-31"))
        return None
