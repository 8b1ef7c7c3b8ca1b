"""The service's step in-process: calendar failures, retries, restarts, publishing.

The link here is a recorder (the live tests use a real mosquitto); the messages are the
devices' real payloads, put on the inbox as the link would.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge.link import topics
from rooms.adapters import Unavailable, build_adapters
from rooms.bookings import Booking
from rooms.config import RoomSettings, ServiceConfig
from rooms.inbox import Inbound, Inbox, LinkState
from rooms.journal import Journal
from rooms.service import Service
from simulator.clock import FakeClock
from tests.rooms.service_site import (
    CARD,
    GATE,
    GATE_DOOR,
    MEETING,
    ROOT,
    SITE,
    MemoryCalendar,
    event,
    occupancy,
    service_config,
    status,
    will,
)

T0 = datetime(2031, 4, 1, 1, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


class RecordingLink:
    """Records what the service publishes."""

    def __init__(self) -> None:
        self.connected = True
        self.sent: list[tuple[str, str]] = []
        self.closed = 0

    def start(self, timeout_s: float = 10.0) -> None:
        """Nothing to connect."""

    def publish(self, topic: str, payload: str, *, retain: bool = True) -> None:
        self.sent.append((topic, payload))

    def close(self) -> None:
        self.closed += 1

    def topics(self, prefix: str) -> list[str]:
        return [t for t, _ in self.sent if t.startswith(prefix)]


class Running:
    def __init__(self, config: ServiceConfig, calendar: MemoryCalendar, start: datetime) -> None:
        self.clock = FakeClock(start)
        self.link = RecordingLink()
        self.inbox = Inbox()
        self.service = Service(
            config, clock=self.clock, link=self.link, inbox=self.inbox, adapters={"cal": calendar}
        )
        self.inbox.put(LinkState(up=True))

    def step(self, minutes: float = 0.5) -> None:
        """Advance, with the node's periodic status and a vacant meeting room, and step."""
        self.clock.advance(minutes * 60)
        self.inbox.put(status())
        self.inbox.put(occupancy(MEETING, False))
        self.service.step(self.clock.now().utc)

    def until(self, at: datetime) -> None:
        while self.clock.now().utc < at:
            self.step()


@pytest.fixture
def config(tmp_path: Path) -> ServiceConfig:
    return service_config(tmp_path, homeassistant={"enabled": True})


def test_a_failing_calendar_is_logged_once_keeps_its_bookings_and_heals(
    config: ServiceConfig, caplog: pytest.LogCaptureFixture
) -> None:
    calendar = MemoryCalendar()
    calendar.add(MEETING, T0, T0 + 60 * MIN, "b1")
    run = Running(config, calendar, T0 - 30 * MIN)
    run.step()
    assert len(run.service.view().rooms[0].next) == 1
    calendar.fail = "calendar cal: the server answered 503; try again later"
    with caplog.at_level(logging.INFO, logger="rooms.service"):
        run.until(T0 - 20 * MIN)
        assert len(run.service.view().rooms[0].next) == 1  # kept
        calendar.fail = None
        run.until(T0 - 15 * MIN)
    failed = [r for r in caplog.records if "cannot be read" in r.getMessage()]
    healed = [r for r in caplog.records if "readable again" in r.getMessage()]
    assert (len(failed), len(healed)) == (1, 1)


class OneRoomUnreadable(MemoryCalendar):
    """A calendar whose adapter could read every room but one (it leaves that one out)."""

    def __init__(self) -> None:
        super().__init__()
        self.unreadable: set[str] = set()

    def bookings(
        self, rooms: Sequence[RoomSettings], start: datetime, end: datetime
    ) -> dict[str, list[Booking]]:
        found = super().bookings(rooms, start, end)
        return {zone: items for zone, items in found.items() if zone not in self.unreadable}


def test_a_room_its_calendar_could_not_read_keeps_its_bookings(config: ServiceConfig) -> None:
    calendar = OneRoomUnreadable()
    calendar.add(MEETING, T0, T0 + 60 * MIN, "b1")
    run = Running(config, calendar, T0 - 30 * MIN)
    run.step()
    calendar.unreadable.add(MEETING)
    run.until(T0 - 20 * MIN)
    room = next(r for r in run.service.view().rooms if r.zone == MEETING)
    assert [slot.start for slot in room.next] == [T0]  # still booked, not shown free


