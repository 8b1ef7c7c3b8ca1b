"""Zones of the building and the presence sensors that watch them."""

from __future__ import annotations

import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from firmware_config.fields import Pin, Seconds, Slug, Text, Whole


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


class PresenceConfig(BaseModel):
    """A presence sensor (PIR or microwave) on a GPIO input."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Slug = Field(description="Sensor id, unique on this device.", examples=["booth-1-pir"])
    pin: Pin = Field(description="BCM GPIO number of the sensor output.")
    zone: Text = Field(description="Id of the zone the sensor watches.")
    hold_s: Seconds = Field(
        default=60,
        ge=0,
        le=86_400,
        description="The zone reads vacant only after no presence for this many seconds.",
    )
    occupied_when: Literal["high", "low"] = Field(
        default="high", description="Input level that means someone is there."
    )
    pull: Literal["up", "down", "none"] = Field(
        default="down", description='Internal pull resistor; "none" if the sensor drives the line.'
    )
