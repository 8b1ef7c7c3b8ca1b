"""Card readers, one model per kind of hardware, and the indicators beside them.

| kind   | hardware                                             | picked by                  |
| ------ | ---------------------------------------------------- | -------------------------- |
| `pcsc` | PC/SC readers: Sony RC-S300/S380 in PC/SC mode, ACS  | substring of the PC/SC name |
| `nfc`  | nfcpy readers: RC-S380 over USB, PN532 over serial   | nfcpy path (`usb:…`)       |
| `sim`  | the simulator's reader                               | its id                     |

A reader may have a PIN keypad beside it (`keypad`): a 3x4 or 4x4 membrane matrix on GPIO
pins, or a USB numeric keypad (a HID keyboard read as Linux input events).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, Self

from pydantic import BaseModel, ConfigDict, Discriminator, Field, model_validator

from firmware_config.errors import MISSING, Problem, raise_problems
from firmware_config.fields import FilePath, NfcPath, Pin, Seconds, Slug, Text, Whole

INDICATOR_PINS: Final = ("green_pin", "red_pin", "buzzer_pin")


class MatrixKeypad(BaseModel):
    """A membrane keypad scanned on GPIO: rows driven, columns read with pull-ups."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["matrix"] = Field(description="Membrane keypad wired to GPIO pins.")
    rows: tuple[Pin, ...] = Field(
        min_length=4,
        max_length=4,
        description="BCM GPIO numbers of the 4 row lines, top row first (outputs).",
        examples=[[5, 6, 13, 19]],
    )
    cols: tuple[Pin, ...] = Field(
        min_length=3,
        max_length=4,
        description=(
            "BCM GPIO numbers of the 3 (keys 1-9, *, 0, #) or 4 (with A-D) column lines, "
            "left first (inputs with pull-ups)."
        ),
        examples=[[12, 16, 20]],
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        pins = [*self.rows, *self.cols]
        twice = sorted({p for p in pins if pins.count(p) > 1})
        if twice:
            raise_problems(
                [
                    Problem(
                        "cols",
                        ", ".join(map(str, twice)),
                        f"GPIO {twice[0]} is used by two lines of the keypad",
                        "give each row and column its own pin",
                    )
                ]
            )
        return self


class UsbKeypad(BaseModel):
    """A USB numeric keypad: a HID keyboard read as Linux input events."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["usb"] = Field(description="USB numeric keypad (HID keyboard).")
    device: FilePath = Field(
        description=(
            "Its input event device; use the stable name under /dev/input/by-id/ "
            "(`ls /dev/input/by-id/`), which survives replugging and reboots."
        ),
        examples=["/dev/input/by-id/usb-0c45_USB_Keypad-event-kbd"],
    )


KeypadConfig = Annotated[MatrixKeypad | UsbKeypad, Discriminator("kind")]
"""A PIN keypad beside a reader; `kind` picks the hardware."""


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
    keypad: KeypadConfig | None = Field(
        default=None,
        description="A PIN keypad beside the reader: staff key the PIN after the card, then #.",
    )
    pin: Literal["never", "always"] = Field(
        default="never",
        description=(
            '"always": every card granted here must then key its PIN (needs a keypad); '
            '"never": only cards of the groups the access rules mark as needing a PIN '
            "(`edge-provision rules require-pin`), and only if the reader has a keypad."
        ),
    )
    pin_timeout_s: Seconds = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Seconds after the card to key the PIN and press #; later is a denial.",
    )
    pin_attempts: Whole = Field(
        default=3,
        ge=1,
        le=10,
        description="Wrong PINs in a row for one card before the pin_attempts_exceeded alarm.",
    )
    pin_lockout_s: Seconds = Field(
        default=300.0,
        ge=0,
        le=86400,
        description=(
            "After pin_attempts wrong PINs, the card is refused (pin_locked_out) at every PIN "
            "reader of this device for this many seconds, without asking for its PIN; 0 turns "
            "the lockout off (the alarm still sounds)."
        ),
    )

    @model_validator(mode="after")
    def _check_pin(self) -> Self:
        if self.pin == "always" and self.keypad is None:
            raise_problems(
                [
                    Problem(
                        "pin",
                        '"always"',
                        "a reader that asks for a PIN needs a keypad",
                        'add keypad = {kind = "matrix", rows = [...], cols = [...]} or '
                        '{kind = "usb", device = "/dev/input/by-id/...-event-kbd"}, '
                        'or set pin = "never"',
                    )
                ]
            )
        return self


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
