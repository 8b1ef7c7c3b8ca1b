"""Garoon events as bookings: the pure reading of one schedule event of a facility.

Times are RFC 3339 with an offset; a repeating event's occurrences share its id; a temporary
event lists candidates, not a booking; this service's check-ins and ad-hoc mark are lines of
the event's `notes` (https://cybozu.dev/ja/garoon/docs/overview/schedule-object/).
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from rooms.bookings import Booking

MAX_TEXT = 255
CHECKED_IN = re.compile(r"^\[rooms\] checked in at (\S{10,40})$", re.MULTILINE)
AD_HOC = "[rooms] booked for use nobody had booked (ad hoc)"


def parse_event(calendar: str, zone: str, facility: str, event: object) -> Booking | None:
    """Return one event as a Booking of `facility`, or None when it books nothing.

    Raises ValueError, TypeError or KeyError when the event is malformed.
    """
    if not isinstance(event, dict):
        raise TypeError("not a JSON object")
    uid = str(event["id"])
    if not uid.isdigit() or len(uid) > 20:
        raise ValueError("no usable id")
    kind = event.get("eventType")
    if kind == "TEMPORARY" or event.get("isStartOnly") is True:
        return None  # candidates, or a start with no end: not a booking of the room
    start, end = _when(event["start"]), _when(event["end"])
    if end <= start:
        raise ValueError("it ends before it starts")
    if kind == "REPEATING":  # each occurrence shares the event's id
        uid = f"{uid}:{start.date().isoformat()}"
    notes = event.get("notes")
    notes = notes if isinstance(notes, str) else ""
    creator = event.get("creator")
    attendees = event.get("attendees")
    return Booking(
        calendar=calendar,
        room=zone,
        uid=uid,
        start=start,
        end=end,
        organiser=_code(creator),
        attendees=tuple(
            c for c in map(_code, attendees[:500] if isinstance(attendees, list) else []) if c
        ),
        title=_text(event.get("subject")),
        checked_in=_checked_in(notes, start, end),
        released=_refused(event, facility),
        ad_hoc=AD_HOC in notes,
    )


def _when(value: object) -> datetime:
    if not isinstance(value, dict) or not isinstance(value.get("dateTime"), str):
        raise TypeError("a time has no dateTime")
    moment = datetime.fromisoformat(value["dateTime"][:40])
    if moment.tzinfo is None:
        raise ValueError("a dateTime has no offset")
    return moment


def _checked_in(notes: str, start: datetime, end: datetime) -> datetime | None:
    """Return the check-in noted for this occurrence (an hour early at most), if any."""
    for text in CHECKED_IN.findall(notes):
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            continue
        if moment.tzinfo is not None and start - timedelta(hours=1) <= moment < end:
            return moment
    return None


def _refused(event: dict[str, Any], facility: str) -> bool:
    """Whether the facility's use was refused by its approver (the room is not booked)."""
    requests = event.get("facilityUsageRequests")
    for request in requests if isinstance(requests, list) else []:
        about = request.get("facility") if isinstance(request, dict) else None
        if isinstance(about, dict) and str(about.get("id")) == facility:
            return bool(request.get("status") == "REJECTED")
    return False


def _code(value: object) -> str:
    return _text(value.get("code")) if isinstance(value, dict) else ""


def _text(value: object) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else ""
