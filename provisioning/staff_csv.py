"""Staff CSV from HR: read, validate row by row, never echo a card id.

Columns (a header row names them, in any order):
    staff_no, name, department, card_tech, card_id, groups, valid_from, valid_until
and optionally card_profile: uid (the default: the card's id alone), lite-s (a FeliCa Lite-S
card personalised with its key) or desfire (a DESFire EV2 card with the staff application),
and optionally pin and duress_pin (4-8 digits; hashed here with a fresh salt, kept only as
the hash, and never shown in any message: a value in a problem that equals either is blanked).
`groups` is separated by `;`; dates are YYYY-MM-DD in the site's time zone, `valid_until`
inclusive (the card works to the end of that day); empty dates mean no limit.

Any column may hold a card number when HR swaps two of them, so a problem names the line and
the column and shows a value only when it cannot be one (`shown`); a file without a
recognised header row shows nothing of its first line. Decoding lives in `hr_text`, the
file's shape (header, fields per row, lengths, characters) in `hr_shape`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Final
from zoneinfo import ZoneInfo

from edge.cardref import TECHNOLOGIES, CardIdError, card_references, normalise
from edge.core.credentials import CardProfile, PinHash
from edge.pin_hash import PinError, hash_pin
from edge.text import terminal
from provisioning.card_keys import keys_for
from provisioning.hr_shape import (
    COLUMNS,
    RowProblem,
    extra_fields,
    field_problems,
    fold,
    header_problems,
    unreadable,
)
from provisioning.hr_text import EncodingRefused, decode

__all__ = [
    "COLUMNS",
    "EncodingRefused",
    "RowProblem",
    "StaffRow",
    "decode",
    "parse",
    "shown",
    "unquoted",
]

MAX_SHOWN: Final = 40
_SLUG: Final = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_CARD_LIKE: Final = re.compile(r"[0-9A-Fa-f]{8,}")
_SEPARATORS: Final = re.compile(r"[\s:\-_.]")
# A date written as a date (2026-03-31) is shown: no card identifier is written that way.
_DATE: Final = re.compile(r"^\s*\d{4}-\d{1,2}-\d{1,2}\s*$")
_PIN_LIKE: Final = re.compile(r"\d{4,8}")
_FIRST_DAY: Final = date(2000, 1, 1)
_LAST_DAY: Final = date(2099, 12, 31)


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
    profile: str = "uid"
    card_keys: Mapping[str, bytes] = field(default_factory=dict, repr=False)  # by slot
    pin: PinHash | None = field(default=None, repr=False)
    pin_column: bool = False  # the file has a pin column: an empty pin removes the PIN


def mask(card_id: str) -> str:
    """Show only the length of a card id: ids never go to screens, logs or files."""
    return f"<{len(card_id)} characters>"


def shown(value: str) -> str:
    """Return a value, quoted, for a message: hidden if it may be a card number."""
    text = unquoted(value)
    return text if text.startswith("(hidden") else repr(text)


def unquoted(value: str) -> str:
    """Return a value for a message: hidden if it may be a card number, else shortened."""
    if not _DATE.match(value) and _CARD_LIKE.search(_SEPARATORS.sub("", fold(value))):
        return "(hidden: it may be a card number)"
    text = terminal(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def parse(
    text: str, site_key: bytes, timezone: str, master: bytes | None = None
) -> tuple[list[StaffRow], list[RowProblem]]:
    """Validate every row; return the good rows and every problem (the file is judged whole).

    `master` (the site's card master key) derives the keys of proving cards; without it a
    row with a card_profile other than uid is a problem.
    """
    tz = ZoneInfo(timezone)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
    except csv.Error as error:
        return [], [RowProblem(1, "header", "", unreadable(error))]
    problems = header_problems(header)
    if problems or header is None:
        return [], problems
    index = {fold(name).lower(): i for i, name in enumerate(header)}
    rows: list[StaffRow] = []
    seen_staff: dict[str, int] = {}
    seen_cards: dict[str, int] = {}
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            break
        except csv.Error as error:  # csv cannot go on past it: report and stop
            problems.append(RowProblem(reader.line_num, "row", "", unreadable(error)))
            break
        line = reader.line_num
        if not any(field.strip() for field in fields):
            continue  # a blank line, as spreadsheets leave at the end (perhaps with commas)
        if len(fields) > len(header):
            problems.append(extra_fields(line, len(fields), len(header)))
            continue
        raw = {name: fields[i] if i < len(fields) else "" for name, i in index.items()}
        shape_problems = list(field_problems(line, raw))
        if shape_problems:
            problems += shape_problems
            continue
        row, row_problems = _row(line, raw, tz, seen_staff, seen_cards)
        if row is not None:
            row = _with_pin(_with_profile(row, raw, master, row_problems), raw, row_problems)
            if row_problems:
                row = None
        if row is None:
            problems += [_without_pins(p, raw) for p in row_problems]
            continue
        seen_staff[row.staff_no] = line
        seen_cards[row.card_ref] = line
        rows.append(row)
    # Until here a row's card_ref holds the normalised "tech:ID": references are memory-hard
    # (edge.cardref), so they are made all at once, on every core, for the good rows only.
    refs = card_references(site_key, [(r.technology, r.card_ref.split(":", 1)[1]) for r in rows])
    return [replace(r, card_ref=ref) for r, ref in zip(rows, refs, strict=True)], problems


def _row(
    line: int,
    raw: dict[str, str],
    tz: ZoneInfo,
    seen_staff: dict[str, int],
    seen_cards: dict[str, int],
) -> tuple[StaffRow | None, list[RowProblem]]:
    problems: list[RowProblem] = []

    def get(key: str) -> str:
        return raw.get(key, "").strip()

    # HR systems type staff numbers, ids and dates in full-width (ＳＯＯ１, ２０２７): NFKC
    # folds them to ASCII; names are kept as written.
    staff_no, name = fold(get("staff_no")), get("name")
    if not staff_no:
        problems.append(RowProblem(line, "staff_no", "", "every row needs the staff number"))
    elif staff_no in seen_staff:
        problems.append(
            RowProblem(line, "staff_no", shown(staff_no), f"already on line {seen_staff[staff_no]}")
        )
    if not name:
        problems.append(RowProblem(line, "name", "", "every row needs a name"))
    card_ref, technology = _card(line, fold(get("card_tech")), fold(get("card_id")), problems)
    if card_ref in seen_cards:
        problems.append(
            RowProblem(line, "card_id", "", f"the same card is on line {seen_cards[card_ref]}")
        )
    groups = tuple(g.strip() for g in get("groups").split(";") if g.strip())
    for number, group in enumerate(groups, start=1):
        if not _SLUG.match(group):
            problems.append(
                RowProblem(
                    line,
                    "groups",
                    "",
                    f"group {number} is not a group name: group names are lower-case letters, "
                    "digits and hyphens, separated by ;",
                )
            )
    valid_from = _date(fold(get("valid_from")), line, "valid_from", problems)
    valid_until = _date(fold(get("valid_until")), line, "valid_until", problems)
    if valid_from and valid_until and valid_until < valid_from:
        problems.append(
            RowProblem(line, "valid_until", shown(get("valid_until")), "ends before valid_from")
        )
    if problems:
        return None, problems
    return StaffRow(
        line,
        staff_no,
        name,
        get("department"),
        technology,
        card_ref,
        groups,
        datetime.combine(valid_from, time(0), tz) if valid_from else None,
        datetime.combine(valid_until + timedelta(days=1), time(0), tz) if valid_until else None,
    ), []


def _with_profile(
    row: StaffRow, raw: dict[str, str], master: bytes | None, problems: list[RowProblem]
) -> StaffRow:
    """Return the row with its card's profile and keys, or add a problem."""
    text = fold(raw.get("card_profile", "").strip()).lower() or "uid"
    try:
        profile = CardProfile(text)
    except ValueError:
        problems.append(
            RowProblem(row.line, "card_profile", shown(text), "use uid, lite-s or desfire")
        )
        return row
    if not profile.proves:
        return row
    if master is None:
        problems.append(
            RowProblem(row.line, "card_profile", text, "proving cards need the site's master key")
        )
        return row
    try:
        normalised = normalise(row.technology, fold(raw.get("card_id", "").strip()))
        card_id = bytes.fromhex(normalised.split(":", 1)[1])
        keys = keys_for(profile, row.technology, card_id, master)
    except (ValueError, CardIdError) as exc:
        problems.append(RowProblem(row.line, "card_profile", text, str(exc)))
        return row
    return replace(row, profile=str(profile), card_keys=keys)


def _without_pins(problem: RowProblem, raw: dict[str, str]) -> RowProblem:
    """Blank a shown value that is a PIN of the row, or may be one (a file with PINs)."""
    secrets = {raw.get(k, "").strip() for k in ("pin", "duress_pin")} - {""}
    value = fold(problem.value.strip("'\""))
    pins_here = "pin" in raw or "duress_pin" in raw
    if any(x in problem.value for x in secrets) or (pins_here and _PIN_LIKE.fullmatch(value)):
        return replace(problem, value="")
    return problem


def _with_pin(row: StaffRow, raw: dict[str, str], problems: list[RowProblem]) -> StaffRow:
    """Return the row with its PIN hash, or add a problem that shows no digit of it."""
    if "pin" not in raw:
        if fold(raw.get("duress_pin", "").strip()):
            problems.append(RowProblem(row.line, "duress_pin", "", "a duress PIN needs a pin"))
        return row
    pin, duress = (fold(raw.get(k, "").strip()) for k in ("pin", "duress_pin"))
    if not pin:
        if duress:
            problems.append(RowProblem(row.line, "duress_pin", "", "a duress PIN needs a pin"))
        return replace(row, pin_column=True)
    try:
        pin_hash = hash_pin(pin, duress or None)
    except PinError as exc:  # its message never holds the digits
        column = "duress_pin" if "duress" in str(exc) else "pin"
        problems.append(RowProblem(row.line, column, "", f"{exc}; the value is not shown"))
        return row
    return replace(row, pin=pin_hash, pin_column=True)


def _card(line: int, tech: str, card_id: str, problems: list[RowProblem]) -> tuple[str, str]:
    """Return (normalised "tech:ID", technology), or ("", "") after adding a problem."""
    if tech.lower() not in TECHNOLOGIES:
        problems.append(
            RowProblem(
                line,
                "card_tech",
                "",
                f"not a card technology; use one of {', '.join(TECHNOLOGIES)} "
                "(are card_tech and card_id in the right columns?)",
            )
        )
        return "", ""
    try:
        normalised = normalise(tech, card_id)
        return normalised, normalised.split(":", 1)[0]
    except CardIdError as exc:  # its message never repeats the identifier
        problems.append(RowProblem(line, "card_id", "", str(exc)))
        return "", ""


def _date(text: str, line: int, field: str, problems: list[RowProblem]) -> date | None:
    if not text:
        return None
    try:
        day = date.fromisoformat(text.replace("/", "-"))
    except ValueError:
        problems.append(
            RowProblem(line, field, shown(text), "write dates as YYYY-MM-DD, e.g. 2027-03-31")
        )
        return None
    if not _FIRST_DAY <= day <= _LAST_DAY:
        problems.append(
            RowProblem(line, field, shown(text), "use a date from 2000-01-01 to 2099-12-31")
        )
        return None
    return day
