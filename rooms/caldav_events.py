"""Read bookings out of CalDAV events and write the service's marks into them (pure iCalendar).

What the service writes into a room's event, all of it readable by any calendar client:
- `X-EDGE-CHECKED-IN:20261201T010203Z`: presence checked the booking in at that time (UTC).
- `X-EDGE-AD-HOC:TRUE`: the service booked the room itself for use nobody had booked.
- a release: `STATUS:CANCELLED`, the reason in a `COMMENT` and one line appended to
  `DESCRIPTION`, `SEQUENCE` raised so clients take the change. A recurring event is released one
  occurrence at a time, by an overriding instance (`RECURRENCE-ID` + `STATUS:CANCELLED`): clients
  show a cancelled instance as cancelled (struck through, "Cancelled"), whereas an `EXDATE` makes
  the occurrence vanish without a word of why; and the released booking stays visible here.

A booking's `uid` is the event's UID, and for an occurrence of a recurring event the UID, `#`
and its RECURRENCE-ID in UTC (`abc@host#20261201T010000Z`): every occurrence is its own booking.
All-day events (DTSTART a date) are not bookings: in a room calendar they are notes such as
"closed for cleaning"; they are never checked in or released and never block an ad-hoc booking.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from icalendar import Calendar, Event, vCalAddress, vText

from rooms.bookings import Booking

CHECKED_IN = "X-EDGE-CHECKED-IN"
AD_HOC = "X-EDGE-AD-HOC"
STAMP = "%Y%m%dT%H%M%SZ"
MAX_ATTENDEES = 500  # a room meeting with more is hostile or broken data: the event is skipped
MAX_TEXT = 200  # titles, addresses and reasons are cut to this many characters
MAX_UID = 1_000  # Exchange's UIDs run past 100 characters; past this one is hostile
RELEASE_NOTE = "Released by the building: "
_OCCURRENCE = re.compile(r"^(?P<uid>.+)#(?P<rid>\d{8}T\d{6}Z)$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class EventProblem(ValueError):
    """One event cannot be read as a booking; the message says why (no personal data)."""


@dataclass(frozen=True, slots=True)
class EventKey:
    """Which event, and which occurrence of it, a booking is."""

    uid: str
    occurrence: datetime | None  # the RECURRENCE-ID in UTC; None: the event itself

    @classmethod
    def of(cls, booking_uid: str) -> EventKey:
        """Split a booking's uid into the event's UID and its occurrence."""
        match = _OCCURRENCE.match(booking_uid)
        if match is None:
            return cls(booking_uid, None)
        occurrence = datetime.strptime(match["rid"], STAMP).replace(tzinfo=UTC)
        return cls(match["uid"], occurrence)

    def booking_uid(self) -> str:
        if self.occurrence is None:
            return self.uid
        return f"{self.uid}#{self.occurrence.astimezone(UTC).strftime(STAMP)}"


def clean_text(value: object, limit: int = MAX_TEXT) -> str:
    """Return one line of at most `limit` characters, control characters replaced."""
    return _CONTROL.sub(" ", str(value)).strip()[:limit]


def address(value: object) -> str:
    """Return a calendar address without its `mailto:`, cut to size."""
    text = str(value)
    if text[:7].lower() == "mailto:":
        text = text[7:]
    return clean_text(text)


def aware(value: datetime | date, site: tzinfo) -> datetime | None:
    """Return a timezone-aware instant; floating times are the site's; None for a date."""
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=site)
    return value


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _is_room(attendee: Any) -> bool:
    params = getattr(attendee, "params", {})
    return str(params.get("CUTYPE", "")).upper() in ("ROOM", "RESOURCE")


