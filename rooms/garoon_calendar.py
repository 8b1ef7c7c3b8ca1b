"""Cybozu Garoon facilities as a booking calendar, through Garoon's REST API.

Each room's `resource` is its facility id. A service user signs in with
`X-Cybozu-Authorization: base64(login:password)`; it needs the rights to view and change the
facilities' events. The REST API needs Garoon on cybozu.com or the package 4.10 or later
(https://cybozu.dev/ja/garoon/docs/rest-api/overview/garoon-rest-api-overview/).

- bookings: `GET /api/v1/schedule/events` with `target=<facility>`, `targetType=facility`,
  `rangeStart`, `rangeEnd`, paged by `limit`/`offset` while `hasNext`
  (https://cybozu.dev/ja/garoon/docs/rest-api/schedule/get-schedule-events/). Garoon takes one
  target per query: one request per facility per poll.
- check-in: a line appended to the event's `notes` (its memo), `[rooms] checked in at <time>`,
  read back from `notes`. Notes are in every version that has the REST API and in the list's
  reply; additional items must be switched on by an administrator, and the datastore needs 5.9
  and a request per event. Anyone who may edit the event can write such a line too.
- release: the facility is taken off the event (`PATCH /api/v1/schedule/events/{id}` with the
  remaining `facilities`, https://cybozu.dev/ja/garoon/docs/rest-api/schedule/update-schedule-event/)
  and the reason appended to `notes`; Garoon tells the attendees the event changed. Notes of
  MAX_NOTES characters or more are never rewritten: a release leaves them out of the PATCH, a
  check-in is refused. A repeating event is not released: Garoon's PATCH changes the
  original, so every occurrence would lose the room.
- check-in and release read the event first and act only if it still has the booking's
  times: an event its organiser moved is judged again at the next poll.
- 429/503: a read waits as asked while rooms.rest.READ_WAIT_S lasts; a write never waits.
- book: `POST /api/v1/schedule/events`, `eventType: REGULAR`, the facility, the service user
  as attendee, marked ad hoc in `notes`
  (https://cybozu.dev/ja/garoon/docs/rest-api/schedule/add-schedule-event).

Subjects, notes and attendees are personal data: they go into `Booking` only, never into a log
line or an error.
"""

from __future__ import annotations

import base64
import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from rooms.bookings import Booking, BookingError
from rooms.config import GaroonCalendar, RoomSettings
from rooms.garoon_events import AD_HOC, MAX_TEXT, parse_event
from rooms.rest import (
    READ_WAIT_S,
    WRITE_WAIT_S,
    HttpClient,
    Reply,
    RestError,
    exchange,
    http_client,
    with_backoff,
)
from rooms.room_reads import RoomReads

log = logging.getLogger(__name__)

PAGE_SIZE = 100
MAX_PAGES = 20
MAX_NOTES = 60_000  # what this service appends to; longer notes are left alone
FIELDS = "id,eventType,subject,notes,start,end,isStartOnly,creator,attendees,facilities,"
FIELDS += "facilityUsageRequests"
READING = "reading bookings"
_ERROR_CODE = re.compile(r"[A-Z0-9_]{2,40}")

_FIXES = {
    400: "Garoon refused the request",
    401: "check username and password_file; the user must sign in with a password "
    "(not two-factor or SAML only)",
    403: "give the service user the rights to view and change this facility's events",
    404: "check base_url (Garoon 4.10 or later) and the room's `resource` (a facility id)",
}


