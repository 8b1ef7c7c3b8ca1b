"""Value types the configuration models share: ids, GPIO pins, durations, time zones, dates.

Each validator rejects a bad value with a `ConfigError` (a `ValueError`, so pydantic reports
it at the field's path) whose problem says how to fix it. Numbers and booleans are strict:
`pin = "17"` or `active_high = "no"` is refused rather than guessed at.
"""

from __future__ import annotations

import datetime
import difflib
import re
import unicodedata
import zoneinfo
from pathlib import Path
from typing import Annotated, Final, NoReturn

from pydantic import AfterValidator, Field, Strict

from firmware_config.errors import ConfigError, Problem, number_text, show_value

FIRST_PIN: Final = 2
LAST_PIN: Final = 27
_SLUG: Final = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")
_SLUG_RULE: Final = (
    "use lowercase letters, digits and hyphens, starting with a letter or digit, "
    "at most 63 characters"
)
_MONTH_DAY: Final = re.compile(r"(\d\d)-(\d\d)")
_NFC_PREFIXES: Final = ("usb:", "udp:", "tty:")
MAX_TEXT: Final = 200
"""Most characters in a name, host name, user name or reader match."""
MAX_PATH: Final = 4096
"""Most characters in a file path (Linux's PATH_MAX)."""


def _reject(value: object, message: str, fix: str) -> NoReturn:
    raise ConfigError([Problem("", show_value(value), message, fix)])


def check_slug(value: str) -> str:
    """Accept an id made of lowercase letters, digits and hyphens (1-63 characters)."""
    if _SLUG.fullmatch(value) is None:
        example = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:63] or "gate-1f-east"
        _reject(value, "not a valid id", f'{_SLUG_RULE}, e.g. "{example}"')
    return value


def check_pin(value: int) -> int:
    """Accept a Raspberry Pi BCM GPIO number that a HAT or wiring may use."""
    if not FIRST_PIN <= value <= LAST_PIN:
        _reject(
            value,
            f"GPIO {number_text(value)} does not exist on a Raspberry Pi",
            f"use a BCM number from {FIRST_PIN} to {LAST_PIN} "
            "(0 and 1 are reserved for the HAT EEPROM)",
        )
    return value


def check_timezone(value: str) -> str:
    """Accept an IANA time zone name known to this machine (or to the tzdata package)."""
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        fix = 'use an IANA name such as "Asia/Tokyo"'
        guess = _closest_timezone(value)
        _reject(value, "unknown time zone", f'{fix}; did you mean "{guess}"?' if guess else fix)
    return value


def _closest_timezone(value: str) -> str | None:
    wanted = value.lower()
    names = sorted(zoneinfo.available_timezones())
    for name in names:  # "Tokyo" -> "Asia/Tokyo"
        if name.lower() == wanted or name.lower().endswith("/" + wanted):
            return name
    lowered = {name.lower(): name for name in names}
    close = difflib.get_close_matches(wanted, lowered, n=1)
    return lowered[close[0]] if close else None


def check_month_day(value: str) -> str:
    """Accept a calendar day as "MM-DD" (29 February included)."""
    match = _MONTH_DAY.fullmatch(value)
    try:
        if match is None:
            raise ValueError(value)
        datetime.date(2000, int(match[1]), int(match[2]))  # 2000 is a leap year
    except ValueError:
        _reject(
            value,
            "not a day of the year",
            'write "MM-DD" with two digits each, e.g. "12-29" for 29 December',
        )
    return value


def check_topic_root(value: str) -> str:
    """Accept an MQTT topic root: slugs joined by "/", no wildcards."""
    fix = 'use ids joined by "/", e.g. "edge" or "kamakura/edge"'
    if "+" in value or "#" in value:
        _reject(value, "MQTT wildcards + and # cannot appear in a topic", fix)
    if value.startswith("/") or value.endswith("/"):
        _reject(value, 'a topic root cannot start or end with "/"', fix)
    for part in value.split("/"):
        if _SLUG.fullmatch(part) is None:
            _reject(value, f"{show_value(part)} is not a valid topic level", f"{fix}; {_SLUG_RULE}")
    return value


def check_nfc_path(value: str) -> str:
    """Accept an nfcpy device path: "usb[:…]", "tty:…" or "udp:…"."""
    if value != "usb" and not value.startswith(_NFC_PREFIXES):
        _reject(
            value,
            "not an nfcpy device path",
            'use "usb" (first reader found), "usb:054c:06c3" (vendor:product), '
            '"tty:USB0:pn532" (serial) or "udp:127.0.0.1:50000" (simulated)',
        )
    return value


def check_text(value: str) -> str:
    """Accept one line of text without control characters (names, hosts, matches)."""
    if any(unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co") for char in value):
        _reject(
            value,
            "control or invisible characters are not allowed here",
            "retype the value in a plain text editor (no tabs, line breaks or escape codes)",
        )
    return value


def check_path(value: Path) -> Path:
    """Accept a file path without control characters, at most 4096 characters long."""
    text = str(value)
    if len(text) > MAX_PATH:
        _reject(text, f"a path of {len(text)} characters", f"use a path of at most {MAX_PATH}")
    if any(unicodedata.category(char) == "Cc" for char in text):
        _reject(
            text,
            "control characters are not allowed in a path",
            'write the path as plain text, e.g. "/etc/edge/ca.crt"',
        )
    return value


Slug = Annotated[
    str,
    Strict(),
    AfterValidator(check_slug),
    Field(json_schema_extra={"pattern": f"^{_SLUG.pattern}$"}),
]
"""An id: lowercase letters, digits and hyphens, 1-63 characters."""

Pin = Annotated[
    int,
    Strict(),
    AfterValidator(check_pin),
    Field(json_schema_extra={"minimum": FIRST_PIN, "maximum": LAST_PIN}),
]
"""A Raspberry Pi BCM GPIO number, 2-27."""

Seconds = Annotated[float, Strict(), Field(allow_inf_nan=False)]
"""A duration in seconds; whole numbers are accepted. Each field sets its own bounds."""

Text = Annotated[str, Strict(), Field(max_length=MAX_TEXT), AfterValidator(check_text)]
"""One line of text, at most 200 characters, no control characters."""

FilePath = Annotated[Path, AfterValidator(check_path)]
"""A file path, at most 4096 characters, no control characters."""

Whole = Annotated[int, Strict()]
"""A whole number written without quotes."""

TimeZoneName = Annotated[str, Strict(), Field(max_length=MAX_TEXT), AfterValidator(check_timezone)]
MonthDay = Annotated[
    str,
    Strict(),
    AfterValidator(check_month_day),
    Field(json_schema_extra={"pattern": r"^\d\d-\d\d$"}),
]
TopicRoot = Annotated[str, Strict(), Field(max_length=MAX_TEXT), AfterValidator(check_topic_root)]
NfcPath = Annotated[str, Strict(), Field(max_length=MAX_TEXT), AfterValidator(check_nfc_path)]
