"""Read one device message under limits: a payload the central log can always store.

Everything a device sends may be hostile. A payload is accepted only if it is UTF-8 text
(no lone surrogates), JSON with no NaN or Infinity, whole numbers within ±2^53 (what JSON
readers agree on; SQLite takes them as 64-bit), nested at most `MAX_DEPTH` deep, with at most
`MAX_NODES` values, keys and strings of bounded length and no control characters in keys.
Anything else raises `Refused` naming the limit; nothing here raises another exception.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

from edge.errors import EdgeError

MAX_PAYLOAD: Final = 16 * 1024  # bytes; the agent's largest event is under 2 KiB
MAX_DEPTH: Final = 8  # the agent's events are flat; status nests two levels
MAX_NODES: Final = 512  # values in one message
MAX_STRING: Final = 4096  # characters in one string value (a `detail` of 300 fits)
MAX_KEY: Final = 64  # characters in one key
MAX_INT: Final = 2**53  # whole numbers in (-2^53, 2^53)
_MAX_INT_DIGITS: Final = 17
_SURROGATE_ESCAPE: Final = re.compile(r"\\u[dD][89abcdefABCDEF]")


class Refused(EdgeError, ValueError):
    """A message is refused; the message is the reason kept for the guards."""


def _parse_int(text: str) -> int:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        raise Refused("a whole number is outside ±2^53")
    value = int(text)
    if not -MAX_INT < value < MAX_INT:
        raise Refused("a whole number is outside ±2^53")
    return value


def _parse_float(text: str) -> float:
    if len(text) > 64:
        raise Refused("a number is written with more than 64 characters")
    value = float(text)
    if not math.isfinite(value):
        raise Refused("a number is too large to be finite")
    return value


def _parse_constant(text: str) -> Any:
    raise Refused(f"{text} is not JSON")


def parse(payload: bytes) -> Any:
    """Return the payload's JSON value, or raise Refused saying which limit it broke."""
    if len(payload) > MAX_PAYLOAD:
        raise Refused(f"larger than {MAX_PAYLOAD} bytes")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Refused("not UTF-8 text") from None
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except Refused:
        raise
    except RecursionError:
        raise Refused(f"nested deeper than {MAX_DEPTH}") from None
    except (ValueError, OverflowError):
        raise Refused("not JSON") from None
    # A lone surrogate can come only from a \uD800-\uDFFF escape (UTF-8 text holds none).
    check(value, surrogates=_SURROGATE_ESCAPE.search(text) is not None)
    return value


def check(value: Any, surrogates: bool = True) -> None:
    """Raise Refused unless a parsed JSON value keeps within the limits (no recursion).

    `surrogates=False` skips looking for lone surrogates: `parse` knows when the text had
    no escape that could make one.
    """
    nodes = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise Refused(f"nested deeper than {MAX_DEPTH}")
            nodes += len(item)
            for key, inner in item.items():
                if len(key) > MAX_KEY:
                    raise Refused(f"a key is longer than {MAX_KEY} characters")
                if not key.isprintable():
                    raise Refused("a key holds control characters")
                if surrogates:
                    _text(key, "a key")
                _inner(inner, depth, stack, surrogates)
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise Refused(f"nested deeper than {MAX_DEPTH}")
            nodes += len(item)
            for inner in item:
                _inner(inner, depth, stack, surrogates)
        else:
            nodes += 1
            _inner(item, depth - 1, stack, surrogates)
        if nodes > MAX_NODES:
            raise Refused(f"more than {MAX_NODES} values")


def _inner(item: Any, depth: int, stack: list[tuple[Any, int]], surrogates: bool) -> None:
    if isinstance(item, str):
        if len(item) > MAX_STRING:
            raise Refused(f"a string is longer than {MAX_STRING} characters")
        if surrogates:
            _text(item, "a string")
    elif isinstance(item, dict | list):
        stack.append((item, depth + 1))


def _text(value: str, what: str) -> None:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise Refused(f"{what} holds a lone UTF-16 surrogate") from None
