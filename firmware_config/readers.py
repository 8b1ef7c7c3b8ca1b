"""Card readers, one model per kind of hardware, and the indicators beside them.

| kind   | hardware                                             | picked by                  |
| ------ | ---------------------------------------------------- | -------------------------- |
| `pcsc` | PC/SC readers: Sony RC-S300/S380 in PC/SC mode, ACS  | substring of the PC/SC name |
| `nfc`  | nfcpy readers: RC-S380 over USB, PN532 over serial   | nfcpy path (`usb:…`)       |
| `sim`  | the simulator's reader                               | its id                     |
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Discriminator, Field, model_validator

from firmware_config.errors import MISSING, Problem, raise_problems
from firmware_config.fields import NfcPath, Pin, Seconds, Slug, Text

INDICATOR_PINS: Final = ("green_pin", "red_pin", "buzzer_pin")


class _ReaderBase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Slug = Field(description="Reader id, unique on this device.", examples=["gate-east-in"])
    door: Text = Field(description="Id of the door this reader opens.")
    direction: Literal["in", "out"] = Field(
        description=(
            '"in": a person passing goes from the door\'s outside_zone to its inside_zone; '
            '"out": the other way.'
        ),
    )
    security: Literal["uid", "authenticated"] = Field(
        default="uid",
        description=(
            '"uid": any card with a known id; "authenticated": only cards whose read was '
            "cryptographically authenticated (FeliCa Lite-S MAC, DESFire). Card ids alone "
            "can be copied."
        ),
    )
    debounce_s: Seconds = Field(
        default=1.5,
        ge=0,
        le=60,
        description="The same card again within this many seconds counts as one tap.",
    )


class PcscReader(_ReaderBase):
    """A PC/SC reader, found through pcscd by its name."""

    kind: Literal["pcsc"] = Field(description="PC/SC reader through pcscd.")
    match: Text = Field(
        min_length=1,
        description=(
            "Part of the PC/SC reader name that picks this reader (case-sensitive); "
            "list names with `pcsc_scan`."
        ),
        examples=["SONY FeliCa RC-S300/P 00 00"],
    )


class NfcReader(_ReaderBase):
    """A reader driven by nfcpy."""

    kind: Literal["nfc"] = Field(description="Reader driven by nfcpy.")
    path: NfcPath = Field(
        description='nfcpy device path: "usb:054c:06c3", "tty:USB0:pn532", "udp:127.0.0.1:50000".',
        examples=["usb:054c:06c3"],
    )


class SimReader(_ReaderBase):
    """The simulator's reader: cards are presented by the simulator or by tests."""

    kind: Literal["sim"] = Field(description="Simulated reader.")


ReaderConfig = Annotated[PcscReader | NfcReader | SimReader, Discriminator("kind")]
"""A card reader; `kind` picks the hardware."""


class IndicatorConfig(BaseModel):
    """LEDs and a buzzer that show a reader's decisions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Slug = Field(description="Indicator id, unique on this device.", examples=["gate-east-in"])
    reader: Text = Field(description="Id of the reader whose decisions this shows.")
    green_pin: Pin | None = Field(default=None, description="BCM GPIO number of the green LED.")
    red_pin: Pin | None = Field(default=None, description="BCM GPIO number of the red LED.")
    buzzer_pin: Pin | None = Field(default=None, description="BCM GPIO number of the buzzer.")
    active_high: bool = Field(
        default=True, strict=True, description="true if a high output turns them on."
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        raise_problems(indicator_rules(dict(self)))
        return self


def indicator_rules(indicator: Mapping[str, Any]) -> list[Problem]:
    """Check that an indicator drives at least one output."""
    if any(indicator.get(name) is not None for name in INDICATOR_PINS):
        return []
    return [
        Problem(
            "green_pin",
            MISSING,
            "an indicator needs at least one output",
            "set green_pin, red_pin or buzzer_pin (or remove the indicator)",
        )
    ]
