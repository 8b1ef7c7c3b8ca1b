"""A CalDAV resource's events in a window, recurrences expanded here within bounds.

The service expands recurring events itself rather than asking the client library or the
server to: a hostile or broken rule (`FREQ=SECONDLY`, or a rule with thousands of occurrences
in a day) is then skipped by itself, quickly and in little memory, instead of drowning the
room's real bookings. Expansion is lazy (recurring_ical_events' `after`), in start order, and
stops at MAX_OCCURRENCES + 1.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta, tzinfo
from itertools import islice
from typing import Any

import recurring_ical_events  # type: ignore[import-untyped]  # no stubs, no py.typed
from icalendar import Calendar, Event

from rooms.caldav_events import EventKey, EventProblem, aware, events

MAX_OCCURRENCES = 300
"""One event's occurrences in one read window; past it the event is broken or hostile."""

# Rules finer than this book nothing a room is used for; a SECONDLY rule is a flood.
TOO_FINE = frozenset({"SECONDLY"})


def occurrences(calendar: Calendar, start: datetime, end: datetime, site: tzinfo) -> list[Event]:
    """Return the VEVENTs of one resource overlapping [start, end), recurrences expanded.

    Raises EventProblem (no personal data) for a rule finer than MINUTELY or one with more than
    MAX_OCCURRENCES occurrences in the window; recurring_ical_events' own errors propagate.
    """
    found = events(calendar)
    if not any(_recurs(event) for event in found):
        return found
    for event in found:
        rule = event.get("RRULE")
        for each in rule if isinstance(rule, list) else [rule] if rule is not None else []:
            freq = _freq(each)
            if freq in TOO_FINE:
                raise EventProblem(f"it repeats {freq}, finer than any room booking")
    query = recurring_ical_events.of(calendar)
    taken = list(islice(_before(query.after(start), end, site), MAX_OCCURRENCES + 1))
    if len(taken) > MAX_OCCURRENCES:
        raise EventProblem(
            f"it has more than {MAX_OCCURRENCES} occurrences between "
            f"{start.isoformat()} and {end.isoformat()}"
        )
    return taken


def still_at(
    calendar: Calendar, key: EventKey, start: datetime, end: datetime, site: tzinfo
) -> bool:
    """Return whether the event (or occurrence) `key` is still at [start, end) in `calendar`."""
    query = recurring_ical_events.of(calendar)
    probe = islice(_before(query.after(start), end + timedelta(seconds=1), site), MAX_OCCURRENCES)
    for event in probe:
        if not isinstance(event, Event) or str(event.get("UID", "")) != key.uid:
            continue
        if key.occurrence is not None:
            rid = event.get("RECURRENCE-ID")
            if rid is None or aware(rid.dt, site) != key.occurrence:
                continue
        try:
            times = (aware(event.start, site), aware(event.end, site))
        except (ValueError, TypeError):
            continue
        if times == (start, end):
            return True
    return False


def _before(found: Iterator[Any], end: datetime, site: tzinfo) -> Iterator[Event]:
    """Yield the events of `found` (in start order) until one starts at or after `end`."""
    for event in found:
        if not isinstance(event, Event):
            continue
        begins = event.start
        if not isinstance(begins, datetime):  # an all-day event: from the site's midnight
            begins = datetime.combine(begins, time())
        moment = aware(begins, site)
        if moment is not None and moment >= end:
            return  # in start order: nothing later overlaps
        yield event


def _recurs(event: Event) -> bool:
    return event.get("RRULE") is not None or event.get("RDATE") is not None


def _freq(rule: Any) -> str:
    try:
        value = rule.get("FREQ")
    except AttributeError:
        return ""
    if isinstance(value, list):
        value = value[0] if value else ""
    return str(value).upper()
