"""Versioned payload models of the MQTT contract; their JSON Schemas are exported and snapshot.

Outbound payloads are built by the agent from its outbox; inbound ones (commands) are
parsed with these models, so a malformed message is refused with a reason, never a crash.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = 1
MAX_COMMAND_BYTES = 8192  # a signed envelope is about 400 bytes
# A digest entry is about 140 bytes: 10,000 cards whose latest crossing was at one device
# fit in 1.4 MB.
MAX_DIGEST_ENTRIES = 10_000

# The fields a peer's crossing and a positions digest share, judged the same way in both.
DeviceId = Annotated[str, Field(max_length=63, pattern=r"^[a-z0-9][a-z0-9-]*$")]
CardRef = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
ZoneId = Annotated[str, Field(min_length=1, max_length=64)]
UtcText = Annotated[str, Field(pattern=r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")]


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="allow")


class EventPayload(_Out):
    """One event on `events/{kind}`; each kind adds its own fields (see `type`)."""

    v: Literal[1] = Field(description="Schema version.")
    id: str = Field(description="`{device}:{seq}`: unique; consumers de-duplicate by it.")
    seq: int = Field(ge=1, description="Per-device sequence number, gap-free and persisted.")
    device: str = Field(description="Device id.")
    ts: str = Field(
        description="UTC ISO-8601 time with milliseconds, e.g. 2026-12-01T00:00:00.000Z."
    )
    clock_synced: bool = Field(description="False while the device clock is not NTP-synchronised.")
    kind: Literal["access", "door", "alarm", "presence", "system", "command"]
    type: str = Field(
        description="What happened, e.g. granted, denied, crossing, opened, door_forced."
    )
    card_ref: str | None = Field(
        default=None,
        description="Card reference (HMAC-SHA256, 64 hex digits); never a raw card id.",
    )


class OccupancyPayload(_Out):
    """Retained on `occupancy/{zone}`: what this device knows of a zone."""

    v: Literal[1]
    device: str
    zone: str
    ts: str
    count: int | None = Field(
        description="Head count from crossings; null where this device does not count."
    )
    occupied: bool
    capacity: int | None
    sensor_ok: bool | None = Field(
        default=None,
        description=(
            "False while a presence sensor of the zone is in fault (its last state is kept: "
            "a fault never makes the zone vacant); null where the zone has no presence sensor."
        ),
    )


class CrossingPayload(BaseModel):
    """On `crossings/{zone}`: one crossing, shared with the other devices of the zone.

    Inbound for those devices, so it is parsed strictly: any other field, a malformed id or
    time, or a field past its length is refused.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = Field(description="Schema version.")
    id: str = Field(
        max_length=96, description="The crossing event's id, `{device}:{seq}` (events/access)."
    )
    device: DeviceId
    seq: int = Field(ge=1, le=2**63 - 1, description="The crossing event's seq.")
    card_ref: CardRef = Field(description="Card reference, never an id.")
    from_zone: ZoneId
    to_zone: ZoneId
    ts: UtcText = Field(
        description="UTC time of the crossing; the later crossing by (ts, device, seq) wins."
    )
    clock_synced: bool


# [card_ref, from_zone, to_zone, ts, seq]; to_zone "" is a card forgiven (in no zone).
DigestEntry = tuple[
    CardRef, ZoneId, Annotated[str, Field(max_length=64)], UtcText, Annotated[int, Field(ge=0)]
]


class PositionsPayload(BaseModel):
    """Retained on `positions/{zone}`: the positions this device set itself in or out of a zone.

    Per card, the latest crossing (or forgiveness) of this device that enters or leaves the
    zone, since the zone's last forgiveness; never a position learned from a peer. Inbound
    for the zone's other devices, so it is parsed as strictly as a crossing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = Field(description="Schema version.")
    device: DeviceId
    zone: ZoneId
    ts: UtcText = Field(description="When the digest was built.")
    entries: list[DigestEntry] = Field(
        max_length=MAX_DIGEST_ENTRIES,
        description="[card_ref, from_zone, to_zone, ts, seq], newest first; each merges like "
        "the crossing it was on crossings/{zone}, stamped (ts, device, seq); seq 0: not known.",
    )


class CredentialsState(BaseModel):
    """The credential set in use."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: int = Field(ge=0, description="0: none loaded yet.")
    issued_at: str | None
    age_s: float | None = Field(description="Seconds since the set was issued.")
    stale: bool


class StatusPayload(BaseModel):
    """Retained on `status`: birth message on connect; the last will says `offline`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    device: str
    site: str
    state: Literal["online", "offline"]
    ts: str
    software: str | None = None
    config_hash: str | None = None
    credentials: CredentialsState | None = None
    clock_synced: bool | None = None
    backlog: int | None = Field(default=None, description="Events waiting in the outbox.")


CommandName = Literal[
    "unlock",
    "lockdown",
    "hold-open",
    "alarm-reset",
    "fire-reset",
    "resync-credentials",
    "ping",
    "forgive",
]


class CommandEnvelope(BaseModel):
    """A signed command on `cmd/{name}`: Ed25519 over the canonical JSON of every other field."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1]
    device: str = Field(
        max_length=63,
        pattern=r"^[a-z0-9][a-z0-9-]*$",
        description="The device it is for; another device's command is refused.",
    )
    name: CommandName
    args: dict[str, Any] = Field(default_factory=dict)
    nonce: str = Field(min_length=16, max_length=64, pattern=r"^[0-9a-f]+$")
    expires_at: str = Field(max_length=40, description="UTC ISO-8601; at most 60 s after issue.")
    issued_by: str = Field(min_length=1, max_length=64, description="Operator or console account.")
    key_id: str = Field(pattern=r"^[0-9a-f]{8}$")
    signature: str = Field(description="Base64 Ed25519 signature.")


class CommandReply(BaseModel):
    """Sent to the MQTT 5 response topic, with the correlation data echoed."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    v: Literal[1] = 1
    device: str
    command: str | None
    ok: bool
    reason: Literal[
        "accepted",
        "unsigned",
        "bad_signature",
        "expired",
        "replayed",
        "unknown_command",
        "malformed",
        "retained",
        "wrong_device",
        "unknown_door",
        "refused",
    ]
    detail: str = ""
    result: dict[str, Any] = Field(default_factory=dict)


def mqtt_schemas() -> dict[str, Any]:
    """Return the JSON Schema of every payload, by name."""
    models: dict[str, type[BaseModel]] = {
        "event": EventPayload,
        "occupancy": OccupancyPayload,
        "status": StatusPayload,
        "command": CommandEnvelope,
        "command_reply": CommandReply,
        "crossing": CrossingPayload,
        "positions": PositionsPayload,
    }
    return {name: model.model_json_schema() for name, model in models.items()}
