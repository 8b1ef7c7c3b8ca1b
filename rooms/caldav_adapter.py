"""Bookings in CalDAV room calendars (RFC 4791), read and marked with the service's account.

Each room's `resource` is its calendar, a path on the configured server. A poll asks the server
for the change tags (CalendarServer `getctag` and the RFC 6578 `sync-token`) of all the rooms'
calendars, one PROPFIND per parent collection, and sends a REPORT only for calendars that
changed since the last poll or whose cached window does not cover the one asked for.

CalDAV servers without RFC 6638 scheduling (Radicale) cannot decline on the room's behalf, so
the service account edits the event in the room's calendar: see rooms.caldav_events for what it
writes, and docs/calendars.md for how it looks to the organiser.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from caldav.calendarobjectresource import CalendarObjectResource
from caldav.collection import Calendar
from caldav.davclient import DAVClient
from caldav.lib import error as dav_error
from caldav.response import CalendarQueryResult, PropfindResult
from icalendar import Calendar as ICalendar
from icalendar import Event

from rooms.bookings import Booking, BookingError
from rooms.caldav_client import calendar_errors, connect, resource_url, same_path, shown
from rooms.caldav_events import (
    EventKey,
    EventProblem,
    booking_from,
    events,
    instance,
    mark_checked_in,
    mark_released,
    new_event,
    overlaps,
    shift,
)
from rooms.caldav_recurrence import occurrences, still_at
from rooms.config import CaldavCalendar, RoomSettings

log = logging.getLogger(__name__)

MAX_EVENT_BYTES = 256 * 1024  # one event's iCalendar text; larger is hostile or broken
MAX_BOOKINGS = 2_000  # one room's bookings in one read window; past it the rest are dropped


CTAG = "{http://calendarserver.org/ns/}getctag"
SYNC_TOKEN = "{DAV:}sync-token"  # noqa: S105 (a property name)
_CHANGE_TAGS = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">'
    "<D:prop><CS:getctag/><D:sync-token/></D:prop></D:propfind>"
)

Tag = tuple[str, str]

_QUERY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:prop><D:getetag/><C:calendar-data/></D:prop>"
    '<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">'
    '<C:time-range start="{start}" end="{end}"/>'
    "</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>"
)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


@dataclass(frozen=True, slots=True)
class _Read:
    """A room calendar's bookings over [start, end) as read at change tag `tag`."""

    tag: Tag | None
    start: datetime
    end: datetime
    bookings: tuple[Booking, ...]

    def serves(self, tag: Tag | None, start: datetime, end: datetime) -> bool:
        return tag is not None and tag == self.tag and self.start <= start and end <= self.end


