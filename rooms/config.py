"""The rooms service's configuration: one TOML file, validated once at start.

It names the broker to read the devices from, the calendars that hold the rooms' bookings, each
room, booth and department area with the sensor node that watches it, the check-in rules, the
unified-communications servers to tell, and Home Assistant discovery. `edge-rooms check FILE`
validates a file; errors name the key, the bad value and the fix (as the device config does).
"""

from __future__ import annotations

import ipaddress
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from firmware_config.errors import MISSING, ConfigError, Problem
from firmware_config.fields import FilePath, Seconds, Slug, Text, TimeZoneName, TopicRoot, Whole
from firmware_config.translate import problems_from

RoomKind = Literal["meeting-room", "focus-booth", "phone-booth"]


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_secure_url(url: str) -> str:
    """Refuse a URL that would carry a password or token in clear beyond this machine."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValueError(f"{url!r} is not an https:// URL; write it as https://host/...")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise ValueError(
            f"{url!r} uses http:// to {parts.hostname}: the password or token would cross the "
            "network in clear; use https:// (http:// only to 127.0.0.1, ::1 or localhost)"
        )
    return url


SecureUrl = Annotated[Text, AfterValidator(check_secure_url)]
"""An https:// URL (http:// to a loopback host only): a secret goes with every request."""


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MqttSettings(_Strict):
    """The site broker, read with the service's own account (role `rooms`)."""

    host: Text = "127.0.0.1"
    port: Whole = Field(default=1883, ge=1, le=65_535)
    username: Slug = Field(default="rooms", description="The broker account `rooms`.")
    password_file: FilePath = Field(description="File holding the account's password.")
    root: TopicRoot = "edge"
    keepalive_s: Whole = Field(default=30, ge=5, le=600)


class CaldavCalendar(_Strict):
    """A CalDAV server; each room's `resource` is its calendar's URL or path."""

    kind: Literal["caldav"]
    id: Slug
    url: SecureUrl = Field(description="Server URL, e.g. https://cal.example.jp/")
    username: Text = Field(description="A service account with write rights on the room calendars.")
    password_file: FilePath


class GraphCalendar(_Strict):
    """Microsoft 365: each room's `resource` is its room mailbox (e.g. room-2f-1@city.example)."""

    kind: Literal["graph"]
    id: Slug
    tenant: Text
    client_id: Text
    client_secret_file: FilePath
    base_url: SecureUrl = "https://graph.microsoft.com/v1.0"
    token_url: SecureUrl = Field(
        default="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
        description="OAuth 2.0 token endpoint; {tenant} is replaced.",
    )


class GaroonCalendar(_Strict):
    """Cybozu Garoon: each room's `resource` is its facility id."""

    kind: Literal["garoon"]
    id: Slug
    base_url: SecureUrl = Field(
        description="e.g. https://city.cybozu.com/ or https://host/cgi-bin/cbgrn/grn.cgi"
    )
    username: Text
    password_file: FilePath


CalendarSettings = Annotated[
    CaldavCalendar | GraphCalendar | GaroonCalendar, Field(discriminator="kind")
]


class RoomSettings(_Strict):
    """A bookable room or booth: a zone a sensor node reports, and its calendar."""

    zone: Slug
    name: Text
    kind: RoomKind
    floor: Whole = Field(ge=-9, le=200)
    capacity: Whole | None = Field(default=None, ge=1, le=10_000)
    device: Slug = Field(description="The device whose occupancy/{zone} this room trusts.")
    calendar: Slug | None = Field(
        default=None, description="A [[calendars]] id; omit when the room is not bookable."
    )
    resource: Text | None = Field(
        default=None,
        description="The room in that calendar: CalDAV calendar URL or path, Graph room mailbox, "
        "Garoon facility id.",
    )
    ad_hoc: bool = Field(default=False, description="Book it while in use without a booking.")
    shape: tuple[Whole, Whole, Whole, Whole] | None = Field(
        default=None, description="x, y, width, height on the floor plan; omit: laid out in order."
    )

    @model_validator(mode="after")
    def _calendar_has_resource(self) -> RoomSettings:
        if (self.calendar is None) != (self.resource is None):
            raise ValueError(
                f"room {self.zone}: set both `calendar` and `resource` (bookable) or neither"
            )
        return self


class AreaSettings(_Strict):
    """A department's free-seating area: one or more presence zones (desk islands)."""

    id: Slug
    name: Text = Field(description="Shown on the floor view: the department, not a person.")
    floor: Whole = Field(ge=-9, le=200)
    device: Slug
    zones: tuple[Slug, ...] = Field(min_length=1, description="The islands' presence zones.")
    shape: tuple[Whole, Whole, Whole, Whole] | None = None


