"""Zones of the building, the presence sensors that watch them and the rooms' door contacts.

| kind          | hardware                                     | read through         |
| ------------- | -------------------------------------------- | -------------------- |
| `pir`         | PIR motion sensor (HC-SR501 and the like)    | a GPIO input         |
| `mmwave`      | 24 GHz radar's presence output (LD2410 OUT)  | a GPIO input         |
| `ld2410-uart` | HLK-LD2410 radar's report frames             | a serial port (UART) |
"""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field

from firmware_config.errors import ConfigError, Problem, show_value
from firmware_config.fields import FilePath, Pin, Seconds, Slug, Text, Whole

LD2410_BAUDS: Final = (9600, 19200, 38400, 57600, 115200, 230400, 256000, 460800)


def check_baud(value: int) -> int:
    """Accept a baud rate the LD2410 can be set to."""
    if value not in LD2410_BAUDS:
        raise ConfigError(
            [
                Problem(
                    "",
                    show_value(value),
                    "the LD2410 does not speak at this baud rate",
                    "use 256000 (the radar's factory setting) or the rate set with its app: "
                    + ", ".join(map(str, LD2410_BAUDS)),
                )
            ]
        )
    return value


class ZoneConfig(BaseModel):
    """A part of the building that doors join and sensors watch."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Slug = Field(description="Zone id, unique on this device.", examples=["staff-area"])
    name: Text = Field(
        description="Name shown to security staff; Japanese is fine.",
        examples=["執務エリア", "Staff area"],
    )
    kind: Literal["area", "booth", "meeting-room", "stairway"] = Field(
        description="What the zone is; booths and meeting rooms report occupied or vacant."
    )
    capacity: Whole | None = Field(
        default=None,
        ge=1,
        le=100_000,
        description=(
            "Most people allowed in at once; omit for no limit. The device's head count moves "
            "with each card crossing and each exit-button opening (one person each)."
        ),
    )
    anti_passback: Literal["off", "soft", "hard"] = Field(
        default="off",
        description=(
            'Entering twice without leaving: "off" allows it, "soft" allows it and raises '
            'an alarm, "hard" refuses the card.'
        ),
    )
    anti_passback_forgive_at: datetime.time | None = Field(
        default=None,
        description=(
            "Local time of day when everyone's position in this zone is forgotten, so a "
            'missed exit does not lock a person out the next day: 03:00:00 or "03:00".'
        ),
    )
    anti_passback_offline: Literal["hard", "soft"] = Field(
        default="hard",
        description=(
            "What the zone does while the device cannot hear its peers (the other gates of "
            'the zone, through the broker) for over 10 s: "hard" keeps refusing on local '
            'knowledge only; "soft" grants what anti-passback would refuse, marks it '
            "anti_passback_violation and raises anti_passback_degraded while cut off."
        ),
    )


class _GpioPresence(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Slug = Field(description="Sensor id, unique on this device.", examples=["booth-1-pir"])
    pin: Pin = Field(description="BCM GPIO number of the sensor output.")
    zone: Text = Field(description="Id of the zone the sensor watches.")
    occupied_when: Literal["high", "low"] = Field(
        default="high", description="Input level that means someone is there."
    )
    pull: Literal["up", "down", "none"] = Field(
        default="down", description='Internal pull resistor; "none" if the sensor drives the line.'
    )


class PirPresence(_GpioPresence):
    """A PIR (passive infrared) sensor on a GPIO input: it sees movement only."""

    kind: Literal["pir"] = Field(
        default="pir",
        description=(
            "PIR motion sensor (the default): its output drops while a person sits still, "
            "so the hold is long."
        ),
    )
    hold_s: Seconds = Field(
        default=60,
        ge=0,
        le=86_400,
        description="The zone reads vacant only after no presence for this many seconds.",
    )


class MmwavePresence(_GpioPresence):
    """A 24 GHz radar's presence output (the HLK-LD2410's OUT pin) on a GPIO input."""

    kind: Literal["mmwave"] = Field(
        description=(
            "mmWave radar output pin (HLK-LD2410 OUT): it stays on for a person sitting "
            "still (the radar sees breathing), so the hold is short."
        ),
    )
    hold_s: Seconds = Field(
        default=10,
        ge=0,
        le=86_400,
        description="The zone reads vacant only after no presence for this many seconds.",
    )


class Ld2410Presence(BaseModel):
    """An HLK-LD2410 radar read over its serial port: distance and energy per target."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["ld2410-uart"] = Field(description="HLK-LD2410 radar on a serial port (UART).")
    id: Slug = Field(description="Sensor id, unique on this device.", examples=["booth-1-radar"])
    zone: Text = Field(description="Id of the zone the sensor watches.")
    port: FilePath = Field(
        default=Path("/dev/serial0"),
        description=(
            'Serial device: "/dev/serial0" is the Pi\'s GPIO14/15 UART (disable the serial '
            "console first), or a USB adapter under /dev/serial/by-id/."
        ),
    )
    baud: Annotated[Whole, AfterValidator(check_baud)] = Field(
        default=256000,
        description=(
            "Baud rate the radar is set to (256000 from the factory): one of "
            + ", ".join(map(str, LD2410_BAUDS))
            + "."
        ),
        json_schema_extra={"enum": list(LD2410_BAUDS)},
    )
    hold_s: Seconds = Field(
        default=10,
        ge=0,
        le=86_400,
        description="The zone reads vacant only after no presence for this many seconds.",
    )
    max_gate: Whole = Field(
        default=3,
        ge=0,
        le=8,
        description=(
            "Farthest distance gate that counts, 0.75 m each: a target farther than "
            "max_gate x 0.75 m (outside the booth, through its wall) is ignored. The default "
            "3 (2.25 m) suits a booth; a meeting room needs its own depth, up to 8 (6 m)."
        ),
    )
    moving_energy_min: Whole = Field(
        default=0,
        ge=0,
        le=100,
        description="Least energy (0-100) of a moving target that counts as presence.",
    )
    still_energy_min: Whole = Field(
        default=0,
        ge=0,
        le=100,
        description="Least energy (0-100) of a still target that counts as presence.",
    )


