"""Where a device stands and what it talks to: site, device identity, MQTT broker, local store."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from firmware_config.errors import MISSING, Problem, raise_problems
from firmware_config.fields import (
    FilePath,
    MonthDay,
    Slug,
    Text,
    TimeZoneName,
    TopicRoot,
    Whole,
)

_NEW_YEAR_CLOSURE = ("12-29", "12-30", "12-31", "01-01", "01-02", "01-03")


class SiteConfig(BaseModel):
    """The site (a city hall) this device belongs to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Slug = Field(
        description="Site id, shared by every device of the site; part of every MQTT topic.",
        examples=["kamakura-city-hall"],
    )
    timezone: TimeZoneName = Field(
        default="Asia/Tokyo",
        description="IANA time zone of the site; schedules and closure days use its local time.",
    )
    closure_days: tuple[MonthDay, ...] = Field(
        default=_NEW_YEAR_CLOSURE,
        max_length=366,
        description=(
            'Days the site is closed every year, as "MM-DD", on top of Japanese public '
            "holidays. The default is the New Year closure, 29 December to 3 January."
        ),
    )
    card_key_file: FilePath | None = Field(
        default=None,
        description=(
            "File holding the site's card key (64 hex digits), readable only by the agent: "
            "card numbers are turned into card references with it. Required when the device "
            'has readers (usually "/etc/edge/card-key", from the device bundle); a device '
            "without readers gets no card key and leaves this out. Never copy it anywhere else."
        ),
        examples=["/etc/edge/card-key"],
    )
    credentials_key_file: FilePath = Field(
        default=Path("/etc/edge/credentials.pub"),
        description=(
            "Public key (64 hex digits) that credential snapshots must be signed with; from "
            "the device bundle."
        ),
    )
    commands_key_file: FilePath = Field(
        default=Path("/etc/edge/commands.pub"),
        description=(
            "Public key (64 hex digits) that commands from the console must be signed with; "
            "from the device bundle."
        ),
    )


class DeviceInfo(BaseModel):
    """This device: its id and what it does."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: Slug = Field(
        description="Device id, unique within the site; part of every MQTT topic.",
        examples=["gate-1f-east"],
    )
    role: Literal["gate", "door", "sensor-node"] = Field(
        description=(
            '"gate": a security-line gate with entry and exit readers; "door": a card door; '
            '"sensor-node": presence sensors only, no doors.'
        ),
    )
    fire_reset: Literal["manual", "auto"] = Field(
        default="manual",
        description=(
            'After the fire input clears: "manual" keeps the doors released until an operator '
            'resets them; "auto" returns to normal at once.'
        ),
    )
    credentials_stale_after_h: float = Field(
        default=26.0,
        gt=0,
        le=24 * 365,
        description=(
            "Raise a credentials_stale alarm when the newest credential snapshot was issued "
            "longer ago than this (hours): the device may be running stale rules."
        ),
    )


class TlsConfig(BaseModel):
    """TLS to the broker: the CA to trust and, optionally, a client certificate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ca_file: FilePath = Field(
        description="PEM file of the CA that signed the broker's certificate."
    )
    cert_file: FilePath | None = Field(
        default=None, description="PEM client certificate; needs key_file too."
    )
    key_file: FilePath | None = Field(
        default=None,
        description="PEM private key of the client certificate, readable only by the agent.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        raise_problems(tls_rules(dict(self)))
        return self


def tls_rules(tls: Mapping[str, Any]) -> list[Problem]:
    """Check that a client certificate comes with its key and the other way round."""
    has_cert, has_key = tls.get("cert_file") is not None, tls.get("key_file") is not None
    if has_cert == has_key:
        return []
    given, absent = ("cert_file", "key_file") if has_cert else ("key_file", "cert_file")
    return [
        Problem(
            absent,
            MISSING,
            f"{given} is set but {absent} is not",
            f"a client certificate needs both files: set {absent}, or remove {given} "
            "to log in with username and password_file",
        )
    ]


class MqttConfig(BaseModel):
    """The MQTT broker the device reports to and takes commands from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: Text = Field(
        default="localhost", min_length=1, description="Broker host name or address."
    )
    port: Whole = Field(
        default=1883, ge=1, le=65535, description="Broker port: usually 1883, or 8883 with TLS."
    )
    root: TopicRoot = Field(
        default="edge",
        description='First topic level(s), e.g. "edge" or "kamakura/edge"; no wildcards.',
    )
    username: Text | None = Field(default=None, description="Broker user name of this device.")
    password_file: FilePath | None = Field(
        default=None,
        description=(
            "File holding the broker password, readable only by the agent (chmod 600). "
            "Passwords are never written in this file."
        ),
    )
    tls: TlsConfig | None = Field(default=None, description="TLS settings; omit for plain TCP.")
    keepalive_s: Whole = Field(
        default=30,
        ge=1,
        le=65535,
        description=(
            "Seconds between pings; the broker publishes the last will after 1.5 times this."
        ),
    )


class StoreConfig(BaseModel):
    """The local SQLite store: credentials, door state and the event outbox."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: FilePath = Field(
        default=Path("/var/lib/edge/agent.db"),
        description="SQLite database file; its directory must be writable by the agent.",
    )
