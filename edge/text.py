"""Text fit for a terminal: names, ids and messages with every control character removed.

Names come from HR files, fields from devices, paths from operators; any of them may hold
an escape sequence (ESC, CSI, OSC), NUL, a C1 control or a bidirectional override that a
terminal would obey. Every command line prints such values through these functions.
"""

from __future__ import annotations

import re
from typing import Final

# C0 controls and DEL, C1 controls, and the bidirectional marks, embeddings, overrides and
# isolates (U+061C, U+200E-F, U+202A-E, U+2066-9) that make a terminal show text out of order.
_BIDI: Final = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_ONE_LINE: Final = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_LINES: Final = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_BIDI}]")


def terminal(value: object) -> str:
    """Return `value` as one line with every control character removed."""
    return _ONE_LINE.sub("", "" if value is None else str(value))


def terminal_lines(value: object) -> str:
    """Return `value` with every control character but the line break removed."""
    return _LINES.sub("", "" if value is None else str(value))