class CaldavAdapter:
    """The bookings of the rooms whose calendars one CalDAV server holds."""

    def __init__(
        self,
        settings: CaldavCalendar,
        timezone: str | tzinfo,
        client: DAVClient | None = None,
    ) -> None:
        """Connect with `settings` (or the given client); floating times are in `timezone`."""
        self.settings = settings
        self.timezone = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        self._client = client if client is not None else connect(settings)
        self._reads: dict[tuple[str, str], _Read] = {}
        self._closed = False
        log.info(
            "calendar %s: CalDAV at %s as %s, floating times in %s",
            settings.id,
            shown(settings.url),
            settings.username,
            self.timezone,
        )

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"{len(self._reads)} calendars cached"
        return f"<CaldavAdapter {self.settings.id} {shown(self.settings.url)} {state}>"

    def bookings(
        self, rooms: Sequence[RoomSettings], start: datetime, end: datetime
    ) -> dict[str, list[Booking]]:
        """Return each room's bookings overlapping [start, end), released ones included.

        A room whose calendar cannot be read is logged and answered with its last bookings read
        (left out if it was never read); BookingError only when no room could be read. One event
        that cannot be read is skipped with a warning naming the resource, never its content.
        """
        self._check_open()
        mine = [r for r in rooms if r.calendar == self.settings.id and r.resource is not None]
        urls = {r.zone: self._url(r) for r in mine}
        tags = self._change_tags(mine, urls)
        result: dict[str, list[Booking]] = {}
        failed: list[BookingError] = []
        for room in mine:
            url = urls[room.zone]
            read = self._reads.get((room.zone, url))
            if read is None or not read.serves(tags.get(url), start, end):
                try:
                    read = self._read(room, url, tags.get(url), start, end + shift(start, end))
                except BookingError as error:
                    # One unreadable calendar must not blank the others, nor its own room.
                    log.warning("%s; keeping its last bookings", error)
                    failed.append(error)
                    if read is None:
                        continue
                else:
                    self._reads[(room.zone, url)] = read
            result[room.zone] = [b for b in read.bookings if overlaps(b, start, end)]
        if failed and len(failed) == len(mine):
            raise failed[0]
        return result

    def check_in(self, room: RoomSettings, booking: Booking, at: datetime) -> None:
        """Mark the booking (or its occurrence) checked in at `at`; the first mark stays."""
        self._edit(room, booking, lambda event: mark_checked_in(event, at), "checking in")

    def release(self, room: RoomSettings, booking: Booking, reason: str) -> None:
        """Cancel the booking (only this occurrence of a recurring one), saying why."""
        self._edit(room, booking, lambda event: mark_released(event, reason), "releasing")

    def book(self, room: RoomSettings, start: datetime, end: datetime, title: str) -> Booking:
        """Book the room as the service account; refuse if a live booking overlaps."""
        self._check_open()
        if start.tzinfo is None or end.tzinfo is None or not start < end:
            raise BookingError(
                f"calendar {self.settings.id}, room {room.zone}: an ad-hoc booking needs "
                "timezone-aware times with start before end"
            )
        taken = [b for b in self.bookings([room], start, end).get(room.zone, []) if not b.released]
        if taken:
            raise BookingError(
                f"calendar {self.settings.id}, room {room.zone}: already booked "
                f"{taken[0].start.isoformat()}..{taken[0].end.isoformat()}; "
                "an ad-hoc booking never double-books a room"
            )
        url = self._url(room)
        uid = f"{uuid.uuid4()}@edge-rooms"
        organiser = self.settings.username
        made = new_event(uid, start, end, organiser, (), title, ad_hoc=True)
        with calendar_errors(self.settings, room.zone, url, "booking"):
            Calendar(client=self._client, url=url).add_event(made.to_ical().decode())
        self._reads.pop((room.zone, url), None)
        booking = booking_from(events(made)[0], self.settings.id, room.zone, self.timezone)
        assert booking is not None  # new_event writes times, never dates
        return booking

    def __enter__(self) -> CaldavAdapter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection; idempotent."""
        if not self._closed:
            self._closed = True
            self._client.close()

    def _check_open(self) -> None:
        if self._closed:
            raise BookingError(f"calendar {self.settings.id}: the adapter is closed")

    def _url(self, room: RoomSettings) -> str:
        assert room.resource is not None
        return resource_url(self.settings, room.resource)

    def _change_tags(self, rooms: list[RoomSettings], urls: dict[str, str]) -> dict[str, Tag]:
        """Return each calendar's change tag, one Depth-1 PROPFIND per parent collection."""
        tags: dict[str, Tag] = {}
        parents: dict[str, list[str]] = {}
        for url in set(urls.values()):
            parents.setdefault(url.rstrip("/").rsplit("/", 1)[0] + "/", []).append(url)
        by_url = {urls[r.zone]: r.zone for r in rooms}
        for parent, children in parents.items():
            found = self._propfind_tags(by_url[children[0]], parent, 1)
            for url in children:
                tag = next((t for href, t in found.items() if same_path(href, url)), None)
                if tag is None:  # the parent cannot be listed: ask the calendar itself
                    try:
                        alone = self._propfind_tags(by_url[url], url, 0)
                    except BookingError:
                        continue  # no tag: the read says what is wrong, for this room only
                    tag = next(iter(alone.values()), None)
                if tag is not None:
                    tags[url] = tag
        return tags

    def _propfind_tags(self, room: str, url: str, depth: int) -> dict[str, Tag]:
        try:
            with calendar_errors(self.settings, room, url, "asking what changed"):
                response = self._client.propfind(url, props=_CHANGE_TAGS, depth=depth)
        except BookingError:
            if depth == 1:  # a parent we may not list; each calendar is asked alone
                return {}
            raise
        if response.status == 404:
            with calendar_errors(self.settings, room, url, "asking what changed"):
                raise dav_error.NotFoundError(url)
        tags: dict[str, Tag] = {}
        for found in response.results or []:
            if not isinstance(found, PropfindResult):
                continue
            ctag = found.properties.get(CTAG)
            token = found.properties.get(SYNC_TOKEN)
            if ctag or token:
                tags[found.href] = (str(ctag or ""), str(token or ""))
        return tags

    def _read(
        self, room: RoomSettings, url: str, tag: Tag | None, start: datetime, end: datetime
    ) -> _Read:
        # A plain calendar-query: the library's search would parse and expand every event
        # itself, where one hostile event (a flood of occurrences, a TZID naming a directory)
        # would blind the room or stall the service. Here each is read, and skipped, alone.
        query = _QUERY.format(start=_stamp(start), end=_stamp(end))
        with calendar_errors(self.settings, room.zone, url, "reading bookings"):
            response = self._client.report(url, query, depth=1)
            if response.status == 404:
                raise dav_error.NotFoundError(url)
            found = response.parse_calendar_query()
        bookings: list[Booking] = []
        for item in found:
            bookings.extend(self._bookings_of(room, item, start, end))
        if len(bookings) > MAX_BOOKINGS:
            log.warning(
                "calendar %s, room %s: %d bookings in %s..%s, kept %d: single events first, "
                "then occurrences from the earliest",
                self.settings.id,
                room.zone,
                len(bookings),
                start.isoformat(),
                end.isoformat(),
                MAX_BOOKINGS,
            )
            # A recurring event can never crowd a single booking out.
            bookings = sorted(bookings, key=lambda b: ("#" in b.uid, b.start))[:MAX_BOOKINGS]
        return _Read(tag, start, end, tuple(bookings))

    def _bookings_of(
        self, room: RoomSettings, item: CalendarQueryResult, start: datetime, end: datetime
    ) -> list[Booking]:
        """Return one resource's bookings in the window; skip (and say so) a broken one."""
        name = item.href.rstrip("/").rsplit("/", 1)[-1][:40]
        try:
            data = item.calendar_data or ""
            if len(data) > MAX_EVENT_BYTES:
                raise EventProblem(f"its text is {len(data)} bytes (more than {MAX_EVENT_BYTES})")
            whole = ICalendar.from_ical(data)
            if not isinstance(whole, ICalendar):
                raise EventProblem("it is not one VCALENDAR")
            found = []
            for event in occurrences(whole, start, end, self.timezone):
                booking = booking_from(event, self.settings.id, room.zone, self.timezone)
                if booking is not None:
                    found.append(booking)
            return found
        except Exception as problem:  # hostile text may break any parser step
            # One broken or hostile event (an unknown TZID such as `Asia` raises OSError in
            # zoneinfo) must not hide the room's other bookings.
            reason = problem if isinstance(problem, EventProblem) else type(problem).__name__
            log.warning(
                "calendar %s, room %s: event %s skipped: %s",
                self.settings.id,
                room.zone,
                name,
                reason,
            )
            return []

    def _edit(
        self, room: RoomSettings, booking: Booking, change: Callable[[Event], bool], doing: str
    ) -> None:
        """Change the booking's event with If-Match; on a concurrent edit re-read, retry once."""
        self._check_open()
        url = self._url(room)
        key = EventKey.of(booking.uid)
        calendar = Calendar(client=self._client, url=url)
        for attempt in (1, 2):
            with calendar_errors(self.settings, room.zone, url, doing):
                try:
                    resource = calendar.get_event_by_uid(key.uid)
                except dav_error.NotFoundError:
                    raise BookingError(
                        f"calendar {self.settings.id}, room {room.zone}: {booking!r} is no "
                        f"longer in the calendar (its organiser deleted it?); nothing to do"
                    ) from None
                assert isinstance(resource, CalendarObjectResource)
                if not resource.etag:
                    resource.load()
                whole = resource.icalendar_instance
                if not self._still_at(whole, key, booking):
                    raise BookingError(
                        f"calendar {self.settings.id}, room {room.zone}: the booking moved "
                        f"since it was read; it will be judged again ({doing} not done)"
                    )
                if not change(instance(whole, key, self.timezone)):
                    return
                resource.icalendar_instance = whole
                try:
                    resource.save(
                        only_this_recurrence=False, increase_seqno=False, precondition="etag"
                    )
                except dav_error.ETagMismatchError:
                    if attempt == 2:
                        raise BookingError(
                            f"calendar {self.settings.id}, room {room.zone}: the booking kept "
                            f"changing while {doing}; it is tried again at the next poll"
                        ) from None
                    log.info(
                        "calendar %s, room %s: %r changed while %s; read again",
                        self.settings.id,
                        room.zone,
                        booking,
                        doing,
                    )
                    continue
            self._reads.pop((room.zone, url), None)
            return

    def _still_at(self, whole: ICalendar, key: EventKey, booking: Booking) -> bool:
        """Return whether the event is still at the booking's times (its organiser may move it)."""
        try:
            return still_at(whole, key, booking.start, booking.end, self.timezone)
        except Exception as problem:  # hostile text may break any parser step
            raise EventProblem(f"the event cannot be read ({type(problem).__name__})") from None
