"""Read a device configuration from a TOML file and report every mistake in one pass.

The format is TOML, read with the standard library's `tomllib`: no extra dependency on the
Pi; comments are allowed, so examples explain themselves; no YAML implicit typing traps
(`no` does not become false, `010` does not become 8); and installers' editors know it.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from pydantic import ValidationError

from firmware_config.checks import check_config
from firmware_config.errors import MISSING, ConfigError, Problem, join_path, show_value
from firmware_config.model import DeviceConfig
from firmware_config.translate import problems_from

_SEE: Final = "see firmware_config/examples/"
MAX_BYTES: Final = 256 * 1024
"""The largest configuration file read; the examples are about 4 KiB."""
MAX_DEPTH: Final = 6
"""The deepest nesting of tables and lists a configuration needs is 4 (doors[0].relay.pin)."""
_MAX_INT: Final = 2**63 - 1  # beyond any setting; pydantic cannot even show larger tags
_MAX_UNREADABLE: Final = 100
_TOML_WHERE: Final = re.compile(r"(.*) \((?:at line (\d+), column (\d+)|at end of document)\)")
_TABLE_TUPLE: Final = re.compile(r"\(((?:'[^']*',? ?)+)\)")
_SYNTAX_FIXES: Final = (
    (
        "Invalid value",
        'put text in double quotes (role = "gate"); write numbers, true/false and times '
        "without quotes",
    ),
    (
        "Expected '=' after a key",
        "write one setting per line as key = value; keys have no spaces (unlock_s)",
    ),
    ("Cannot overwrite a value", "each key may appear only once in a table; delete the repeat"),
    (
        "Cannot declare",
        "each [table] may appear only once; write [[doors]] (double brackets) for each of "
        "several doors, readers, zones or sensors",
    ),
    ("Unterminated string", "close the text with a double quote on the same line"),
    (
        "Expected newline or end of document",
        'one setting per line; write a time as 03:00:00 or "03:00", a number without a '
        "leading zero",
    ),
)


def load_config(path: Path) -> DeviceConfig:
    """Read and validate a configuration file; raise ConfigError listing every problem."""
    source = str(path)
    try:
        with path.open("rb") as file:
            data = file.read(MAX_BYTES + 1)
    except OSError as error:
        reason = error.strerror or str(error)
        raise ConfigError(
            [
                Problem(
                    "",
                    MISSING,
                    f"cannot read {source}: {reason}",
                    "check the path, and that the agent's user may read the file",
                )
            ],
            source,
        ) from error
    if len(data) > MAX_BYTES:
        raise ConfigError(
            [
                Problem(
                    "",
                    MISSING,
                    f"{source} is larger than {MAX_BYTES // 1024} KiB: not a device configuration",
                    f"check the path; a configuration is a few KiB ({_SEE})",
                )
            ],
            source,
        )
    try:
        text = data.decode("utf-8-sig")  # tolerate the BOM some Windows editors write
    except UnicodeDecodeError as error:
        raise ConfigError(
            [
                Problem(
                    f"byte {error.start}",
                    MISSING,
                    "the file is not UTF-8 text",
                    "save it as UTF-8 (Shift_JIS is not supported)",
                )
            ],
            source,
        ) from error
    return parse_config(text, source)


def parse_config(text: str, source: str = "<string>") -> DeviceConfig:
    """Parse and validate TOML text; raise ConfigError listing every problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError([_syntax_problem(str(error), text)], source) from error
    except RecursionError as error:  # tomllib parses nested arrays and tables recursively
        raise ConfigError([_too_deep("", MAX_DEPTH)], source) from error
    except ValueError as error:  # int() past Python's 4300-digit limit
        raise ConfigError(
            [
                Problem(
                    "",
                    MISSING,
                    "a number too long to read (more than 4300 digits)",
                    "numbers in a configuration have a few digits; check for a pasted value",
                )
            ],
            source,
        ) from error
    return validate_config(data, source)


def validate_config(data: Mapping[str, Any], source: str = "<data>") -> DeviceConfig:
    """Validate configuration data (parsed TOML); raise ConfigError listing every problem."""
    unreadable = _unreadable(data)
    if unreadable:
        raise ConfigError(unreadable, source)
    try:
        return DeviceConfig.model_validate(data)
    except ValidationError as error:
        # Pydantic skips a model's own checks when one of its fields failed; the raw
        # checks still see the rest. ConfigError de-duplicates what both found.
        raise ConfigError([*problems_from(error), *check_config(data)], source) from error


def _unreadable(data: Mapping[str, Any]) -> list[Problem]:
    """Find values too deep or too large for any setting, before they reach the models."""
    problems: list[Problem] = []
    stack: list[tuple[str, object, int]] = [("", data, 0)]
    while stack and len(problems) < _MAX_UNREADABLE:
        path, value, depth = stack.pop()
        if depth > MAX_DEPTH:
            problems.append(_too_deep(path, MAX_DEPTH))
        elif isinstance(value, Mapping):
            stack += [(join_path(path, str(key)), item, depth + 1) for key, item in value.items()]
        elif isinstance(value, list | tuple):
            stack += [(f"{path}[{i}]", item, depth + 1) for i, item in enumerate(value)]
        elif isinstance(value, int) and not -_MAX_INT <= value <= _MAX_INT:
            problems.append(
                Problem(
                    path,
                    show_value(value),
                    "far too large for any setting",
                    f"write a number of a few digits ({_SEE} and `edge-agent schema`)",
                )
            )
    return problems


def _too_deep(path: str, limit: int) -> Problem:
    return Problem(
        path,
        MISSING,
        f"lists or tables nested more than {limit} levels deep",
        f"a configuration nests at most [[doors]] > [doors.relay] > pin; {_SEE}",
    )


def _syntax_problem(message: str, text: str) -> Problem:
    match = _TOML_WHERE.fullmatch(message)
    reason = _TABLE_TUPLE.sub(_as_header, match[1] if match else message)
    fix = next((fix for start, fix in _SYNTAX_FIXES if reason.startswith(start)), None)
    fix = fix or f"check the quotes, brackets and = on that line ({_SEE})"
    if match is None or match[2] is None:
        return Problem("end of file", MISSING, _lower_first(reason), fix)
    line_number = int(match[2])
    lines = text.splitlines()
    line = lines[line_number - 1].strip() if line_number <= len(lines) else ""
    shown = f"{_lower_first(reason)} in `{line[:60]}`" if line else _lower_first(reason)
    return Problem(f"line {line_number}, column {match[3]}", MISSING, shown, fix)


def _as_header(match: re.Match[str]) -> str:
    # tomllib names tables as Python tuples: ('doors', 'relay') -> [doors.relay]
    return "[" + ".".join(re.findall(r"'([^']*)'", match[1])) + "]"


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def config_hash(config: DeviceConfig) -> str:
    """Return a short fingerprint of the effective configuration (16 hex digits).

    It hashes the validated model, defaults included, so comments and layout do not change
    it and a changed default does.
    """
    canonical = json.dumps(
        config.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def json_schema() -> dict[str, Any]:
    """Return the JSON Schema of DeviceConfig: the reference for installers and tools."""
    return DeviceConfig.model_json_schema()


def masked(config: DeviceConfig) -> dict[str, Any]:
    """Return the effective configuration as plain data, fit for logging once at start.

    The schema refuses inline secrets and holds only paths to files holding them, so there is
    nothing to hide today; this is the one place to hide a value if that ever changes.
    """
    return config.model_dump(mode="json")