def test_a_refused_release_is_tried_again_while_the_room_stays_vacant(
    config: ServiceConfig,
) -> None:
    calendar = MemoryCalendar()
    calendar.add(MEETING, T0, T0 + 60 * MIN, "b1")
    run = Running(config, calendar, T0 - 30 * MIN)
    run.until(T0 + 9 * MIN)
    calendar.fail = "calendar cal: the room refused"
    run.until(T0 + 11 * MIN)
    assert calendar.released == []
    calendar.fail = None
    run.until(T0 + 13 * MIN)
    assert [uid for _, uid, _ in calendar.released] == ["b1"]
    outcomes = [e.outcome for e in run.service.journal.entries(kind="released")]
    assert outcomes[0] == "error: calendar cal: the room refused"
    assert outcomes[-1] == "ok"
    run.service.close()


def test_a_release_not_yet_in_the_calendar_is_dropped_when_someone_arrives(
    config: ServiceConfig,
) -> None:
    calendar = MemoryCalendar()
    calendar.add(MEETING, T0, T0 + 60 * MIN, "b1")
    run = Running(config, calendar, T0 - 30 * MIN)
    run.until(T0 + 9 * MIN)
    calendar.fail = "calendar cal: the server answered 503"
    run.until(T0 + 11 * MIN)
    run.inbox.put(occupancy(MEETING, True))  # the organiser arrives late and stays
    run.service.step(run.clock.now().utc)
    calendar.fail = None
    for _ in range(6):
        run.clock.advance(30)
        run.inbox.put(status())
        run.inbox.put(occupancy(MEETING, True))
        run.service.step(run.clock.now().utc)
    assert calendar.released == []
    assert calendar.checked_in == [(MEETING, "b1")]
    assert run.service.view().rooms[0].status == "in-use"
    run.service.close()


def test_a_release_not_yet_in_the_calendar_is_held_when_the_sensor_goes_quiet(
    config: ServiceConfig,
) -> None:
    calendar = MemoryCalendar()
    calendar.add(MEETING, T0, T0 + 60 * MIN, "b1")
    run = Running(config, calendar, T0 - 30 * MIN)
    run.until(T0 + 9 * MIN)
    calendar.fail = "calendar cal: the server answered 503"
    run.until(T0 + 11 * MIN)
    run.inbox.put(will())  # the node drops off: nobody can say the room is still empty
    run.service.step(run.clock.advance(30).utc)
    calendar.fail = None
    run.service.step(run.clock.advance(60).utc)
    run.service.step(run.clock.advance(60).utc)
    assert calendar.released == []
    [held] = run.service.journal.entries(kind="held")
    assert "offline" in held.reason
    run.service.close()


def test_a_release_the_calendar_never_took_is_held_after_a_restart(
    config: ServiceConfig,
) -> None:
    calendar = MemoryCalendar()
    calendar.add(MEETING, T0, T0 + 60 * MIN, "b1")
    first = Running(config, calendar, T0 - 30 * MIN)
    first.until(T0 + 9 * MIN)
    calendar.fail = "calendar cal: the server answered 503"
    first.until(T0 + 11 * MIN)
    first.service.close()
    calendar.fail = None
    again = Running(config, calendar, T0 + 31 * MIN)
    again.inbox.put(occupancy(MEETING, True))  # in use now; the node's status not heard yet
    again.service.step(again.clock.now().utc)
    again.until(T0 + 40 * MIN)
    assert calendar.released == []
    assert "restarted" in again.service.view().rooms[0].reason
    again.service.close()


def test_a_restarted_service_does_not_release_again(config: ServiceConfig) -> None:
    calendar = MemoryCalendar()
    calendar.add(MEETING, T0, T0 + 60 * MIN, "b1")
    first = Running(config, calendar, T0 - 10 * MIN)
    first.until(T0 + 11 * MIN)
    first.service.close()
    first.service.close()
    assert first.link.closed == 1
    assert len(calendar.released) == 1
    again = Running(config, calendar, T0 + 11 * MIN)
    again.until(T0 + 20 * MIN)
    assert len(calendar.released) == 1
    assert again.service.view().rooms[0].status == "released"
    again.service.close()


