"""One site's share of a collector's batch, once judged: what to store and what was refused.

The collector judges each message alone (console.collector) and files what passes here, per
site; `write` stores it with that site's name, each status, occupancy and view alone so that
the log refusing one row refuses only that message, and the events in one append.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from console import rooms_view
from console.intake import Refused, parse
from console.log import CentralLog, LogError, identity
from console.refusals import BAD_MESSAGES, CLAIM_REFUSED, Refusal
from edge.core.clock import utc_text
from edge.link import topics

UNKNOWN: Final = "(unknown)"  # the lane and refusals of every device not provisioned
LINK_STATE: Final = "state"  # topics.bridge_state: "1" linked, "0" cut (retained)
LINK_STORED: Final = "stored"  # topics.bridge_stored: the site broker's stored-message count
FUTURE: Final = timedelta(minutes=5)  # a device clock this far ahead is not believed
EPOCH: Final = datetime(2020, 1, 1, tzinfo=UTC)  # nor one before the system existed
_COUNT: Final = re.compile(rb"[0-9]{1,12}")


class Refuse(Exception):
    """Refuse one message: why, whose it is, and which console alarm it raises."""

    def __init__(self, reason: str, device: str, alarm: str = BAD_MESSAGES) -> None:
        super().__init__(reason)
        self.reason = reason
        self.device = device
        self.alarm = alarm


class Judged:
    """What one site's messages of a batch hold once judged."""

    def __init__(self, site: str, now: datetime) -> None:
        self.site = site
        self.now = now
        self._now_text = utc_text(now)
        self._latest = now + FUTURE
        self.events: list[dict[str, Any]] = []
        self.implausible: dict[str, str] = {}
        self.statuses: list[tuple[str, str]] = []
        self.occupancy: list[tuple[str, str, int, dict[str, Any], str]] = []
        self.rooms: list[tuple[str, str]] = []  # the rooms service's (view | status, body)
        self.links: list[tuple[bool | None, int | None]] = []  # (connected, stored)
        self.newest: str | None = None  # the newest plausible event time of the batch
        self.refused: list[Refusal] = []

    def event(self, body: dict[str, Any], device: str) -> None:
        """Accept an event for storing, once its id names this device and its seq."""
        try:
            event_id, owner, _ = identity(body)
        except LogError as error:
            raise Refuse(str(error)[:200], device) from None
        if owner != device:
            raise Refuse("event id names another device", device)
        order = self.plausible(body.get("ts"))
        if order is not None:
            self.implausible[event_id] = order
        elif self.newest is None or str(body["ts"]) > self.newest:
            self.newest = str(body["ts"])
        self.events.append(body)

    def plausible(self, ts: object) -> str | None:
        """Return None if a device's `ts` can order its event, else the time to use instead."""
        now = self._now_text
        if not isinstance(ts, str) or len(ts) > 40:
            return now
        try:
            when = datetime.fromisoformat(ts)
        except ValueError:
            return now
        if when.tzinfo is None or utc_text(when) != ts:
            return now  # not the contract's UTC text: it would sort among the others wrongly
        return now if not EPOCH <= when <= self._latest else None

    def link(self, where: str, payload: bytes) -> None:
        """Accept the site's bridge state ("1" / "0") or its broker's stored-message count."""
        if not payload:
            return  # a retained message cleared: the last one kept stays
        if where == LINK_STATE and payload in (b"0", b"1"):
            self.links.append((payload == b"1", None))
        elif where == LINK_STORED and _COUNT.fullmatch(payload.strip()):
            self.links.append((None, int(payload.strip())))
        elif where in (LINK_STATE, LINK_STORED):
            wanted = "1 or 0" if where == LINK_STATE else "a count"
            raise Refuse(f"bridge {where} is not {wanted}", topics.BRIDGE)
        else:
            raise Refuse("not a bridge topic the console reads", topics.BRIDGE)

    def write(self, log: CentralLog, now: str) -> list[str]:
        """Store what was accepted; refuse alone what the database refuses. Return the ids of
        the events stored (duplicates left out)."""
        site = self.site
        for device, status in self.statuses:
            self._alone(log, device, lambda: log.set_status(device, status, now, site=site))  # noqa: B023
        for device, zone, count, body, ts in self.occupancy:
            occupied = bool(body.get("occupied"))
            self._alone(
                log,
                device,
                lambda: log.set_occupancy(device, zone, count, occupied, ts, site=site),  # noqa: B023
            )
        for what, kept in self.rooms:
            self._alone(log, topics.ROOMS, lambda: log.set_rooms(what, kept, now, site=site))  # noqa: B023
        for connected, held in self.links:
            self._alone(
                log,
                topics.BRIDGE,
                lambda: log.set_site_link(site, connected=connected, stored=held, at=now),  # noqa: B023
            )
        if not self.events:
            return []  # no transaction, no lock on the site's chain head
        try:
            return log.append(self.events, now, self.implausible, site=site)
        except Exception as error:
            if log.outage(error):
                raise
        stored: list[str] = []
        for event in self.events:  # one of them the log refuses: store the others one by one
            try:
                stored += log.append([event], now, self.implausible, site=site)
            except Exception as error:
                if log.outage(error):
                    raise
                self._refused_by_log(str(event.get("id", "")).rsplit(":", 1)[0], error)
        return stored

    def _alone(self, log: CentralLog, device: str, write: Callable[[], None]) -> None:
        """Write one status, occupancy, view or link (called at once); refuse it if the log
        refuses it."""
        try:
            write()
        except Exception as error:
            if log.outage(error):
                raise
            self._refused_by_log(device, error)

    def _refused_by_log(self, device: str, error: Exception) -> None:
        reason = f"the log refused it: {type(error).__name__}"
        self.refused.append(Refusal(device, BAD_MESSAGES, reason, "", 0, ""))


def parsed(payload: bytes, device: str) -> Any:
    """Return the payload read under the intake's limits, or refuse it."""
    try:
        return parse(payload)
    except Refused as refused:
        raise Refuse(str(refused), device) from None


def rooms(where: str, payload: bytes, judged: Judged) -> None:
    """Keep the rooms service's view or status once judged (console.rooms_view)."""
    if not payload:
        return  # a retained message cleared: the last one kept stays
    try:
        if where == rooms_view.VIEW:
            judged.rooms.append((where, rooms_view.judge_view(payload, judged.site)))
        elif where == rooms_view.STATUS:
            judged.rooms.append((where, rooms_view.judge_status(payload)))
        else:
            raise Refuse("not a rooms service topic the console reads", topics.ROOMS)
    except rooms_view.ViewRefused as refused:
        raise Refuse(str(refused), topics.ROOMS) from None


def claim(problem: str | None, device: str) -> None:
    """Refuse the message if its device may not claim what it says."""
    if problem is not None:
        raise Refuse(problem, device, CLAIM_REFUSED)
