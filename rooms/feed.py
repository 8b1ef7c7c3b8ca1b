"""The devices' messages turned into what the service knows: zones, devices, doors, crossings.

Each message is judged alone and never raises: a malformed, oversized or other-site message,
one with a topic level that is not a slug, or one from a device not trusted for what it
claims, is dropped and counted (`rejected`), with at most one log line per reason a minute.
A room's or area's occupancy is taken only from the device named for it in the configuration;
the payload's `device` and `zone` must match its topic. Doors, line crossings and head counts
are taken only as the provisioned device configurations allow (`rooms.devices`, from
`devices_dir`); without `devices_dir` none are taken. What is kept is bounded by the
configurations: the configured zones, the provisioned doors and counted zones, the devices
either names.

A zone's reading is unknown while the service's own link is down, while its device's retained
status says offline (or none was ever heard), while it is catching up (older readings may
still be queued: it came online with a `backlog`, or two statuses in a row report one and
nothing else arrived from it in between; a queue that drains is normal and ignored) until a
status says 0 or the queue has had time to drain (20 ms a message, 5 s at least,
`stale_after_s` at most: a queue drains faster on a live link), when the device has not been
heard for `checkin.stale_after_s` (agents republish their status every 30 s), or while the device
reports `sensor_ok: false`; and every zone is unknown after the inbox dropped messages, until
fresh ones arrive. Times are the service's clock when a message arrived, never the device's.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Final, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, ValidationError

from edge.link import topics
from edge.link.payloads import EventPayload, OccupancyPayload, StatusPayload
from rooms.config import ServiceConfig
from rooms.devices import Devices, Door
from rooms.inbox import MAX_PAYLOAD_BYTES, Inbound
from rooms.sensing import Sensing, Span

log = logging.getLogger(__name__)

__all__ = ["MAX_PAYLOAD_BYTES", "Crossing", "Feed"]

KEEP_SPANS: Final = timedelta(hours=26)
MAX_SPANS: Final = 256
LOG_EVERY: Final = timedelta(minutes=1)
CATCH_UP_MIN: Final = timedelta(seconds=5)
CATCH_UP_PER_MESSAGE: Final = timedelta(milliseconds=20)
_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_CARD_REF = re.compile(r"^[0-9a-f]{64}$")
_SEEN_IDS: Final = 4096  # event ids remembered to drop a QoS 1 duplicate


class _Will(BaseModel):
    """The agent's last will: a status with only these fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    v: Literal[1]
    device: str
    site: str
    state: Literal["offline"]


@dataclass(frozen=True, slots=True)
class Crossing:
    """A card crossing the security line: into `line_zone` (inside) or out of it."""

    card_ref: str
    inside: bool
    at: datetime


@dataclass
class _Device:
    online: bool | None = None
    status_at: datetime | None = None
    heard_at: datetime | None = None
    offline_at: datetime | None = None
    backlog: int = 0
    catching_up_until: datetime | None = None  # its queued readings may not have arrived yet
    sent_since_status: bool = False  # a message other than its status arrived since the last


@dataclass
class _Zone:
    device: str
    occupied: bool | None = None
    sensor_ok: bool = True
    spans: deque[list[datetime | None]] = field(default_factory=deque)
    reason: str = "no reading yet"
    healthy_since: datetime | None = None
    unhealthy_since: datetime | None = None