def test_the_view_is_published_when_it_changes_and_discovery_on_ha_s_birth(
    config: ServiceConfig,
) -> None:
    run = Running(config, MemoryCalendar(), T0)
    run.step()
    view_topic = topics.rooms_view(ROOT, SITE)
    assert run.link.topics(view_topic) == [view_topic]
    discovery = len(run.link.topics("homeassistant/"))
    assert discovery > 0
    run.step()
    run.step()
    assert run.link.topics(view_topic) == [view_topic]  # nothing changed
    assert len(run.link.topics("homeassistant/")) == discovery
    run.inbox.put(Inbound("homeassistant/status", b"online"))
    run.step()
    assert len(run.link.topics("homeassistant/")) == 2 * discovery  # configs and states again
    views = len(run.link.topics(view_topic))
    run.inbox.put(occupancy(MEETING, True))
    run.service.step(run.clock.now().utc)
    assert len(run.link.topics(view_topic)) == views + 1
    run.service.close()


def test_the_journal_keeps_the_last_view(config: ServiceConfig) -> None:
    run = Running(config, MemoryCalendar(), T0)
    run.step()
    run.service.close()
    journal = Journal(config.state_path, read_only=True)
    saved = journal.last_view()
    journal.close()
    assert saved is not None
    assert MEETING in saved


def test_a_calendar_that_cannot_be_opened_says_why(tmp_path: Path) -> None:
    config = service_config(tmp_path)
    (tmp_path / "password").unlink()
    [adapter] = build_adapters(config).values()
    assert isinstance(adapter, Unavailable)
    assert "calendar cal is not available" in adapter._fail().args[0]


class RecordingTracker:
    """Records what the service tells UC presence; its second tick fails."""

    def __init__(self) -> None:
        self.crossings: list[tuple[str, bool]] = []
        self.active: list[list[str]] = []
        self.ticks = 0
        self.closed = False

    def crossing(self, card_ref: str, inside: bool, at: datetime) -> None:
        self.crossings.append((card_ref, inside))

    def meetings(self, active: Sequence[Booking], at: datetime) -> None:
        self.active.append([b.uid for b in active])

    def tick(self, at: datetime) -> None:
        self.ticks += 1
        if self.ticks == 2:
            raise RuntimeError("the UC server's adapter has a bug")

    def close(self) -> None:
        self.closed = True


def test_uc_presence_hears_crossings_and_checked_in_meetings(config: ServiceConfig) -> None:
    calendar = MemoryCalendar()
    calendar.add(MEETING, T0, T0 + 60 * MIN, "b1")
    tracker = RecordingTracker()
    clock, inbox = FakeClock(T0 - MIN), Inbox()
    service = Service(
        config, clock=clock, link=RecordingLink(), inbox=inbox, adapters={"cal": calendar},
        tracker=tracker,
    )  # fmt: skip
    inbox.put(LinkState(up=True))
    inbox.put(status())
    inbox.put(occupancy(MEETING, True))
    crossing = event(
        GATE, "access", "crossing", 1, card_ref=CARD, door=GATE_DOOR, from_zone="lobby",
        to_zone="staff-area",
    )  # fmt: skip
    inbox.put(crossing)
    service.step(clock.now().utc)
    assert tracker.crossings == [(CARD, True)]
    assert tracker.active == [[]]  # checked in, not started yet
    assert calendar.checked_in == [(MEETING, "b1")]
    service.step(clock.advance(90).utc)  # the tracker fails: the service steps on
    assert tracker.active[-1] == ["b1"]  # in progress now
    service.step(clock.advance(30).utc)
    assert tracker.ticks == 3
    service.close()
    assert tracker.closed


