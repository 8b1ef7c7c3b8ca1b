"""Turn pydantic's validation errors into problems an installer can act on.

Pydantic names an error by type and location, `("readers", 0, "pcsc", "door")`, with union
tags inside. This module writes the path as `readers[0].door`, says what is wrong in plain
words and how to fix it, using the models' own field names, choices, bounds and descriptions.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from typing import Final

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from firmware_config.errors import (
    MISSING,
    ConfigError,
    Problem,
    join_path,
    show_value,
)
from firmware_config.places import (
    Place,
    choices,
    is_model,
    locate,
    model_fields_of,
    models_in,
    unwrap,
)

_SEE: Final = "see firmware_config/examples/"
_SCHEMA: Final = f"{_SEE} and `edge-agent schema`"
_SECRET_KEYS: Final = frozenset({"password", "passwd", "pass", "secret", "token"})


_Handler = Callable[[Place, ErrorDetails], tuple[str, str]]


def problems_from(error: ValidationError) -> list[Problem]:
    """Translate every error in a ValidationError of DeviceConfig."""
    return [problem for details in error.errors() for problem in _translate(details)]


def _translate(details: ErrorDetails) -> list[Problem]:
    place = locate(details["loc"])
    cause = details.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):  # raised by our own validators, paths relative
        return [problem.within(place.path) for problem in cause.problems]
    kind = details["type"]
    if kind.startswith("union_tag"):
        return [_kind_problem(place, details)]
    handler = _HANDLERS.get(kind)
    if handler is None:
        message, fix = details["msg"].removeprefix("Value error, "), _SCHEMA
    else:
        message, fix = handler(place, details)
    if kind == "missing":
        shown = MISSING
    elif kind == "extra_forbidden" and place.key in _SECRET_KEYS:
        shown = "(hidden)"  # never echo a secret into logs or a terminal
    else:
        shown = show_value(details["input"])
    return [Problem(place.path, shown, message, fix)]


def _listed(choices: tuple[str, ...]) -> str:
    return ", ".join(show_value(choice) for choice in choices)


def _kind_problem(place: Place, details: ErrorDetails) -> Problem:
    tags = tuple(tag for arm in models_in(place.node) for tag in choices(arm.model_fields["kind"]))
    path = join_path(place.path, "kind")
    if details["type"] == "union_tag_not_found":
        return Problem(path, MISSING, "required", f"add kind = …, one of {_listed(tags)}")
    tag = details.get("ctx", {}).get("tag")
    return Problem(path, show_value(tag), "unknown kind", f"kind must be one of {_listed(tags)}")


def _missing(place: Place, _: ErrorDetails) -> tuple[str, str]:
    if is_model(place.node):
        return "required table", f"add a [{place.table}] table ({_SEE})"
    description = place.field.description if place.field else None
    message = f"required: {description.rstrip('.')}" if description else "required"
    allowed = choices(place.field)
    with_choices = f" with one of: {_listed(allowed)}" if allowed else ""
    return message, f"add `{place.key} = …`{with_choices} ({_SEE})"


def _unknown_key(place: Place, _: ErrorDetails) -> tuple[str, str]:
    key = place.key
    if key in _SECRET_KEYS:
        return (
            "secrets are never written in the configuration file",
            "put the password in a file readable only by the agent (chmod 600) and set "
            'password_file to its path, e.g. password_file = "/etc/edge/mqtt-password"',
        )
    allowed = list(place.owner.model_fields) if place.owner else []
    homes = [
        f"[{join_path(place.parent_table, name)}]"
        for name, field in (place.owner.model_fields.items() if place.owner else ())
        if key in model_fields_of(field)
    ]
    if homes:
        return "unknown key here", f"`{key}` belongs in {' or '.join(homes)}"
    kinds = tuple(
        choices(arm.model_fields["kind"])[0] for arm in place.siblings if key in arm.model_fields
    )
    if kinds:
        return "unknown key for this kind", f"`{key}` is only for kind = {_listed(kinds)}"
    close = difflib.get_close_matches(key, allowed, n=1)
    if close:
        return "unknown key", f"did you mean `{close[0]}`?"
    return "unknown key", f"remove it; allowed keys here: {', '.join(allowed)}"


def _literal(place: Place, details: ErrorDetails) -> tuple[str, str]:
    value = details["input"]
    allowed = choices(place.field)
    fix = f"use one of: {_listed(allowed)}"
    text = value[:100] if isinstance(value, str) else show_value(value)
    close = difflib.get_close_matches(text, allowed, n=1) if allowed else []
    return "not an allowed value", f"{fix}; did you mean {show_value(close[0])}?" if close else fix


def _unit(place: Place) -> str:
    if place.key.endswith("_ms"):
        return " milliseconds"
    return " seconds" if place.key.endswith("_s") else ""


def _bounds(place: Place, details: ErrorDetails) -> tuple[str, str]:
    unit = _unit(place)
    ctx = details.get("ctx", {})
    broken = next(
        f"must be {words} {ctx[name]:g}{unit}"
        for name, words in _BOUND_WORDS.items()
        if name in ctx
    )
    fix = _range_fix(place, "a number")
    if fix.startswith("use a value from"):
        return broken, fix
    return broken, f"use a value that is {broken.removeprefix('must be ')}"


_BOUND_WORDS: Final = {"ge": "at least", "gt": "more than", "le": "at most", "lt": "less than"}


def _number(place: Place, details: ErrorDetails) -> tuple[str, str]:
    whole = place.field is not None and unwrap(place.field.annotation) is int
    what = "a whole number" if whole else "a number"
    unit = _unit(place)
    value = details["input"]
    if isinstance(value, str) and _looks_numeric(value):
        return f"must be {what}, not text", f"remove the quotes: {place.key} = {value.strip()}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be {what}", "write an ordinary number, not inf or nan"
    if isinstance(value, int | float) and not isinstance(value, bool) and abs(value) > 2**53:
        return f"far too large for {what}{unit and ' of' + unit}", _range_fix(place, what)
    if isinstance(value, float) and whole and value.is_integer():
        return f"must be {what}", f"write it without the decimal point: {place.key} = {value:.0f}"
    if isinstance(value, float) and whole:
        return f"must be {what}", f"round it, e.g. {place.key} = {round(value)}"
    return f"must be {what}{unit and ' of' + unit}", f"write {what} without quotes"


def _range_fix(place: Place, what: str) -> str:
    metadata = place.field.metadata if place.field else []
    low = next((m.ge for m in metadata if getattr(m, "ge", None) is not None), None)
    high = next((m.le for m in metadata if getattr(m, "le", None) is not None), None)
    if low is not None and high is not None:
        return f"use a value from {low:g} to {high:g}{_unit(place)}"
    return f"write {what} of a few digits"


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _fixed(message: str, fix: str) -> _Handler:
    return lambda place, details: (message, fix)


def _too_long(place: Place, details: ErrorDetails) -> tuple[str, str]:
    ctx = details.get("ctx", {})
    most = ctx.get("max_length")
    if details["type"] == "string_too_long":
        return f"longer than {most} characters", f"shorten it to at most {most} characters"
    noun = "entries" if place.key in _PLURAL_TABLES else "items"
    found = ctx.get("actual_length")
    return f"{found} {noun}, more than one device can use", f"list at most {most} {noun}"


_PLURAL_TABLES: Final = frozenset({"zones", "doors", "readers", "presence", "indicators"})


def _list(place: Place, details: ErrorDetails) -> tuple[str, str]:
    if isinstance(details["input"], dict):
        return "one table where a list is expected", f"write [[{place.table}]] for each entry"
    return "must be a list", f"write a [[{place.table}]] table for each entry"


def _table(place: Place, _: ErrorDetails) -> tuple[str, str]:
    header = f"[[{place.table}]]" if place.path.endswith("]") else f"[{place.table}]"
    return "must be a table", f"write it as a {header} table with its keys below it"


def _text(place: Place, _: ErrorDetails) -> tuple[str, str]:
    return "must be text", f'write it in double quotes, e.g. {place.key} = "…"'


_TIME_FIX: Final = 'write a TOML local time such as 03:00:00, or "03:00"'
_BOOL_FIX: Final = "write true or false without quotes"
_HANDLERS: Final[dict[str, _Handler]] = {
    "missing": _missing,
    "extra_forbidden": _unknown_key,
    "literal_error": _literal,
    "greater_than": _bounds,
    "greater_than_equal": _bounds,
    "less_than": _bounds,
    "less_than_equal": _bounds,
    "int_type": _number,
    "int_parsing": _number,
    "int_from_float": _number,
    "float_type": _number,
    "float_parsing": _number,
    "finite_number": _fixed("must be a finite number", "write an ordinary number, not inf or nan"),
    "bool_type": _fixed("must be true or false", _BOOL_FIX),
    "bool_parsing": _fixed("must be true or false", _BOOL_FIX),
    "string_type": _text,
    "string_too_short": _fixed("must not be empty", "write a value between the quotes"),
    "string_too_long": _too_long,
    "too_long": _too_long,
    "tuple_type": _list,
    "list_type": _list,
    "model_type": _table,
    "model_attributes_type": _table,
    "dict_type": _table,
    "time_type": _fixed("not a time of day", _TIME_FIX),
    "time_parsing": _fixed("not a time of day", _TIME_FIX),
    "path_type": _fixed(
        "must be a file path", 'write the path in double quotes, e.g. "/etc/edge/ca.crt"'
    ),
}
