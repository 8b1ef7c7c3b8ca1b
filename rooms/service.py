"""The rooms service, driven by `step(at)`: feed, calendars, engine, journal, UC, publishing.

One thread calls `step`: the simulator with its stepped clock, `edge-rooms run` with the real
one (waking on each inbound message, or every second). A step drains the inbox into the
feed, reads the calendars when `poll_s` has passed (a calendar that fails is logged once,
and once when it heals; its rooms keep their last bookings), runs the check-in engine,
carries out its decisions through the adapters and records each in the journal (a failed
calendar call is tried again at a later poll), tells the UC tracker, and publishes the
building view and Home Assistant states when they changed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Final, Protocol

from edge.core.clock import Clock
from edge.errors import EdgeError
from rooms import homeassistant as ha
from rooms.adapters import build_adapters
from rooms.bookings import Booking, BookingAdapter, BookingError
from rooms.checkin import Action, Engine
from rooms.config import RoomSettings, ServiceConfig
from rooms.feed import Feed
from rooms.inbox import Inbound, Inbox, LinkState
from rooms.journal import NO_CALL, OK, Journal
from rooms.mqtt import RoomsLink
from rooms.publisher import Link, Publisher
from rooms.room_status import Board
from rooms.sensing import Sensing
from rooms.view import BuildingView

log = logging.getLogger(__name__)

AD_HOC_TITLE: Final = "In use (booked by the rooms service)"
LOOK_BACK: Final = timedelta(hours=12)
LOOK_AHEAD: Final = timedelta(hours=24)


class ServiceError(EdgeError):
    """The service cannot start: the message names the setting and the fix."""


class PresenceTracker(Protocol):
    """The UC presence tracker (`rooms.uc`): told crossings and meetings in progress."""

    def crossing(self, card_ref: str, inside: bool, at: datetime) -> None: ...

    def meetings(self, active: Sequence[Booking], at: datetime) -> None: ...

    def tick(self, at: datetime) -> None: ...

    def close(self) -> None: ...


def build_tracker(config: ServiceConfig) -> PresenceTracker | None:
    """Return the UC tracker for `[[presence]]`, or None when none is configured.

    Raises UcError naming the setting to fix (a missing registry or secret).
    """
    from rooms.uc.build import build_tracker as build_uc  # noqa: PLC0415 -- httpx only with UC

    return build_uc(config)


def build_service(
    config: ServiceConfig,
    clock: Clock,
    *,
    adapters: Mapping[str, BookingAdapter] | None = None,
    password: str | None = None,
) -> Service:
    """Return the service wired from its configuration: link (not started), adapters, UC."""
    if password is None:
        path = config.mqtt.password_file
        try:
            password = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise ServiceError(
                f"mqtt.password_file {path}: cannot read it ({type(error).__name__}); write "
                "the rooms account's password there (edge-provision account add rooms --role rooms)"
            ) from None
    inbox = Inbox()
    return Service(
        config,
        clock=clock,
        link=RoomsLink(config, password, inbox, clock=clock),
        inbox=inbox,
        adapters=build_adapters(config) if adapters is None else adapters,
        tracker=build_tracker(config),
    )


class Service:
    """The rooms service, complete at construction; `close()` is idempotent."""

    def __init__(
        self,
        config: ServiceConfig,
        *,
        clock: Clock,
        link: Link,
        inbox: Inbox,
        adapters: Mapping[str, BookingAdapter],
        journal: Journal | None = None,
        tracker: PresenceTracker | None = None,
    ) -> None:
        self.config = config
        self.clock = clock
        self.link = link
        self.inbox = inbox
        self.adapters = dict(adapters)
        self.journal = journal if journal is not None else Journal(config.state_path)
        self.tracker = tracker
        self.feed = Feed(config)
        self.engine = Engine(config, self.journal.memory())
        self.board = Board(config, self.engine)
        self._birth = ha.birth_topic(config) if config.homeassistant.enabled else None
        self._bookings: dict[str, list[Booking]] = {r.zone: [] for r in config.rooms}
        self._polled: dict[str, datetime] = {}
        self._failing: dict[str, str] = {}
        self.publisher = Publisher(config, link, self.journal)
        self._tracker_failed = False
        self._lock = threading.Lock()
        self._closed = False
        self._view = self.board.view(clock.now().utc, {}, self._sensing())
        self._log_config()

    def __repr__(self) -> str:
        return f"<Service {self.config.site} rooms={len(self.config.rooms)} {self.link!r}>"

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect the link (raises its error if the broker is absent or refuses)."""
        self.link.start(timeout_s)

    def view(self) -> BuildingView:
        """Return the latest building view (any thread)."""
        with self._lock:
            return self._view

    # -- the step -------------------------------------------------------------------------

    def step(self, at: datetime) -> None:
        """Do everything due at `at`; never raises for a device, calendar or UC failure."""
        if self._closed:
            raise RuntimeError("the rooms service is closed; build a new one")
        self._drain(at)
        self.feed.refresh(at)
        self._poll(at)
        sensing = self._sensing()
        for action in self.engine.evaluate(at, self._bookings, sensing):
            self._carry_out(action, at)
        self._tell_tracker(at)
        view = self.board.view(at, self._bookings, sensing)
        with self._lock:
            self._view = view
        feed = self.feed
        self.publisher.publish(view, feed.doors(), feed.door_devices(), feed.counts())

    def run(self, stop: threading.Event, wake_s: float = 1.0) -> None:
        """Step with the real clock until `stop` is set: on each message, or every second."""
        failing = False
        while not stop.is_set():
            try:
                self.step(self.clock.now().utc)
                failing = False
            except Exception:  # a bug of ours: keep the service up, say it once per spell
                if not failing:
                    log.exception("a step of the rooms service failed; stepping on")
                failing = True
            self.inbox.wait(wake_s)

    def close(self) -> None:
        """Stop publishing, close the link, adapters, tracker and journal; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            self.link.close()
        except Exception:  # the adapters, tracker and journal are closed all the same
            log.exception("closing the broker link failed")
        for adapter in self.adapters.values():
            try:
                adapter.close()
            except Exception:
                log.exception("closing a calendar adapter failed")
        if self.tracker is not None:
            try:
                self.tracker.close()
            except Exception:
                log.exception("closing the UC tracker failed")
        self.journal.close()

    # -- parts ----------------------------------------------------------------------------

    def _drain(self, at: datetime) -> None:
        items, lost = self.inbox.take()
        if lost:
            log.warning("the inbox dropped %d messages; every zone is unknown until heard", lost)
            self.feed.lost(at)
            self.feed.link(self.link.connected, at)  # a dropped link change is read off the link
        for item in items:
            if isinstance(item, LinkState):
                self.feed.link(item.up, min(item.at or at, at))
                if item.up:
                    self.publisher.again()
            elif isinstance(item, Inbound) and item.topic == self._birth:
                if item.payload == b"online":
                    self.publisher.again()
            else:
                crossing = self.feed.message(item, at)
                if crossing is not None and self.tracker is not None:
                    tell = partial(self.tracker.crossing, crossing.card_ref, crossing.inside)
                    self._guard_tracker(partial(tell, crossing.at))

    def _poll(self, at: datetime) -> None:
        every = timedelta(seconds=self.config.poll_s)
        for calendar, adapter in self.adapters.items():
            last = self._polled.get(calendar)
            if last is not None and at - last < every:
                continue
            self._polled[calendar] = at
            rooms = [r for r in self.config.rooms if r.calendar == calendar]
            try:
                found = adapter.bookings(rooms, at - LOOK_BACK, at + LOOK_AHEAD)
            except Exception as error:  # BookingError, or an adapter's own bug
                self._calendar_failed(calendar, error)
                continue
            if calendar in self._failing:
                log.info("calendar %s is readable again", calendar)
                del self._failing[calendar]
            for room in rooms:
                # An adapter leaves out a room it could not read: keep what it had.
                if room.zone in found:
                    self._bookings[room.zone] = list(found[room.zone])

    def _calendar_failed(self, calendar: str, error: Exception) -> None:
        text = str(error) if isinstance(error, BookingError) else type(error).__name__
        if calendar not in self._failing:
            log.warning("calendar %s cannot be read: %s; keeping its last bookings", calendar, text)
        self._failing[calendar] = text

    def _sensing(self) -> dict[str, Sensing]:
        zones = [r.zone for r in self.config.rooms] + [
            z for a in self.config.areas for z in a.zones
        ]
        return {zone: self.feed.sensing(zone) for zone in zones}

    def _carry_out(self, action: Action, at: datetime) -> None:
        decision = action.decision
        room = self.config.room(decision.room)
        adapter = self.adapters.get(decision.calendar)
        if decision.kind == "held":
            log.info("room %s: booking held: %s", decision.room, decision.reason)
            self._record(action, NO_CALL)
            return
        if room is None or adapter is None:
            return
        uid: str | None = None
        try:
            uid = self._call(adapter, room, action, at)
        except Exception as error:
            text = str(error) if isinstance(error, BookingError) else type(error).__name__
            log.warning("room %s: %s failed: %s", decision.room, decision.kind, text)
            self.engine.settled(decision, ok=False, at=at)
            self._record(action, f"error: {text}")
            return
        self.engine.settled(decision, ok=True, at=at)
        log.info(
            "room %s: %s (%s)", decision.room, decision.kind.replace("_", " "), decision.reason
        )
        self._record(action, OK, uid)

    def _call(
        self, adapter: BookingAdapter, room: RoomSettings, action: Action, at: datetime
    ) -> str | None:
        decision, booking = action.decision, action.booking
        if booking is None:  # an ad-hoc booking to make
            made = adapter.book(room, decision.start, decision.end, AD_HOC_TITLE)
            self._bookings[room.zone].append(made)
            return made.uid
        if decision.kind == "checked_in":
            adapter.check_in(room, booking, decision.at)
        elif decision.kind == "released":
            adapter.release(room, booking, decision.reason)
        return None

    def _record(self, action: Action, outcome: str, uid: str | None = None) -> None:
        try:
            self.journal.record(action.decision, outcome, uid)
        except Exception:
            log.exception("the journal could not record a decision on %s", action.decision.room)

    def _tell_tracker(self, at: datetime) -> None:
        tracker = self.tracker
        if tracker is None:
            return
        active = [
            b
            for found in self._bookings.values()
            for b in found
            if b.start <= at < b.end
            and not b.released
            and self.engine.kind(b) != "released"
            and self.engine.checked_in(b)
        ]
        self._guard_tracker(lambda: tracker.meetings(active, at))
        self._guard_tracker(lambda: tracker.tick(at))

    def _guard_tracker(self, call: Callable[[], None]) -> None:
        try:
            call()
            if self._tracker_failed:
                log.info("UC tracker works again")
            self._tracker_failed = False
        except Exception:
            if not self._tracker_failed:
                log.exception("UC tracker failed (logged once until it works again)")
            self._tracker_failed = True

    def _log_config(self) -> None:
        c = self.config
        calendars = ", ".join(f"{k.id} ({k.kind})" for k in c.calendars) or "none"
        log.info(
            "rooms service %s: %d rooms, %d areas, calendars %s, poll %ss, grace %s min, "
            "early %s min, stale after %ss, ad hoc after %s min for %s min, UC %s, "
            "Home Assistant %s, journal %s",
            c.site,
            len(c.rooms),
            len(c.areas),
            calendars,
            c.poll_s,
            dict(c.checkin.grace_min),
            c.checkin.early_min,
            c.checkin.stale_after_s,
            c.checkin.ad_hoc_after_min,
            c.checkin.ad_hoc_length_min,
            ", ".join(p.kind for p in c.presence) or "off",
            f"on ({c.homeassistant.prefix})" if c.homeassistant.enabled else "off",
            c.state_path,
        )
