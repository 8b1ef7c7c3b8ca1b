"""Configuration problems and the one error that carries all of them.

A `Problem` says where (`doors[1].relay.pin`), what was written there, what is wrong and how
to fix it. `ConfigError` holds every problem found in one pass, de-duplicated and sorted by
path, so an installer fixes the whole file at once instead of one mistake per restart.
"""

from __future__ import annotations

import json
import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from edge.errors import EdgeError

MISSING: Final = "missing"
"""`Problem.value` when the key is absent."""

_MAX_VALUE_CHARS: Final = 60
_MAX_PATH_CHARS: Final = 100
_MAX_DIGITS: Final = 30
_HIDDEN_CATEGORIES: Final = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


@dataclass(frozen=True)
class Problem:
    """One mistake in a configuration, with the remedy."""

    path: str
    """Where: `doors[1].relay.pin`, `mqtt.port`, or `line 3, column 7` for TOML syntax."""
    value: str
    """What was written there, as TOML would show it, or "missing"."""
    message: str
    fix: str

    def __str__(self) -> str:
        shown = "" if self.value == MISSING else self.value
        where = " = ".join(part for part in (shorten(self.path, _MAX_PATH_CHARS), shown) if part)
        text = f"{where}: {self.message}" if where else self.message
        return printable(f"{text}; fix: {self.fix}")

    def within(self, prefix: str) -> Problem:
        """Return this problem with its path moved under `prefix` (`doors[1]`)."""
        return Problem(join_path(prefix, self.path), self.value, self.message, self.fix)


class ConfigError(EdgeError, ValueError):
    """The configuration is invalid; `problems` lists every mistake found."""

    def __init__(self, problems: Iterable[Problem], source: str = "") -> None:
        unique = {(p.path, p.message): p for p in problems}
        self.problems: tuple[Problem, ...] = tuple(sorted(unique.values(), key=_path_order))
        self.source = source  # the file or "<string>"; empty when a model was built in code
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)

    def __reduce__(self) -> tuple[type[ConfigError], tuple[tuple[Problem, ...], str]]:
        return (ConfigError, (self.problems, self.source))


def join_path(prefix: str, path: str) -> str:
    """Join two config paths: `doors[1]` + `relay.pin` -> `doors[1].relay.pin`."""
    if not prefix or not path:
        return prefix or path
    return prefix + path if path.startswith("[") else f"{prefix}.{path}"


def show_value(value: object) -> str:
    """Render a value the way it looks in a TOML file, shortened for one line.

    Control and invisible characters are shown as escapes, so a value cannot move the
    cursor, recolour a terminal or hide text; huge numbers are described, not printed.
    """
    return shorten(printable(_toml_like(value, _MAX_VALUE_CHARS)), _MAX_VALUE_CHARS)


def shorten(text: str, limit: int) -> str:
    """Cut `text` to `limit` characters, marking the cut with "…"."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def printable(text: str) -> str:
    """Replace control, format and unassigned characters with `\\uXXXX` escapes."""
    if text.isprintable():
        return text
    return "".join(
        f"\\u{ord(char):04x}" if unicodedata.category(char) in _HIDDEN_CATEGORIES else char
        for char in text
    )


def number_text(value: int | float) -> str:
    """Write a number for a message: huge integers by their size, never all their digits."""
    if isinstance(value, float):
        return str(value) if not math.isfinite(value) else f"{value:.6g}"
    if abs(value) < 10**_MAX_DIGITS:
        return str(value)
    digits = int(value.bit_length() * math.log10(2)) + 1
    return f"{'-' if value < 0 else ''}a number of about {digits} digits"


def _toml_like(value: object, budget: int) -> str:
    # Only about `budget` characters are ever shown, so each level of a deep or huge value
    # takes some of it: rendering stops long before Python's recursion limit.
    if budget <= 0:
        return "…"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value[: budget + 1], ensure_ascii=False)
    if isinstance(value, int):
        return number_text(value)
    if isinstance(value, float):
        return str(value)
    if isinstance(value, dict):
        items = ((f"{_key(key)} = ", item) for key, item in value.items())
        return "{ " + _items(items, budget - 2) + " }" if value else "{}"
    if isinstance(value, list | tuple):
        return "[" + _items((("", item) for item in value), budget - 1) + "]"
    if value is None:
        return MISSING
    return str(value)[: budget + 1]


def _items(items: Iterable[tuple[str, object]], budget: int) -> str:
    out: list[str] = []
    for prefix, item in items:
        if budget <= 0:
            out.append("…")
            break
        piece = prefix + _toml_like(item, budget - len(prefix))
        out.append(piece)
        budget -= len(piece) + 2
    return ", ".join(out)


def _key(key: object) -> str:
    text = str(key)[:_MAX_VALUE_CHARS]
    return text if re.fullmatch(r"[A-Za-z0-9_-]+", text) else json.dumps(text, ensure_ascii=False)


def _path_order(problem: Problem) -> tuple[str | int, ...]:
    # Natural order, so doors[10] comes after doors[2]. re.split with one capturing group
    # alternates text and digits, so equal positions always compare str with str.
    parts = re.split(r"(\d+)", problem.path)
    return tuple(int(part) if index % 2 else part for index, part in enumerate(parts))


def raise_problems(problems: Iterable[Problem]) -> None:
    """Raise a ConfigError if there is any problem."""
    found = list(problems)
    if found:
        raise ConfigError(found)