def test_lost_messages_leave_no_stale_vacant_reading(tmp_path: Path) -> None:
    config = service_config(tmp_path)
    calendar = MemoryCalendar()
    calendar.add(MEETING, T0, T0 + 60 * MIN, "b1")
    clock, inbox = FakeClock(T0 - 30 * MIN), Inbox(max_waiting=2)
    service = Service(
        config, clock=clock, link=RecordingLink(), inbox=inbox, adapters={"cal": calendar}
    )
    inbox.put(LinkState(up=True))
    service.step(clock.now().utc)
    while clock.now().utc < T0 + 3 * MIN:
        clock.advance(30)
        inbox.put(status())
        inbox.put(occupancy(MEETING, False))
        service.step(clock.now().utc)
    clock.advance(30)
    for occupied in (True, False, True, False):  # overflows: the arrival is among the lost
        inbox.put(occupancy(MEETING, occupied))
    service.step(clock.now().utc)
    while clock.now().utc < T0 + 15 * MIN:
        clock.advance(30)
        inbox.put(status())
        inbox.put(occupancy(MEETING, False))
        service.step(clock.now().utc)
    assert inbox.dropped == 2
    assert calendar.released == []
    [held] = service.journal.entries(kind="held")
    assert "no trustworthy reading" in held.reason
    service.close()


def test_a_bad_home_assistant_entity_never_stops_the_view(config: ServiceConfig) -> None:
    run = Running(config, MemoryCalendar(), T0)
    run.step()
    publisher = run.service.publisher
    view_topic = topics.rooms_view(ROOT, SITE)
    views = len(run.link.topics(view_topic))
    run.inbox.put(occupancy(MEETING, True))
    run.service.step(run.clock.now().utc)
    publisher.publish(run.service.view(), {}, {}, {"Zone_X": 3})  # HA refuses such a topic
    assert publisher.failures == 1
    run.inbox.put(occupancy(MEETING, False))
    run.service.step(run.clock.now().utc)
    assert len(run.link.topics(view_topic)) == views + 2
    run.service.close()


def test_a_zone_that_is_not_a_slug_never_stops_the_service(config: ServiceConfig) -> None:
    run = Running(config, MemoryCalendar(), T0)
    run.step()
    body = occupancy("staff-area", True, device=GATE, count=3).payload
    run.inbox.put(Inbound(f"{ROOT}/{SITE}/{GATE}/occupancy/Zone_X", body))
    run.step()
    view_topic = topics.rooms_view(ROOT, SITE)
    views = len(run.link.topics(view_topic))
    run.inbox.put(occupancy(MEETING, True))
    run.service.step(run.clock.now().utc)
    assert len(run.link.topics(view_topic)) == views + 1
    assert run.service.feed.rejected["bad-zone-id"] == 1
    run.service.close()


def test_home_assistant_hears_of_a_door_removed_while_the_service_was_down(
    config: ServiceConfig,
) -> None:
    first = Running(config, MemoryCalendar(), T0)
    first.step()
    door_configs = [t for t in first.link.topics("homeassistant/") if "gate_1f_door" in t]
    assert door_configs
    first.service.close()
    assert config.devices_dir is not None
    (config.devices_dir / f"{GATE}.toml").unlink()
    again = Running(config, MemoryCalendar(), T0 + MIN)
    again.step()
    emptied = [t for t, payload in again.link.sent if t in door_configs and payload == ""]
    assert sorted(emptied) == sorted(door_configs)
    again.service.close()


def test_a_door_not_heard_since_start_is_unknown_to_home_assistant(config: ServiceConfig) -> None:
    run = Running(config, MemoryCalendar(), T0)
    run.step()
    run.inbox.put(event(GATE, "door", "opened", 1, door=GATE_DOOR))
    run.step()
    states = [(t, p) for t, p in run.link.sent if "/rooms/ha/" in t and GATE_DOOR in t]
    assert len(states) >= 2
    assert states[0][1] != states[-1][1]  # unknown first, then open
    run.service.close()


class BrokenLink(RecordingLink):
    def close(self) -> None:
        raise RuntimeError("the link was dropped")


def test_closing_closes_everything_even_when_the_link_fails(config: ServiceConfig) -> None:
    calendar = MemoryCalendar()
    service = Service(
        config, clock=FakeClock(T0), link=BrokenLink(), inbox=Inbox(), adapters={"cal": calendar}
    )
    service.close()
    assert calendar.closed
