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
from firmware_config.errors import MISSING, ConfigError, Problem
from firmware_config.model import DeviceConfig
from firmware_config.translate import problems_from

_SEE: Final = "see firmware_config/examples/"
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
        data = path.read_bytes()
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
    return validate_config(data, source)


def validate_config(data: Mapping[str, Any], source: str = "<data>") -> DeviceConfig:
    """Validate configuration data (parsed TOML); raise ConfigError listing every problem."""
    try:
        return DeviceConfig.model_validate(data)
    except ValidationError as error:
        # Pydantic skips a model's own checks when one of its fields failed; the raw
        # checks still see the rest. ConfigError de-duplicates what both found.
        raise ConfigError([*problems_from(error), *check_config(data)], source) from error


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