class CheckinSettings(_Strict):
    """When presence checks a booking in, and when its absence releases it."""

    grace_min: dict[RoomKind, Whole] = Field(
        default={"meeting-room": 10, "focus-booth": 10, "phone-booth": 10},
        description="Minutes after a booking's start within which presence checks it in.",
    )
    early_min: Whole = Field(default=5, ge=0, le=60, description="Presence this early counts.")
    stale_after_s: Seconds = Field(
        default=120, gt=0, description="A device not heard (status) for this long is stale."
    )
    ad_hoc_after_min: Whole = Field(
        default=10,
        ge=1,
        le=120,
        description="Use without a booking this long is flagged (and booked where ad_hoc). "
        "Keep it longer than the booth doors' settle_s (5 min by default), or someone who "
        "leaves and shuts the door books the booth.",
    )
    ad_hoc_length_min: Whole = Field(default=30, ge=5, le=480)


class MatrixPresence(_Strict):
    """A Matrix homeserver (e.g. Synapse): each person's `uc_id` is their Matrix user id."""

    kind: Literal["matrix"]
    base_url: SecureUrl
    admin_token_file: FilePath = Field(description="An admin's access token (logs in as users).")
    refresh_s: Seconds = Field(
        default=20, gt=0, le=25, description="Synapse lets `online` lapse after about 30 s."
    )


class GraphPresence(_Strict):
    """Microsoft Graph setPresence: each person's `uc_id` is their Entra object id."""

    kind: Literal["graph"]
    tenant: Text
    client_id: Text
    client_secret_file: FilePath
    base_url: SecureUrl = "https://graph.microsoft.com/v1.0"
    token_url: SecureUrl = "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token"  # noqa: S105 (a URL)
    expiration_min: Whole = Field(default=60, ge=5, le=240)


UcSettings = Annotated[MatrixPresence | GraphPresence, Field(discriminator="kind")]


class HomeAssistantSettings(_Strict):
    enabled: bool = False
    prefix: Slug = "homeassistant"


class WebSettings(_Strict):
    host: Text = "127.0.0.1"
    port: Whole = Field(default=8090, ge=1, le=65_535)


class ServiceConfig(_Strict):
    """The whole file."""

    site: Slug
    name: Text
    timezone: TimeZoneName = "Asia/Tokyo"
    state_path: FilePath = Field(description="The service's SQLite file (releases, evidence).")
    registry: FilePath | None = Field(
        default=None, description="The provisioning registry: who opted in to UC presence."
    )
    line_zone: Slug = Field(
        default="staff-area", description="Inside the security line: 'in the building'."
    )
    devices_dir: FilePath | None = Field(
        default=None,
        description="edge-provision's SITE/devices: which device has which door and counts "
        "which zone. Without it no crossing, door or head count is taken.",
    )
    poll_s: Seconds = Field(default=30, ge=1, le=3600, description="How often calendars are read.")
    mqtt: MqttSettings
    web: WebSettings = WebSettings()
    checkin: CheckinSettings = CheckinSettings()
    homeassistant: HomeAssistantSettings = HomeAssistantSettings()
    calendars: tuple[CalendarSettings, ...] = ()
    rooms: tuple[RoomSettings, ...] = ()
    areas: tuple[AreaSettings, ...] = ()
    presence: tuple[UcSettings, ...] = Field(default=(), description="UC servers to tell.")

    @model_validator(mode="after")
    def _references(self) -> ServiceConfig:
        calendars = {c.id for c in self.calendars}
        for room in self.rooms:
            if room.calendar is not None and room.calendar not in calendars:
                known = ", ".join(sorted(calendars)) or "none defined"
                raise ValueError(
                    f"room {room.zone}: calendar {room.calendar!r} is not a [[calendars]] id "
                    f"({known}); add it or fix the name"
                )
        zones = [r.zone for r in self.rooms] + [z for a in self.areas for z in a.zones]
        twice = sorted({z for z in zones if zones.count(z) > 1})
        if twice:
            raise ValueError(f"zones listed twice: {', '.join(twice)}; list each zone once")
        return self

    def room(self, zone: str) -> RoomSettings | None:
        return next((r for r in self.rooms if r.zone == zone), None)


def load_service_config(path: Path) -> ServiceConfig:
    """Read and validate a rooms service file; raise ConfigError naming every problem."""
    source = str(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        problem = Problem("", MISSING, f"cannot read it: {error}", "check the path and its mode")
        raise ConfigError([problem], source) from error
    except tomllib.TOMLDecodeError as error:
        problem = Problem("", MISSING, f"not valid TOML: {error}", "fix the line named")
        raise ConfigError([problem], source) from error
    try:
        return ServiceConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(problems_from(error), source) from error