def _checked_in(event: Event) -> datetime | None:
    raw = event.get(CHECKED_IN)
    if raw is None:
        return None
    try:
        return datetime.strptime(str(raw), STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None  # someone else's junk in our property is not a check-in


def booking_from(event: Event, calendar_id: str, room: str, site: tzinfo) -> Booking | None:
    """Return the booking an expanded VEVENT is, None for an all-day event.

    Raises EventProblem when the event is broken or hostile (bad times, too many attendees).
    """
    try:
        start_value = event.start
        end_value = event.end
    except (ValueError, TypeError) as error:
        raise EventProblem(f"its start or end cannot be read ({type(error).__name__})") from None
    start = aware(start_value, site)
    end = aware(end_value, site)
    if start is None or end is None:
        return None
    if end < start:
        raise EventProblem("it ends before it starts")
    uid = str(event.get("UID", ""))
    if not uid or len(uid) > MAX_UID or _CONTROL.search(uid):
        # Cutting or cleaning a UID would name another event when the booking is marked.
        raise EventProblem(f"its UID is empty, longer than {MAX_UID} or holds control characters")
    people = _listed(event.get("ATTENDEE"))
    if len(people) > MAX_ATTENDEES:
        raise EventProblem(f"it lists {len(people)} attendees (more than {MAX_ATTENDEES})")
    occurrence = None
    rid = event.get("RECURRENCE-ID")
    if rid is not None:
        try:
            occurrence = aware(rid.dt, site)
        except (ValueError, TypeError, AttributeError):
            raise EventProblem("its RECURRENCE-ID cannot be read") from None
    declined = any(
        _is_room(p) and str(p.params.get("PARTSTAT", "")).upper() == "DECLINED" for p in people
    )
    released = (
        str(event.get("STATUS", "")).upper() == "CANCELLED"
        or str(event.get("TRANSP", "")).upper() == "TRANSPARENT"
        or declined
    )
    organisers = _listed(event.get("ORGANIZER"))  # RFC 5545 allows one; a list is hostile
    return Booking(
        calendar=calendar_id,
        room=room,
        uid=EventKey(uid, occurrence.astimezone(UTC) if occurrence else None).booking_uid(),
        start=start,
        end=end,
        organiser=address(organisers[0]) if organisers else "",
        attendees=tuple(address(p) for p in people if not _is_room(p)),
        title=clean_text(event.get("SUMMARY", "")),
        checked_in=_checked_in(event),
        released=released,
        ad_hoc=str(event.get(AD_HOC, "")).upper() == "TRUE",
    )


def events(calendar: Calendar) -> list[Event]:
    """Return the calendar's VEVENTs."""
    return [c for c in calendar.walk("VEVENT") if isinstance(c, Event)]


def _master(calendar: Calendar, uid: str) -> Event:
    for event in events(calendar):
        if str(event.get("UID", "")) == uid and event.get("RECURRENCE-ID") is None:
            return event
    raise EventProblem("the event has no master instance")


def _same_instant(value: Any, instant: datetime, site: tzinfo) -> bool:
    moment = aware(getattr(value, "dt", None) or date.min, site)
    return moment is not None and moment == instant


def instance(calendar: Calendar, key: EventKey, site: tzinfo) -> Event:
    """Return the VEVENT to mark for `key`, adding an overriding instance where needed."""
    master = _master(calendar, key.uid)
    recurs = master.get("RRULE") is not None or master.get("RDATE") is not None
    if key.occurrence is None and not recurs:
        return master
    occurrence = key.occurrence
    if occurrence is None:
        # RFC 4791 lets a server leave RECURRENCE-ID off the first expanded instance: a plain
        # UID of a recurring event is its first occurrence, never the whole series.
        occurrence = aware(master.start, site)
        if occurrence is None:
            raise EventProblem("an all-day event is not a booking")
    for event in events(calendar):
        if str(event.get("UID", "")) == key.uid and _same_instant(
            event.get("RECURRENCE-ID"), occurrence, site
        ):
            return event
    if not recurs:
        raise EventProblem("the event does not recur")
    first = master.start
    if not isinstance(first, datetime):
        raise EventProblem("an all-day event is not a booking")
    # RECURRENCE-ID takes the master's DTSTART form: same zone, or floating in the site's.
    if first.tzinfo is None:
        start = occurrence.astimezone(site).replace(tzinfo=None)
    else:
        start = occurrence.astimezone(first.tzinfo)
    override = Event()
    skip = {"RRULE", "RDATE", "EXDATE", "DTSTART", "DTEND", "DURATION", "SEQUENCE", "DTSTAMP"}
    for name in master:
        if name not in skip:
            override[name] = master[name]
    override.add("RECURRENCE-ID", start)
    override.add("DTSTART", start)
    override.add("DTEND", start + master.duration)
    override.add("DTSTAMP", datetime.now(UTC))
    override.add("SEQUENCE", int(master.get("SEQUENCE", 0)))
    calendar.add_component(override)
    return override


def mark_checked_in(event: Event, at: datetime) -> bool:
    """Write the check-in mark; keep the first one. Return whether the event changed."""
    if _checked_in(event) is not None:
        return False
    event[CHECKED_IN] = vText(at.astimezone(UTC).strftime(STAMP))
    return True


def mark_released(event: Event, reason: str) -> bool:
    """Cancel the instance, saying why. Return whether the event changed."""
    if str(event.get("STATUS", "")).upper() == "CANCELLED":
        return False
    why = clean_text(reason) or "nobody came"
    event["STATUS"] = vText("CANCELLED")
    event.add("COMMENT", RELEASE_NOTE + why)
    description = str(event.get("DESCRIPTION", ""))
    event["DESCRIPTION"] = vText((description + "\n\n" if description else "") + RELEASE_NOTE + why)
    event["SEQUENCE"] = int(event.get("SEQUENCE", 0)) + 1
    return True


def new_event(
    uid: str,
    start: datetime,
    end: datetime,
    organiser: str,
    attendees: tuple[str, ...],
    title: str,
    ad_hoc: bool,
) -> Calendar:
    """Return a VCALENDAR with one event, as a person's calendar client would PUT it."""
    calendar = Calendar()
    calendar.add("PRODID", "-//cityhall-edge//rooms//EN")
    calendar.add("VERSION", "2.0")
    event = Event()
    event.add("UID", uid)
    event.add("DTSTAMP", datetime.now(UTC))
    event.add("DTSTART", start.astimezone(UTC))
    event.add("DTEND", end.astimezone(UTC))
    event.add("SUMMARY", clean_text(title))
    event.add("STATUS", "CONFIRMED")
    event.add("TRANSP", "OPAQUE")
    event.add("SEQUENCE", 0)
    if organiser:
        event.add("ORGANIZER", vCalAddress(f"mailto:{organiser}"))
    for person in attendees:
        attendee = vCalAddress(f"mailto:{person}")
        attendee.params["PARTSTAT"] = "ACCEPTED"
        event.add("ATTENDEE", attendee)
    if ad_hoc:
        event.add(AD_HOC, "TRUE")
    calendar.add_component(event)
    return calendar


def overlaps(booking: Booking, start: datetime, end: datetime) -> bool:
    return booking.start < end and start < booking.end


def shift(start: datetime, end: datetime) -> timedelta:
    """Return how far past `end` a read reaches, so the next polls come from the cache."""
    return max(end - start, timedelta(hours=1))
