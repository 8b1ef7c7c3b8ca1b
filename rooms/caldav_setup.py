"""Set up room calendars on a CalDAV server, and book a room as a person's calendar client would.

For installers (`ensure_calendars`) and the simulator (`make_booking`, its simulated staff's
bookings); neither needs the rooms service running.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import unquote, urlsplit

from caldav.collection import Calendar, CalendarSet
from caldav.davclient import DAVClient
from caldav.elements import dav
from caldav.lib import error as dav_error

from rooms.bookings import BookingError
from rooms.caldav_client import calendar_errors, connect, resource_url
from rooms.caldav_events import new_event
from rooms.config import CaldavCalendar, RoomSettings

log = logging.getLogger(__name__)


def _exists(client: DAVClient, url: str) -> bool:
    return client.propfind(url, props=[dav.ResourceType.tag], depth=0).status != 404


def _make_parents(client: DAVClient, url: str) -> None:
    """Create the collections above `url` that are missing (Radicale needs them first)."""
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s][:-1]
    missing: list[str] = []
    for depth in range(len(segments), 0, -1):
        parent = f"{parts.scheme}://{parts.netloc}/{'/'.join(segments[:depth])}/"
        if _exists(client, parent):
            break
        missing.append(parent)
    for parent in reversed(missing):
        response = client.mkcol(parent, "")
        if response.status not in (200, 201):
            raise dav_error.MkcolError(parent, status=response.status)


def ensure_calendars(settings: CaldavCalendar, rooms: Sequence[RoomSettings]) -> list[str]:
    """Create each of this calendar's rooms' calendars that is missing; return their zones."""
    created: list[str] = []
    client = connect(settings)
    try:
        for room in rooms:
            if room.calendar != settings.id or room.resource is None:
                continue
            url = resource_url(settings, room.resource)
            with calendar_errors(settings, room.zone, url, "creating the room's calendar"):
                if _exists(client, url):
                    continue
                _make_parents(client, url)
                parent, name = url.rstrip("/").rsplit("/", 1)
                home = CalendarSet(client=client, url=parent + "/")
                home.make_calendar(name=room.name, cal_id=unquote(name))
            log.info("calendar %s: created %s for room %s", settings.id, url, room.zone)
            created.append(room.zone)
    finally:
        client.close()
    return created


def make_booking(
    settings: CaldavCalendar,
    resource: str,
    uid: str,
    start: datetime,
    end: datetime,
    organiser: str,
    attendees: Sequence[str],
    title: str,
    client: DAVClient | None = None,
) -> None:
    """Put a booking in a room's calendar as its organiser's calendar client would.

    `resource` is the room's calendar path (or URL on the same server); an event with the same
    `uid` is replaced. Times must be timezone-aware. No overlap check: a person's client makes
    none either (a CalDAV server without scheduling accepts double bookings). Pass an open
    `client` (from rooms.caldav_client.connect) to book many without reconnecting.
    """
    if start.tzinfo is None or end.tzinfo is None or not start < end:
        raise BookingError(
            f"calendar {settings.id}: booking {uid[:40]}: times must be timezone-aware, "
            "start before end"
        )
    data = new_event(uid, start, end, organiser, tuple(attendees), title, ad_hoc=False)
    url = resource_url(settings, resource)
    own = client is None
    session = connect(settings) if client is None else client
    try:
        with calendar_errors(settings, resource, url, "booking"):
            Calendar(client=session, url=url).add_event(data.to_ical().decode())
    finally:
        if own:
            session.close()