PresenceConfig = Annotated[PirPresence | MmwavePresence | Ld2410Presence, Discriminator("kind")]
"""A presence sensor; `kind` picks the hardware ("pir" when omitted)."""

GpioPresence = PirPresence | MmwavePresence
"""A presence sensor read on a GPIO input."""


class RoomDoorConfig(BaseModel):
    """The door contact of a booth or meeting room with no lock.

    Presence seen after the room's doors all closed keeps the room occupied until a door
    opens again, whatever the sensors' hold says: a person sitting still in a shut booth is
    not lost.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Slug = Field(description="Door id, unique on this device.", examples=["booth-1-door"])
    zone: Text = Field(description="Id of the booth or meeting room the door closes.")
    pin: Pin = Field(description="BCM GPIO number of the door contact.")
    open_when: Literal["high", "low"] = Field(
        default="high",
        description=(
            "Input level that means the door is open; a contact closed by the shut door "
            'pulls the pin low with pull = "up", so an open door reads high.'
        ),
    )
    pull: Literal["up", "down", "none"] = Field(
        default="up", description='Internal pull resistor; "none" if the contact drives the line.'
    )
    bounce_ms: Whole = Field(
        default=20, ge=0, le=1000, description="Ignore changes shorter than this (milliseconds)."
    )
    latch_after_s: Seconds = Field(
        default=10,
        ge=0,
        le=600,
        description=(
            "Presence still seen this many seconds after the door closes latches the room "
            "(longer than the sensor's own output stays on after someone walks out)."
        ),
    )
    settle_s: Seconds = Field(
        default=300,
        ge=0,
        le=3600,
        description=(
            "A room occupied when its door closes stays occupied this many seconds while "
            "the presence that latches it is awaited (a PIR misses a person who sits still "
            "at once); with no presence at all in that time the room may read vacant."
        ),
    )
