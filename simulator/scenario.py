"""A scenario file: which day, how long, and the faults to throw at the building.

date = "working-day"           # today or the next working day; or "2026-12-01"
start = "06:30"
end = "21:30"
seed = 1

[[faults]]
at = "10:00"
kind = "broker_outage"
minutes = 5
"""

from __future__ import annotations

import datetime as dt
import tomllib
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge.calendar import site_calendar
from edge.errors import EdgeError

SCENARIOS = Path(__file__).resolve().parent / "scenarios"
DEFAULT_SCENARIO = SCENARIOS / "demo-day.toml"

FaultKind = Literal[
    "broker_outage",
    "reader_unplugged",
    "door_forced",
    "door_held_open",
    "fire",
    "lockdown",
    "lost_card_used",
    "cloned_card",
    "duress",
    "power_cut",
    "clock_unsynchronised",
    "handed_back_card",
    "gate_partition",
]
FAULT_KINDS: tuple[str, ...] = FaultKind.__args__  # type: ignore[attr-defined]


class ScenarioError(EdgeError, ValueError):
    """A scenario file is unusable; the message names the field and the fix."""


class Fault(BaseModel):
    """One fault, at a local time of the day."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: time = Field(description="Local time, e.g. 10:00.")
    kind: FaultKind
    minutes: float = Field(5.0, gt=0, le=600, description="How long it lasts.")
    door: str | None = Field(None, description="door_forced, door_held_open: which door.")
    reader: str | None = Field(None, description="reader_unplugged: which reader.")
    device: str | None = Field(None, description="power_cut, clock_unsynchronised: which Pi.")
    gate: str | None = Field(
        None,
        description="lost_card_used, cloned_card, handed_back_card: where the card is tried; "
        "duress: where a guard is forced to open (its entrance reader must have a PIN keypad); "
        "gate_partition: the gate whose network path to the broker is cut.",
    )
    open_s: float = Field(
        8.0, gt=0, le=36000, description="door_forced: how long the leaf is left open (s)."
    )


class Scenario(BaseModel):
    """The day to play."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    date: str = Field("working-day", description='"working-day" (today or the next) or YYYY-MM-DD.')
    start: time = time(6, 30)
    end: time = time(21, 30)
    seed: int = 1
    staff: int | None = Field(None, ge=1, description="Override the building's staff count.")
    visitors: int | None = Field(None, ge=0)
    faults: list[Fault] = Field(default_factory=list)
    rooms: bool = Field(
        True,
        description="Run the rooms service and its calendars (people use the rooms either "
        "way); false for a day about the security line only.",
    )

    def day(self, timezone: str, today: dt.date | None = None) -> dt.date:
        """Return the simulated date (by default today, or the next working day)."""
        if self.date != "working-day":
            try:
                return dt.date.fromisoformat(self.date)
            except ValueError:
                raise ScenarioError(
                    f'date: {self.date!r} is not "working-day" or a date like 2026-12-01'
                ) from None
        calendar = site_calendar()
        day = today or datetime.now(ZoneInfo(timezone)).date()
        while day.weekday() >= 5 or calendar.is_holiday(day):
            day += timedelta(days=1)
        return day

    def bounds(self, timezone: str, today: dt.date | None = None) -> tuple[datetime, float]:
        """Return the start (aware, local) and the day's length in seconds."""
        start = datetime.combine(self.day(timezone, today), self.start, ZoneInfo(timezone))
        end = datetime.combine(start.date(), self.end, ZoneInfo(timezone))
        if end <= start:
            raise ScenarioError(f"end {self.end} is not after start {self.start}")
        return start, (end - start).total_seconds()


def load_scenario(path: Path = DEFAULT_SCENARIO) -> Scenario:
    """Read a scenario file; every problem named with its field and a fix."""
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read it ({error.strerror})") from None
    except tomllib.TOMLDecodeError as error:
        raise ScenarioError(f"{path}: not valid TOML: {error}") from None
    try:
        return Scenario.model_validate(data)
    except ValidationError as error:
        lines = [
            f"{path}: {'.'.join(str(p) for p in e['loc'])}: {e['msg']} (got {e.get('input')!r})"
            for e in error.errors()
        ]
        kinds = ", ".join(FAULT_KINDS)
        raise ScenarioError("\n".join([*lines, f"fault kinds: {kinds}"])) from None
