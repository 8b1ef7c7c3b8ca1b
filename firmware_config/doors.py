"""A door and its wiring: lock relay, door contact, exit button, fire input."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final, Literal, Self, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, model_validator

from firmware_config.errors import Problem, number_text, raise_problems, show_value
from firmware_config.fields import Pin, Seconds, Slug, Text, Whole

HELD_OPEN_S: Final = 30.0
PRE_ALARM_S: Final = 10.0
_PULL_DESCRIPTION: Final = "Internal pull resistor on the input."


class RelayConfig(BaseModel):
    """The relay that drives the lock."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pin: Pin = Field(description="BCM GPIO number driving the lock relay.")
    active_high: bool = Field(
        default=True,
        strict=True,
        description="true if a high output energises the relay; false for active-low boards.",
    )


class ContactConfig(BaseModel):
    """The door contact (reed switch) that tells open from closed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pin: Pin = Field(description="BCM GPIO number of the door contact.")
    open_when: Literal["high", "low"] = Field(
        default="high", description="Input level that means the door is open."
    )
    pull: Literal["up", "down", "none"] = Field(default="up", description=_PULL_DESCRIPTION)
    bounce_ms: Whole = Field(
        default=20, ge=0, le=1000, description="Ignore changes shorter than this (milliseconds)."
    )


class ButtonConfig(BaseModel):
    """The request-to-exit button inside the door. The door opening after a press counts as
    one person leaving the door's inside zone for the outside zone (event `button_exit`):
    head counts include button exits, one person per exit-button opening."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pin: Pin = Field(description="BCM GPIO number of the exit button.")
    pressed_when: Literal["high", "low"] = Field(
        default="low", description="Input level that means the button is pressed."
    )
    pull: Literal["up", "down", "none"] = Field(default="up", description=_PULL_DESCRIPTION)
    bounce_ms: Whole = Field(
        default=50, ge=0, le=1000, description="Ignore presses shorter than this (milliseconds)."
    )


class FireInputConfig(BaseModel):
    """The fire alarm panel's output: while any fire input signals, every fail-safe door
    of the device is released (fail-secure doors keep their mechanical egress)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pin: Pin = Field(description="BCM GPIO number of the fire alarm input.")
    alarm_when: Literal["high", "low"] = Field(
        default="high",
        description=(
            "Input level that means fire. Wire the panel's contact normally closed with "
            "the pull-up, so a cut wire reads as fire."
        ),
    )
    pull: Literal["up", "down", "none"] = Field(default="up", description=_PULL_DESCRIPTION)
    bounce_ms: Whole = Field(
        default=100, ge=0, le=1000, description="Ignore changes shorter than this (milliseconds)."
    )


class DoorConfig(BaseModel):
    """A door with an electric lock between two zones."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Slug = Field(description="Door id, unique on this device.", examples=["gate-east"])
    name: Text = Field(default="", description="Name shown to security staff; Japanese is fine.")
    outside_zone: Text = Field(
        description="Zone id on the outside: a person passing with an `in` reader leaves it."
    )
    inside_zone: Text = Field(
        description="Zone id on the inside: a person passing with an `in` reader enters it."
    )
    fail: Literal["safe", "secure"] = Field(
        description=(
            'What the lock does without power. "safe": it releases (maglock, fail-safe '
            'strike; stairways and escape routes). "secure": it stays locked (fail-secure '
            "strike; people still leave by the inside handle). Required: there is no default."
        ),
    )
    relay: RelayConfig = Field(description="The lock relay.")
    unlock_s: Seconds = Field(
        default=5,
        ge=0.5,
        le=60,
        description="Seconds the lock stays released after a granted card.",
    )
    held_open_s: Seconds = Field(
        default=HELD_OPEN_S,
        ge=1,
        le=3600,
        description="Seconds the door may stand open before the held-open alarm.",
    )
    pre_alarm_s: Seconds = Field(
        default=PRE_ALARM_S,
        ge=0,
        le=3600,
        description=(
            "Seconds before the held-open alarm that the warning beep starts; "
            "less than held_open_s."
        ),
    )
    contact: ContactConfig | None = Field(
        default=None, description="Door contact; without it open, held-open and forced go unseen."
    )
    exit_button: ButtonConfig | None = Field(default=None, description="Request-to-exit button.")
    fire_input: FireInputConfig | None = Field(
        default=None, description="Fire alarm input that releases the door."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        raise_problems(door_rules(dict(self)))
        return self


def door_rules(door: Mapping[str, Any]) -> list[Problem]:
    """Check a door's fields against each other; skip values that are not usable."""
    problems = []
    outside, inside = door.get("outside_zone"), door.get("inside_zone")
    if isinstance(inside, str) and inside == outside:
        problems.append(
            Problem(
                "inside_zone",
                show_value(inside),
                "inside_zone is the same as outside_zone",
                "a door joins two different zones; set inside_zone to the zone a person "
                "enters when passing with an `in` reader",
            )
        )
    pre_alarm = door.get("pre_alarm_s", PRE_ALARM_S)
    held_open = door.get("held_open_s", HELD_OPEN_S)
    if _is_number(pre_alarm) and _is_number(held_open) and pre_alarm >= held_open:
        shown = show_value(pre_alarm) + ("" if "pre_alarm_s" in door else " (the default)")
        problems.append(
            Problem(
                "pre_alarm_s",
                shown,
                f"the warning beep must start before the held-open alarm "
                f"(held_open_s = {number_text(held_open)})",
                f"make pre_alarm_s less than held_open_s ({number_text(held_open)} seconds), "
                "or held_open_s longer",
            )
        )
    return problems


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
