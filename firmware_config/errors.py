"""Configuration problems and the one error that carries all of them.

A `Problem` says where (`doors[1].relay.pin`), what was written there, what is wrong and how
to fix it. `ConfigError` holds every problem found in one pass, de-duplicated and sorted by
path, so an installer fixes the whole file at once instead of one mistake per restart.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

from edge.errors import EdgeError

MISSING: Final = "missing"
"""`Problem.value` when the key is absent."""

_MAX_VALUE_CHARS: Final = 60


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
        where = " = ".join(part for part in (self.path, shown) if part)
        text = f"{where}: {self.message}" if where else self.message
        return f"{text}; fix: {self.fix}"

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
    """Render a value the way it looks in a TOML file, shortened for one line."""
    text = _toml_like(value)
    if len(text) > _MAX_VALUE_CHARS:
        return text[: _MAX_VALUE_CHARS - 1] + "…"
    return text


def _toml_like(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        inner = ", ".join(f"{key} = {_toml_like(item)}" for key, item in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_like(item) for item in value) + "]"
    if value is None:
        return MISSING
    return str(value)


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
