"""Microsoft 365 room mailboxes as a booking calendar, through Microsoft Graph (app-only).

Each room's `resource` is its room mailbox. The app holds the application permission
`Calendars.ReadWrite`, limited by an application access policy to the room mailboxes.

- bookings: `GET /users/{room}/calendarView` per room with `Prefer: outlook.timezone="UTC"`,
  following `@odata.nextLink` (https://learn.microsoft.com/graph/api/user-list-calendarview).
  The caller's window moves every poll, and a delta query is bound to one fixed window, so this
  reads each room's view whole: one request per room per poll (forty rooms: forty requests).
- check-in: an open extension `jp.cityhall.edge.rooms` on the room's copy of the event
  (`POST /users/{room}/events/{id}/extensions`,
  https://learn.microsoft.com/graph/api/opentypeextension-post-opentypeextension), read back
  with `$expand=extensions($filter=id eq '...')`. It holds `checkedInAt` and `adHoc`.
- release: the room declines (`POST /users/{room}/events/{id}/decline` with the reason as
  `comment` and `sendResponse: true`, https://learn.microsoft.com/graph/api/event-decline), so
  the organiser gets the reason; a booking this service made itself is deleted instead.
- book: `POST /users/{room}/events`, busy, with the extension marking it ad hoc.

A check-in or a release first reads the event (`GET /users/{room}/events/{id}`,
https://learn.microsoft.com/graph/api/event-get) and acts only if it still has the booking's
times: an event its organiser moved is judged again at the next poll, never released unseen.

429 and 503: a read waits as `Retry-After` asks while rooms.rest.READ_WAIT_S lasts in all; a
write (and the read before it) never waits, it fails at once and the next poll decides again on
fresh evidence. A 401 fetches a new token once. The organiser, attendees and subject are
personal data: they go into `Booking` only, never into a log line or an error.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

from rooms.bookings import Booking, BookingError
from rooms.config import GraphCalendar, RoomSettings
from rooms.graph_auth import GraphAuthError, GraphToken
from rooms.graph_events import EXTENSION, EXTENSION_ID, MAX_TEXT, parse_event
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

READING = "reading bookings"
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.]{2,60}")

_SELECT = "id,start,end,organizer,attendees,subject,isCancelled,responseStatus"
PAGE_SIZE = 50
MAX_PAGES = 40  # 2,000 events in one room's window is past any real day: the server is wrong

# What an operator does about each refusal, by HTTP status.
_FIXES = {
    400: "the request was refused as malformed; check base_url points at Graph v1.0",
    401: "the token was refused; check tenant and client_id",
    403: "grant Calendars.ReadWrite (application) with admin consent, and include the room "
    "mailbox in the app's application access policy",
    404: "check the room's `resource`: it must be the room mailbox's address",
    409: "the event changed meanwhile; the next poll reads it again",
}


class GraphBookings:
    """Bookings of the room mailboxes of one Microsoft 365 tenant."""

    def __init__(
        self,
        settings: GraphCalendar,
        token: GraphToken,
        http_client: HttpClient,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self._token = token
        self._http = http_client
        self._sleep = sleep
        self._base = settings.base_url.rstrip("/")
        self._origin = _origin(self._base)
        # Releases made by this process: a declined or deleted event may leave the room's view.
        self._reads = RoomReads()
        self._closed = False
        log.info(
            "calendar %s: Microsoft Graph %s, app %s, tenant %s",
            settings.id,
            self._base,
            settings.client_id,
            settings.tenant,
        )

    def __repr__(self) -> str:
        return f"<GraphBookings {self.settings.id} {self._base}>"

    def bookings(
        self, rooms: Sequence[RoomSettings], start: datetime, end: datetime
    ) -> dict[str, list[Booking]]:
        """Return each room's bookings overlapping [start, end), released ones included.

        A room that cannot be read is logged and answered with its last bookings read (left
        out if it was never read); BookingError only when no room could be read.
        """
        return self._reads.read(rooms, start, end, self._room_view)

    def check_in(self, room: RoomSettings, booking: Booking, at: datetime) -> None:
        """Record `at` in the room's copy of the event (its open extension)."""
        self._still_there(room, booking, "check-in")
        path = f"/users/{_part(_mailbox(room))}/events/{_part(booking.uid)}/extensions"
        body = {
            "@odata.type": "microsoft.graph.openTypeExtension",
            "extensionName": EXTENSION,
            "checkedInAt": _utc_text(at),
            "adHoc": booking.ad_hoc,
        }
        reply = self._call("POST", self._base + path, room, "check-in", json_body=body)
        if reply.status == 409:  # the extension is there already (an ad-hoc booking): update it
            del body["extensionName"]
            reply = self._call(
                "PATCH", f"{self._base}{path}/{EXTENSION}", room, "check-in", json_body=body
            )
        self._expect(reply, (200, 201, 204), room, "check-in")

    def release(self, room: RoomSettings, booking: Booking, reason: str) -> None:
        """Decline the event as the room, telling the organiser `reason`."""
        self._still_there(room, booking, "release")
        path = f"/users/{_part(_mailbox(room))}/events/{_part(booking.uid)}"
        if booking.ad_hoc:  # the room organised it itself: nobody to tell, delete it
            reply = self._call("DELETE", self._base + path, room, "release")
            if reply.status != 404:  # gone already is released
                self._expect(reply, (204,), room, "release")
        else:
            body = {"comment": reason[:1000], "sendResponse": True}
            reply = self._call(
                "POST", f"{self._base}{path}/decline", room, "release", json_body=body
            )
            self._expect(reply, (200, 202, 204), room, "release")
        self._reads.released(room, booking)

    def book(self, room: RoomSettings, start: datetime, end: datetime, title: str) -> Booking:
        """Book the room in its own calendar, busy, marked ad hoc."""
        body = {
            "subject": title[:MAX_TEXT],
            "start": {"dateTime": _utc_text(start, zone=False), "timeZone": "UTC"},
            "end": {"dateTime": _utc_text(end, zone=False), "timeZone": "UTC"},
            "showAs": "busy",
            "extensions": [
                {
                    "@odata.type": "microsoft.graph.openTypeExtension",
                    "extensionName": EXTENSION,
                    "adHoc": True,
                }
            ],
        }
        path = f"/users/{_part(_mailbox(room))}/events"
        reply = self._call("POST", self._base + path, room, "booking", json_body=body)
        self._expect(reply, (201,), room, "booking")
        event = self._json(reply, room, "booking")
        uid = event.get("id")
        if not isinstance(uid, str) or not uid or len(uid) > 1024:
            raise BookingError(self._what(room, "booking") + ": the reply has no event id")
        return Booking(self.settings.id, room.zone, uid, start, end, title=title, ad_hoc=True)

    def close(self) -> None:
        """Close the HTTP connections; idempotent."""
        if not self._closed:
            self._closed = True
            self._http.close()

    # -- reading

    def _still_there(self, room: RoomSettings, booking: Booking, doing: str) -> None:
        """Raise BookingError unless the event still has the booking's start and end."""
        path = f"/users/{_part(_mailbox(room))}/events/{_part(booking.uid)}"
        params = {"$select": "id,start,end"}
        reply = self._call("GET", self._base + path, room, doing, params=params)
        self._expect(reply, (200,), room, doing)
        event = self._json(reply, room, doing)
        try:
            now = parse_event(self.settings.id, room.zone, event)
        except (ValueError, TypeError, KeyError) as error:
            raise BookingError(
                f"{self._what(room, doing)}: the event cannot be read: {error}"
            ) from None
        if (now.start, now.end) != (booking.start, booking.end):
            raise BookingError(
                f"{self._what(room, doing)}: the booking moved since it was read; "
                "it will be judged again"
            )

    def _room_view(self, room: RoomSettings, start: datetime, end: datetime) -> list[Booking]:
        params: dict[str, str] | None = {
            "startDateTime": _utc_text(start),
            "endDateTime": _utc_text(end),
            "$select": _SELECT,
            "$expand": f"extensions($filter=id eq '{EXTENSION_ID}')",
            "$top": str(PAGE_SIZE),
        }
        url = f"{self._base}/users/{_part(_mailbox(room))}/calendarView"
        found: list[Booking] = []
        for _ in range(MAX_PAGES):
            reply = self._call("GET", url, room, READING, params=params)
            self._expect(reply, (200,), room, READING)
            page = self._json(reply, room, READING)
            events = page.get("value")
            if not isinstance(events, list):
                raise BookingError(self._what(room, READING) + ": no `value` list")
            for event in events:
                booking = self._booking(room, event)
                if booking is not None:
                    found.append(booking)
            next_link = page.get("@odata.nextLink")
            if next_link is None:
                return found
            if not isinstance(next_link, str) or _origin(next_link) != self._origin:
                # Following it would hand the token to another host.
                raise BookingError(
                    self._what(room, READING)
                    + f": @odata.nextLink leaves {self._origin}; refusing to follow it"
                )
            url, params = next_link, None
        raise BookingError(
            self._what(room, READING)
            + f": more than {MAX_PAGES} pages of events; the server's paging is broken"
        )

    def _booking(self, room: RoomSettings, event: object) -> Booking | None:
        """Return the event as a Booking, or None (logged) when it is malformed."""
        try:
            return parse_event(self.settings.id, room.zone, event)
        except (ValueError, TypeError, KeyError) as error:
            uid = event.get("id") if isinstance(event, dict) else None
            label = uid[:12] if isinstance(uid, str) else "?"
            log.warning(
                "calendar %s room %s: event %s skipped: %s",
                self.settings.id,
                room.zone,
                label,
                error,
            )
            return None

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
        """Send one Graph request: a read waits briefly for a busy server, one new token on 401."""
        if self._closed:
            raise BookingError(f"calendar {self.settings.id}: used after close()")
        what = self._what(room, doing)

        def send() -> Reply:
            headers = {
                "Authorization": f"Bearer {self._token.value()}",
                "Prefer": 'outlook.timezone="UTC"',
            }
            return exchange(
                self._http, method, url, what=what, headers=headers, params=params,
                json_body=json_body,
            )  # fmt: skip

        budget = READ_WAIT_S if doing == READING else WRITE_WAIT_S
        try:
            reply = with_backoff(send, sleep=self._sleep, what=what, budget_s=budget)
            if reply.status == 401:
                self._token.forget()
                reply = with_backoff(send, sleep=self._sleep, what=what, budget_s=budget)
        except RestError as error:  # its text names the calendar and the room already
            raise BookingError(str(error)) from None
        except GraphAuthError as error:
            raise BookingError(f"calendar {self.settings.id}: {error}") from None
        return reply

    def _expect(self, reply: Reply, ok: tuple[int, ...], room: RoomSettings, doing: str) -> None:
        if reply.status in ok:
            return
        code = ""
        try:
            error = reply.json_object("error").get("error")
            found = error.get("code") if isinstance(error, dict) else None
            if isinstance(found, str) and _ERROR_CODE.fullmatch(found):
                code = f" {found}"
        except RestError:
            pass
        fix = _FIXES.get(reply.status, "Graph failed; the next poll tries again")
        raise BookingError(f"{self._what(room, doing)}: HTTP {reply.status}{code}; {fix}")

    def _json(self, reply: Reply, room: RoomSettings, doing: str) -> dict[str, Any]:
        try:
            return reply.json_object(self._what(room, doing))
        except RestError as error:
            raise BookingError(str(error)) from None

    def _what(self, room: RoomSettings, doing: str) -> str:
        return f"calendar {self.settings.id} room {room.zone}: {doing}"


def open_graph(settings: GraphCalendar, *, timeout_s: float = 20.0) -> GraphBookings:
    """Build the adapter for one [[calendars]] entry: read its secret, open its HTTP client."""
    try:
        secret = settings.client_secret_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise BookingError(
            f"calendar {settings.id}: cannot read client_secret_file "
            f"{settings.client_secret_file}: {type(error).__name__}; check the path and its mode"
        ) from None
    if not secret:
        raise BookingError(
            f"calendar {settings.id}: client_secret_file {settings.client_secret_file} is empty; "
            "put the app's client secret value in it"
        )
    client = http_client(timeout_s)
    token = GraphToken(settings.tenant, settings.client_id, secret, settings.token_url, client)
    return GraphBookings(settings, token, client)


def _mailbox(room: RoomSettings) -> str:
    if not room.resource:
        raise BookingError(f"room {room.zone}: no `resource`; set it to the room mailbox")
    return room.resource


def _part(text: str) -> str:
    return quote(text, safe="@")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


def _utc_text(moment: datetime, *, zone: bool = True) -> str:
    text = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + "Z" if zone else text
