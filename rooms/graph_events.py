"""Graph events as bookings: the pure reading of one `event` resource of a room's calendar.

Graph sends times as `dateTime` without an offset plus a `timeZone` (UTC when asked with
`Prefer: outlook.timezone="UTC"`), the room's own answer in `responseStatus`, and this service's
open extension when `$expand`ed (https://learn.microsoft.com/graph/api/resources/event).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from rooms.bookings import Booking

EXTENSION = "jp.cityhall.edge.rooms"
EXTENSION_ID = f"Microsoft.OutlookServices.OpenTypeExtension.{EXTENSION}"
MAX_TEXT = 255
MAX_ATTENDEES = 500


def parse_event(calendar: str, zone: str, event: object) -> Booking:
    """Return one event as a Booking; raise ValueError, TypeError or KeyError if malformed."""
    if not isinstance(event, dict):
        raise TypeError("not a JSON object")
    uid = event["id"]
    if not isinstance(uid, str) or not uid or len(uid) > 1024:
        raise ValueError("no usable id")
    start, end = _when(event["start"]), _when(event["end"])
    if end <= start:
        raise ValueError("it ends before it starts")
    status = event.get("responseStatus") or {}
    declined = isinstance(status, dict) and status.get("response") == "declined"
    extension = _extension(event.get("extensions"))
    checked_in_text = extension.get("checkedInAt")
    checked_in = _instant(checked_in_text) if isinstance(checked_in_text, str) else None
    attendees = event.get("attendees") or []
    if not isinstance(attendees, list):
        raise TypeError("attendees is not a list")
    return Booking(
        calendar=calendar,
        room=zone,
        uid=uid,
        start=start,
        end=end,
        organiser=_address(event.get("organizer")),
        attendees=tuple(
            address
            for attendee in attendees[:MAX_ATTENDEES]
            if isinstance(attendee, dict) and attendee.get("type") != "resource"
            if (address := _address(attendee))
        ),
        title=_text(event.get("subject")),
        checked_in=checked_in,
        released=event.get("isCancelled") is True or declined,
        ad_hoc=extension.get("adHoc") is True,
    )


def _when(value: object) -> datetime:
    """Read a Graph dateTimeTimeZone as an aware instant."""
    if not isinstance(value, dict):
        raise TypeError("a time is not an object")
    text, zone = value.get("dateTime"), value.get("timeZone")
    if not isinstance(text, str) or not isinstance(zone, str) or len(text) > 40:
        raise ValueError("a time has no dateTime or timeZone")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not None:
        return moment
    try:
        return moment.replace(tzinfo=UTC if zone == "UTC" else ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:
        # A name such as "Asia" is a directory of the zone database: OSError, not "not found".
        raise ValueError(f"unknown timeZone {zone[:40]!r}") from error


def _instant(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text[:40])
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _extension(value: object) -> dict[str, Any]:
    if isinstance(value, list):
        for item in value:
            if isinstance(item, dict) and item.get("id") == EXTENSION_ID:
                return item
    return {}


def _address(value: object) -> str:
    if isinstance(value, dict):
        email = value.get("emailAddress")
        if isinstance(email, dict):
            return _text(email.get("address"))
    return ""


def _text(value: object) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else ""
