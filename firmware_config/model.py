"""The device configuration: one frozen model tree, validated once at start.

The parts live in their own modules (deployment, zones, doors, readers); every name the rest
of the project uses is importable from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from firmware_config.checks import check_config, pin_uses
from firmware_config.deployment import DeviceInfo, MqttConfig, SiteConfig, StoreConfig, TlsConfig
from firmware_config.doors import (
    ButtonConfig,
    ContactConfig,
    DoorConfig,
    FireInputConfig,
    RelayConfig,
)
from firmware_config.errors import raise_problems
from firmware_config.readers import (
    IndicatorConfig,
    NfcReader,
    PcscReader,
    ReaderConfig,
    SimReader,
)
from firmware_config.zones import (
    GpioPresence,
    Ld2410Presence,
    MmwavePresence,
    PirPresence,
    PresenceConfig,
    RoomDoorConfig,
    ZoneConfig,
)

# A Raspberry Pi has 26 usable GPIO pins; each door needs at least its relay's.
MAX_ZONES: Final = 64
MAX_DOORS: Final = 26
MAX_READERS: Final = 52
MAX_SENSORS: Final = 26
MAX_INDICATORS: Final = 52
MAX_ROOM_DOORS: Final = 26

__all__ = [
    "ButtonConfig",
    "ContactConfig",
    "DeviceConfig",
    "DeviceInfo",
    "DoorConfig",
    "FireInputConfig",
    "GpioPresence",
    "IndicatorConfig",
    "Ld2410Presence",
    "MmwavePresence",
    "MqttConfig",
    "NfcReader",
    "PcscReader",
    "PirPresence",
    "PresenceConfig",
    "ReaderConfig",
    "RelayConfig",
    "RoomDoorConfig",
    "SimReader",
    "SiteConfig",
    "StoreConfig",
    "TlsConfig",
    "ZoneConfig",
]


class DeviceConfig(BaseModel):
    """Configuration of one edge device: a gate, a card door or a sensor node.

    Written in TOML; `edge-agent check --config FILE` validates a file and lists every
    mistake with its fix. See firmware_config/examples/ for one file per role.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    site: SiteConfig = Field(description="The site this device belongs to.")
    device: DeviceInfo = Field(description="This device's id and role.")
    mqtt: MqttConfig = Field(default=MqttConfig(), description="The MQTT broker.")
    store: StoreConfig = Field(default=StoreConfig(), description="The local SQLite store.")
    zones: tuple[ZoneConfig, ...] = Field(
        default=(),
        max_length=MAX_ZONES,
        description="Zones that doors join and presence sensors watch: [[zones]].",
    )
    doors: tuple[DoorConfig, ...] = Field(
        default=(),
        max_length=MAX_DOORS,
        description="Doors with electric locks driven by this device: [[doors]].",
    )
    readers: tuple[ReaderConfig, ...] = Field(
        default=(),
        max_length=MAX_READERS,
        description="Card readers; `kind` picks the hardware: [[readers]].",
    )
    presence: tuple[PresenceConfig, ...] = Field(
        default=(),
        max_length=MAX_SENSORS,
        description='Presence sensors; `kind` picks the hardware ("pir" if omitted): [[presence]].',
    )
    room_doors: tuple[RoomDoorConfig, ...] = Field(
        default=(),
        max_length=MAX_ROOM_DOORS,
        description=(
            "Door contacts of booths and meeting rooms with no lock; they keep a shut room "
            "where someone was seen occupied: [[room_doors]]."
        ),
    )
    indicators: tuple[IndicatorConfig, ...] = Field(
        default=(),
        max_length=MAX_INDICATORS,
        description="LEDs and buzzers beside the readers: [[indicators]].",
    )

    @field_validator("presence", mode="before")
    @classmethod
    def _pir_by_default(cls, value: object) -> object:
        # Sensors written before `kind` existed are PIRs: every such file stays valid.
        if not isinstance(value, list | tuple):
            return value
        return [
            {"kind": "pir", **item} if isinstance(item, Mapping) and "kind" not in item else item
            for item in value
        ]

    @model_validator(mode="after")
    def _check(self) -> Self:
        raise_problems(check_config(self.model_dump()))
        return self

    def pins(self) -> dict[int, str]:
        """Map each GPIO pin in use to where it is configured (`doors[0].relay.pin`)."""
        return {pin: path for path, pin in pin_uses(self.model_dump())}