class Feed:
    """The state of the site's devices as the service's link delivers it."""

    def __init__(self, config: ServiceConfig) -> None:
        self.root, self.site = config.mqtt.root, config.site
        self._tz = ZoneInfo(config.timezone)
        self._stale = timedelta(seconds=config.checkin.stale_after_s)
        self._line = config.line_zone
        self._zones: dict[str, _Zone] = {r.zone: _Zone(r.device) for r in config.rooms}
        for area in config.areas:
            self._zones.update({z: _Zone(area.device) for z in area.zones})
        self._devices: dict[str, _Device] = {}
        self._doors: dict[str, bool] = {}  # provisioned door id: open
        self.provisioned = (
            Devices(config.devices_dir, config.site) if config.devices_dir is not None else None
        )
        self._needed = {r.device for r in config.rooms} | {a.device for a in config.areas}
        if self.provisioned is None:
            log.info(
                "feed: no devices_dir set: door states, line crossings and head counts are not "
                "taken (nothing says which device may report them); set devices_dir to "
                "edge-provision's SITE/devices"
            )
        self._counts: dict[tuple[str, str], int] = {}
        self._seen: deque[str] = deque(maxlen=_SEEN_IDS)
        self._link_up = False
        self._link_down_at: datetime | None = None
        self.rejected: Counter[str] = Counter()
        self._logged: dict[str, datetime] = {}

    def __repr__(self) -> str:
        return (
            f"<Feed {self.site} zones={len(self._zones)} devices={len(self._devices)} "
            f"link={'up' if self._link_up else 'down'} rejected={sum(self.rejected.values())}>"
        )

    # -- input ----------------------------------------------------------------------------

    def link(self, up: bool, at: datetime) -> None:
        """Record that the service's own broker link came up or went down."""
        if up == self._link_up:
            return
        self._link_up = up
        self._link_down_at = None if up else at
        if up:  # everything retained arrives again; until then nothing is current
            for device in self._devices.values():
                device.online = None
        self.refresh(at)

    def lost(self, at: datetime) -> None:
        """Trust no zone until fresh readings arrive: the inbox dropped messages."""
        for device in self._devices.values():
            device.online = None
        for zone in self._zones.values():
            zone.occupied = None
        self._doors.clear()
        self.refresh(at)

    def message(self, inbound: Inbound, at: datetime) -> Crossing | None:
        """Take one message (at its arrival, if stamped); return a line crossing. Never raises."""
        if inbound.at is not None and inbound.at < at:
            at = inbound.at
        try:
            return self._message(inbound, at)
        except Exception:  # a bug must not stop the service: count it like a bad message
            log.exception("feed: a message could not be handled (dropped)")
            self.rejected["internal-error"] += 1
            return None

    def refresh(self, at: datetime) -> None:
        """Judge every zone's health at `at` (staleness moves with time alone)."""
        for zone in self._zones.values():
            self._judge(zone, at)
            self._span(zone, at)

    # -- output ---------------------------------------------------------------------------

    @property
    def link_up(self) -> bool:
        return self._link_up

    def sensing(self, zone: str) -> Sensing:
        """Return what is known of a configured zone (call `refresh` first)."""
        track = self._zones[zone]
        device = self._devices.get(track.device)
        known = track.healthy_since is not None
        spans: tuple[Span, ...] = tuple((s[0], s[1]) for s in track.spans if s[0] is not None)
        return Sensing(
            zone=zone,
            device=track.device,
            occupied=track.occupied if known else None,
            spans=spans,
            healthy_since=track.healthy_since,
            unhealthy_since=track.unhealthy_since,
            reason="" if known else track.reason,
            last_status_at=device.status_at if device else None,
        )

    def doors(self) -> dict[str, bool | None]:
        """Return whether each provisioned door is open (None: not heard since start)."""
        if self.provisioned is None:
            return {}
        return {door: self._doors.get(door) for door in self.provisioned.doors()}

    def door_devices(self) -> dict[str, str]:
        """Return each provisioned door's device."""
        if self.provisioned is None:
            return {}
        return {door: d.device for door, d in self.provisioned.doors().items()}

    def counts(self) -> dict[str, int]:
        """Return the head count of each zone exactly one provisioned device counts."""
        known = self.provisioned
        if known is None:
            return {}
        return {
            zone: count
            for (device, zone), count in self._counts.items()
            if known.counts(device, zone) and known.single_counter(zone)
        }

    # -- judging --------------------------------------------------------------------------

    def _message(self, inbound: Inbound, at: datetime) -> Crossing | None:
        levels = topics.device_levels(inbound.topic, self.root, self.site)
        if levels is None:
            self._reject("other-site", "?", at)
            return None
        device = levels[0]
        if not _SLUG.match(device):
            self._reject("bad-device-id", "?", at)
            return None
        if device == topics.ROOMS:
            return None  # our own status, coming back
        if inbound.oversized or len(inbound.payload) > MAX_PAYLOAD_BYTES:
            self._reject("oversized", device, at)
            return None
        branch = levels[1:]
        if branch == ["status"]:
            self._status(device, inbound.payload, at)
        elif len(branch) == 2 and branch[0] == "occupancy":
            if not _SLUG.match(branch[1]):
                self._reject("bad-zone-id", device, at)
                return None
            self._occupancy(device, branch[1], inbound.payload, at)
        elif branch == ["events", "access"]:
            return self._access(device, inbound.payload, at)
        elif branch == ["events", "door"]:
            self._door(device, inbound.payload, at)
        else:
            self._reject("unexpected-topic", device, at)
        return None

    def _status(self, device: str, payload: bytes, at: datetime) -> None:
        state: str
        try:
            status = StatusPayload.model_validate_json(payload)
            owner, site, state = status.device, status.site, status.state
            backlog = status.backlog or 0
        except ValidationError:
            try:
                will = _Will.model_validate_json(payload)
            except ValidationError:
                self._reject("malformed-status", device, at)
                return
            owner, site, state = will.device, will.site, will.state
            backlog = 0
        if site != self.site:
            self._reject("other-site", device, at)
            return
        if owner != device:
            self._reject("device-mismatch", device, at)
            return
        if not self._wanted(device):
            return  # a device this service reads nothing from: keep nothing of it
        track = self._devices.setdefault(device, _Device())
        was_online = track.online is True
        track.online = state == "online"
        backlog = backlog if track.online else 0
        # Back online with a queue, or a queue that stands still between two statuses: both
        # report one and nothing else arrived from the device in between. A status sent just
        # before the events it counts (the agent's drain sends it first) is not a queue.
        stalled = track.backlog > 0 and not track.sent_since_status
        catching_up = backlog > 0 and (not was_online or stalled)
        drain = min(self._stale, max(CATCH_UP_MIN, backlog * CATCH_UP_PER_MESSAGE))
        track.catching_up_until = at + drain if catching_up else None
        track.backlog = backlog
        track.sent_since_status = False
        track.status_at = track.heard_at = at
        track.offline_at = None if track.online else at
        self._judge_device(device, at)

    def _occupancy(self, device: str, zone: str, payload: bytes, at: datetime) -> None:
        try:
            reading = OccupancyPayload.model_validate_json(payload)
        except ValidationError:
            self._reject("malformed-occupancy", device, at)
            return
        sensor_ok = getattr(reading, "sensor_ok", None)
        if reading.device != device or reading.zone != zone:
            self._reject("device-mismatch", device, at)
            return
        if sensor_ok is not None and not isinstance(sensor_ok, bool):
            self._reject("malformed-occupancy", device, at)
            return
        track = self._zones.get(zone)
        if track is not None and track.device != device:
            self._reject("untrusted-device", device, at)  # a node speaking for another room
            return
        counts = self.provisioned is not None and self.provisioned.counts(device, zone)
        if track is None and not counts:
            if self.provisioned is not None:
                self._reject("untrusted-device", device, at)  # not one of its counted zones
            return
        self._heard(device, at)
        if counts and reading.count is not None and reading.count >= 0:
            self._counts[(device, zone)] = reading.count
        if track is None:
            return
        track.sensor_ok = sensor_ok is not False
        track.occupied = reading.occupied
        self._judge(track, at)
        self._span(track, at)

    def _access(self, device: str, payload: bytes, at: datetime) -> Crossing | None:
        event = self._event(device, payload, "access", at)
        if event is None or event.type != "crossing":
            return None
        extra = event.model_extra or {}
        to_zone, from_zone = extra.get("to_zone"), extra.get("from_zone")
        card = event.card_ref
        if card is None or not _CARD_REF.match(card) or event.id in self._seen:
            return None
        door = self._own_door(device, (event.model_extra or {}).get("door"), at)
        if door is None:
            return None
        if not door.joins(self._line) or {from_zone, to_zone} != {door.outside, door.inside}:
            self._reject("untrusted-device", device, at)  # not through its door on the line
            return None
        self._seen.append(event.id)
        if to_zone == self._line and from_zone != self._line:
            return Crossing(card, True, at)
        if from_zone == self._line and to_zone != self._line:
            return Crossing(card, False, at)
        return None

    def _door(self, device: str, payload: bytes, at: datetime) -> None:
        event = self._event(device, payload, "door", at)
        if event is None or event.type not in ("opened", "closed"):
            return
        door = self._own_door(device, (event.model_extra or {}).get("door"), at)
        if door is not None:
            self._doors[door.id] = event.type == "opened"

    def _own_door(self, device: str, door: object, at: datetime) -> Door | None:
        """Return the provisioned door if the device's configuration has it, else reject."""
        if self.provisioned is None:
            return None  # nothing says which device has which door
        if not isinstance(door, str) or not _SLUG.match(door):
            self._reject("malformed-event", device, at)
            return None
        found = self.provisioned.door(door)
        if found is None:
            self._reject("unknown-door", device, at)
            return None
        if found.device != device:  # door ids are site-wide: only its device speaks for it
            self._reject("untrusted-device", device, at)
            return None
        return found

    def _event(self, device: str, payload: bytes, kind: str, at: datetime) -> EventPayload | None:
        if self.provisioned is None:
            return None  # without the device files no event is taken (logged once at start)
        try:
            event = EventPayload.model_validate_json(payload)
        except ValidationError:
            self._reject("malformed-event", device, at)
            return None
        if event.device != device or event.kind != kind:
            self._reject("device-mismatch", device, at)
            return None
        self._heard(device, at)
        return event

    def _wanted(self, device: str) -> bool:
        """Return whether the service reads anything from this device (bounds what is kept)."""
        if device in self._needed:
            return True
        known = self.provisioned
        return known is not None and known.has_doors(device)

    def _heard(self, device: str, at: datetime) -> None:
        if self._wanted(device):
            track = self._devices.setdefault(device, _Device())
            track.heard_at = at
            track.sent_since_status = True

    def _judge_device(self, device: str, at: datetime) -> None:
        for zone in self._zones.values():
            if zone.device == device:
                self._judge(zone, at)
                self._span(zone, at)

    def _trouble(self, zone: _Zone, at: datetime) -> tuple[str, datetime | None]:
        """Return why the zone's reading cannot be trusted at `at`, and since when."""
        if not self._link_up:
            return f"the service's broker link is down since {self._hm(self._link_down_at)}", (
                self._link_down_at
            )
        device = self._devices.get(zone.device)
        if device is None or device.online is None:
            return f"no status heard from {zone.device}", None
        if not device.online:
            return f"{zone.device} offline since {self._hm(device.offline_at)}", device.offline_at
        if device.catching_up_until is not None and at < device.catching_up_until:
            return f"{zone.device} still sending {device.backlog} queued messages", at
        if device.heard_at is None or at - device.heard_at > self._stale:
            since = device.heard_at + self._stale if device.heard_at else None
            return f"{zone.device} not heard since {self._hm(device.heard_at)} (stale)", since
        if zone.occupied is None:
            return f"no occupancy from {zone.device} yet", None
        if not zone.sensor_ok:
            return f"sensor fault reported by {zone.device}", at
        return "", None

    def _judge(self, zone: _Zone, at: datetime) -> None:
        reason, since = self._trouble(zone, at)
        if reason:
            if zone.healthy_since is not None or zone.unhealthy_since is None:
                zone.unhealthy_since = since or at
            if zone.healthy_since is not None and zone.spans and zone.spans[-1][1] is None:
                zone.spans[-1][1] = zone.unhealthy_since  # not seen occupied past this
            zone.healthy_since = None
            zone.reason = reason
        elif zone.healthy_since is None:
            zone.healthy_since = at
            zone.reason = ""

    def _span(self, zone: _Zone, at: datetime) -> None:
        """Open or close the zone's occupied span after a change in reading or health."""
        open_span = bool(zone.spans) and zone.spans[-1][1] is None
        seen = zone.occupied is True and zone.healthy_since is not None
        if seen and not open_span:
            zone.spans.append([at, None])
        elif open_span and zone.occupied is False:
            zone.spans[-1][1] = at
        while zone.spans and (
            len(zone.spans) > MAX_SPANS
            or (zone.spans[0][1] is not None and at - zone.spans[0][1] > KEEP_SPANS)
        ):
            zone.spans.popleft()

    def _hm(self, moment: datetime | None) -> str:
        return moment.astimezone(self._tz).strftime("%H:%M") if moment else "?"

    def _reject(self, reason: str, device: str, at: datetime) -> None:
        self.rejected[reason] += 1
        last = self._logged.get(reason)
        if last is None or at - last >= LOG_EVERY:
            self._logged[reason] = at
            log.warning(
                "feed: dropped a message (%s) from %s; %d so far",
                reason,
                device,
                self.rejected[reason],
            )