class GaroonBookings:
    """Bookings of the facilities of one Garoon."""

    def __init__(
        self,
        settings: GaroonCalendar,
        password: str,
        http_client: HttpClient,
        *,
        timezone: str = "Asia/Tokyo",
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._http = http_client
        self._zone = ZoneInfo(timezone)
        self._timezone = timezone
        self._sleep = sleep
        self.api = api_root(settings.base_url)
        pair = f"{settings.username}:{password}".encode()
        self._auth = base64.b64encode(pair).decode("ascii")
        self._reads = RoomReads()
        self._closed = False
        log.info("calendar %s: Garoon %s as %s", settings.id, self.api, settings.username)

    def __repr__(self) -> str:
        return f"<GaroonBookings {self.settings.id} {self.api}>"

    def bookings(
        self, rooms: Sequence[RoomSettings], start: datetime, end: datetime
    ) -> dict[str, list[Booking]]:
        """Return each room's bookings overlapping [start, end), released ones included.

        A room that cannot be read is logged and answered with its last bookings read (left
        out if it was never read); BookingError only when no room could be read.
        """
        return self._reads.read(rooms, start, end, self._facility_events)

    def check_in(self, room: RoomSettings, booking: Booking, at: datetime) -> None:
        """Append the check-in time to the event's notes."""
        event = self._event(room, booking, "check-in")
        line = f"[rooms] checked in at {at.astimezone(self._zone).isoformat(timespec='seconds')}"
        notes = _append(event, line)
        if notes is None:
            raise BookingError(
                f"{self._what(room, 'check-in')}: the event's notes are longer than "
                f"{MAX_NOTES} characters; the check-in is not written, so the notes stay whole"
            )
        self._patch(room, booking, event, {"notes": notes}, "check-in")

    def release(self, room: RoomSettings, booking: Booking, reason: str) -> None:
        """Take the facility off the event, with the reason in its notes."""
        event = self._event(room, booking, "release")
        if event.get("eventType") == "REPEATING":
            raise BookingError(
                f"{self._what(room, 'release')}: event {booking.uid} repeats, and Garoon would "
                "take the room off every occurrence; release this one in Garoon by hand"
            )
        facility = _facility(room)
        listed = event.get("facilities")
        kept = [
            {"id": str(f["id"])}
            for f in (listed if isinstance(listed, list) else [])
            if isinstance(f, dict) and str(f.get("id")) != facility
        ]
        line = f"[rooms] released {room.name}: {' '.join(reason.split())[:500]}"
        notes = _append(event, line)
        changes: dict[str, Any] = {"facilities": kept}
        if notes is not None:  # notes too long to append to are left as they are
            changes["notes"] = notes
        self._patch(room, booking, event, changes, "release")
        self._reads.released(room, booking)

    def book(self, room: RoomSettings, start: datetime, end: datetime, title: str) -> Booking:
        """Book the facility as the service user, marked ad hoc."""
        body = {
            "eventType": "REGULAR",
            "subject": title[:MAX_TEXT],
            "notes": AD_HOC,
            "start": self._garoon_time(start),
            "end": self._garoon_time(end),
            "attendees": [{"type": "USER", "code": self.settings.username}],
            "facilities": [{"id": _facility(room)}],
        }
        reply = self._call("POST", f"{self.api}/schedule/events", room, "booking", json_body=body)
        event = self._answer(reply, (200, 201), room, "booking")
        uid = event.get("id")
        if not isinstance(uid, str | int) or not str(uid).isdigit():
            raise BookingError(self._what(room, "booking") + ": the reply has no event id")
        return Booking(
            self.settings.id, room.zone, str(uid), start, end,
            organiser=self.settings.username, title=title, ad_hoc=True,
        )  # fmt: skip

    def close(self) -> None:
        """Close the HTTP connections; idempotent."""
        if not self._closed:
            self._closed = True
            self._http.close()

    # -- reading

    def _facility_events(self, room: RoomSettings, start: datetime, end: datetime) -> list[Booking]:
        facility = _facility(room)
        found: list[Booking] = []
        offset = 0
        for _ in range(MAX_PAGES):
            params = {
                "rangeStart": self._local(start),
                "rangeEnd": self._local(end),
                "target": facility,
                "targetType": "facility",
                "limit": str(PAGE_SIZE),
                "offset": str(offset),
                "orderBy": "start asc",
                "fields": FIELDS,
            }
            url = f"{self.api}/schedule/events"
            reply = self._call("GET", url, room, READING, params=params)
            data = self._answer(reply, (200,), room, READING)
            events = data.get("events")
            if not isinstance(events, list):
                raise BookingError(self._what(room, READING) + ": no `events` list")
            offset += len(events)
            for event in events:
                booking = self._booking(room, facility, event)
                if booking is not None:
                    found.append(booking)
            if data.get("hasNext") is not True:
                return found
            if not events:
                break  # more to come, yet nothing came
        raise BookingError(
            self._what(room, READING)
            + f": hasNext after {offset} events in {MAX_PAGES} pages or an empty page; "
            "the server's paging is broken"
        )

    def _booking(self, room: RoomSettings, facility: str, event: object) -> Booking | None:
        try:
            return parse_event(self.settings.id, room.zone, facility, event)
        except (ValueError, TypeError, KeyError) as error:
            uid = event.get("id") if isinstance(event, dict) else None
            label = str(uid)[:12] if isinstance(uid, str | int) else "?"
            log.warning(
                "calendar %s room %s: event %s skipped: %s",
                *(self.settings.id, room.zone, label, error),
            )
            return None

    def _event(self, room: RoomSettings, booking: Booking, doing: str) -> dict[str, Any]:
        """Return the event as it is now; raise BookingError if it no longer has the booking's
        times (its organiser moved it: the next poll judges it again)."""
        reply = self._call("GET", self._event_url(booking), room, doing)
        event = self._answer(reply, (200,), room, doing)
        try:
            now = parse_event(self.settings.id, room.zone, _facility(room), event)
        except (ValueError, TypeError, KeyError) as error:
            raise BookingError(
                f"{self._what(room, doing)}: the event cannot be read: {error}"
            ) from None
        if now is None or not _same_times(now, booking, event.get("eventType") == "REPEATING"):
            raise BookingError(
                f"{self._what(room, doing)}: the booking moved since it was read; "
                "it will be judged again"
            )
        return event

    def _patch(
        self,
        room: RoomSettings,
        booking: Booking,
        event: dict[str, Any],
        changes: dict[str, Any],
        doing: str,
    ) -> None:
        # Sent with the event's own times: Garoon 4.10's PATCH requires `start`.
        body = {"start": event.get("start"), "end": event.get("end"), **changes}
        if not isinstance(body["start"], dict):
            raise BookingError(f"{self._what(room, doing)}: the event has no start")
        if not isinstance(body["end"], dict):
            del body["end"]
        reply = self._call("PATCH", self._event_url(booking), room, doing, json_body=body)
        self._answer(reply, (200,), room, doing)

    # -- the exchange

    def _call(
        self,
        method: str,
        url: str,
        room: RoomSettings,
        doing: str,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        if self._closed:
            raise BookingError(f"calendar {self.settings.id}: used after close()")
        what = self._what(room, doing)
        headers = {"X-Cybozu-Authorization": self._auth}

        def send() -> Reply:
            return exchange(
                self._http, method, url, what=what, headers=headers, params=params,
                json_body=json_body,
            )  # fmt: skip

        budget = READ_WAIT_S if doing == READING else WRITE_WAIT_S
        try:
            return with_backoff(send, sleep=self._sleep, what=what, budget_s=budget)
        except RestError as error:
            raise BookingError(str(error)) from None

    def _answer(
        self, reply: Reply, ok: tuple[int, ...], room: RoomSettings, doing: str
    ) -> dict[str, Any]:
        what = self._what(room, doing)
        if reply.status not in ok:
            fix = _FIXES.get(reply.status, "Garoon failed; the next poll tries again")
            raise BookingError(f"{what}: HTTP {reply.status}{_error_code(reply)}; {fix}")
        try:
            return reply.json_object(what)
        except RestError as error:
            raise BookingError(str(error)) from None

    def _event_url(self, booking: Booking) -> str:
        return f"{self.api}/schedule/events/{quote(booking.uid.split(':')[0], safe='')}"

    def _garoon_time(self, moment: datetime) -> dict[str, str]:
        return {"dateTime": self._local(moment), "timeZone": self._timezone}

    def _local(self, moment: datetime) -> str:
        return moment.astimezone(self._zone).isoformat(timespec="seconds")

    def _what(self, room: RoomSettings, doing: str) -> str:
        return f"calendar {self.settings.id} room {room.zone}: {doing}"


def open_garoon(
    settings: GaroonCalendar, *, timezone: str = "Asia/Tokyo", timeout_s: float = 20.0
) -> GaroonBookings:
    """Build the adapter for one [[calendars]] entry: read its password, open its HTTP client."""
    try:
        password = settings.password_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise BookingError(
            f"calendar {settings.id}: cannot read password_file {settings.password_file}: "
            f"{type(error).__name__}; check the path and its mode"
        ) from None
    if not password:
        raise BookingError(
            f"calendar {settings.id}: password_file {settings.password_file} is empty; "
            "put the service user's password in it"
        )
    client = http_client(timeout_s)
    return GaroonBookings(settings, password, client, timezone=timezone)


def api_root(base_url: str) -> str:
    """Return the REST root for a Garoon URL: cloud host, `/g`, or a package's grn.cgi/grn.exe."""
    base = base_url.rstrip("/")
    if base.endswith(("/grn.cgi", "/grn.exe", "/g")):
        return f"{base}/api/v1"
    return f"{base}/g/api/v1"


def _append(event: dict[str, Any], line: str) -> str | None:
    """Return the notes with `line` added; None when they are too long to write back whole."""
    notes = event.get("notes")
    notes = notes if isinstance(notes, str) else ""
    written = f"{notes}\n{line}" if notes else line
    return written if len(written) <= MAX_NOTES else None


def _same_times(now: Booking, booking: Booking, repeats: bool) -> bool:
    """Whether the event read now still has the booking's times.

    A repeating event is read as its first occurrence: its time of day and length must match.
    """
    if not repeats:
        return (now.start, now.end) == (booking.start, booking.end)
    zone = booking.start.tzinfo
    return (now.start.astimezone(zone).time(), now.end - now.start) == (
        booking.start.time(),
        booking.end - booking.start,
    )


def _facility(room: RoomSettings) -> str:
    if not room.resource or not room.resource.isdigit():
        raise BookingError(
            f"room {room.zone}: resource {room.resource!r} is not a Garoon facility id; "
            "use the facility's number from Garoon's facility settings"
        )
    return room.resource


def _error_code(reply: Reply) -> str:
    """Name Garoon's or cybozu.com's error code (`error.errorCode` or `code`), if any."""
    try:
        data = reply.json_object("error")
    except RestError:
        return ""
    error = data.get("error")
    code = error.get("errorCode") if isinstance(error, dict) else data.get("code")
    return f" {code}" if isinstance(code, str) and _ERROR_CODE.fullmatch(code) else ""
