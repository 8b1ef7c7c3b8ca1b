"""One invariant of the day's report: what was checked, whether it held, and the evidence."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Check:
    """One invariant of the report: what was checked, whether it held, and the evidence."""

    name: str
    ok: bool
    detail: str
