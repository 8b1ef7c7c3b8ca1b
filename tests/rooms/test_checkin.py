"""The check-in engine: tables of cases, and properties over random sensor histories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rooms.bookings import Booking
from rooms.checkin import Engine, Memory
from rooms.config import ServiceConfig
from rooms.sensing import Sensing, Span
from tests.rooms.service_site import BOOTH, MEETING, NODE, service_config

T0 = datetime(2031, 4, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
MIN = timedelta(minutes=1)
LONG_AGO = T0 - timedelta(hours=3)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> ServiceConfig:
    return service_config(tmp_path_factory.mktemp("checkin"))


def booking(
    start: datetime = T0, minutes: int = 60, uid: str = "b1", room: str = MEETING, **extra: object
) -> Booking:
    return Booking("cal", room, uid, start, start + minutes * MIN, **extra)  # type: ignore[arg-type]


def seen(
    spans: tuple[Span, ...] = (),
    healthy_since: datetime | None = LONG_AGO,
    occupied: bool | None = None,
    reason: str = "",
    zone: str = MEETING,
) -> Sensing:
    if occupied is None and healthy_since is not None:
        occupied = bool(spans) and spans[-1][1] is None
    return Sensing(
        zone=zone,
        device=NODE,
        occupied=occupied if healthy_since is not None else None,
        spans=spans,
        healthy_since=healthy_since,
        reason=reason,
        last_status_at=LONG_AGO,
    )


def run(
    config: ServiceConfig,
    at: datetime,
    found: list[Booking],
    sensing: Sensing,
    memory: Memory | None = None,
) -> list[tuple[str, str, str]]:
    engine = Engine(config, memory or Memory())
    actions = engine.evaluate(at, {sensing.zone: found}, {sensing.zone: sensing})
    return [(a.decision.kind, a.decision.uid, a.decision.reason) for a in actions]


def kinds(result: list[tuple[str, str, str]]) -> list[str]:
    return [kind for kind, _, _ in result]


CASES = [
    # (what, at, sensing, expected kinds)
    ("presence in the early minutes checks in", T0, seen(((T0 - 3 * MIN, None),)), ["checked_in"]),
    (
        "a short visit in the window checks in",
        T0 + 20 * MIN,
        seen(((T0 + 2 * MIN, T0 + 4 * MIN),)),
        ["checked_in"],
    ),
    ("no presence before the grace ends: nothing yet", T0 + 9 * MIN, seen(), []),
    ("no presence at start + grace: released", T0 + 10 * MIN, seen(), ["released"]),
    (
        "presence only before the window: released",
        T0 + 10 * MIN,
        seen(((T0 - 30 * MIN, T0 - 6 * MIN),)),
        ["released"],
    ),
    (
        "in use after the grace time (late): checked in, never released",
        T0 + 12 * MIN,
        seen(((T0 + 11 * MIN, None),)),
        ["checked_in"],
    ),
    (
        "sensor offline: held, not released",
        T0 + 10 * MIN,
        seen(healthy_since=None, reason="sensors-2f offline since 10:02"),
        ["held"],
    ),
    (
        "sensor healthy only since the start (a gap in the window): held",
        T0 + 10 * MIN,
        seen(healthy_since=T0),
        ["held"],
    ),
    (
        "service started after the window: no evidence, held",
        T0 + 25 * MIN,
        seen(healthy_since=T0 + 20 * MIN),
        ["held"],
    ),
    ("booking over before anyone looked: nothing", T0 + 61 * MIN, seen(), []),
    ("window not open yet: nothing", T0 - 6 * MIN, seen(((T0 - 7 * MIN, None),)), []),
]


@pytest.mark.parametrize(("what", "at", "sensing", "expected"), CASES, ids=[c[0] for c in CASES])
def test_one_booking(
    config: ServiceConfig, what: str, at: datetime, sensing: Sensing, expected: list[str]
) -> None:
    assert kinds(run(config, at, [booking()], sensing)) == expected, what


def test_a_held_reason_names_the_trouble(config: ServiceConfig) -> None:
    result = run(
        config,
        T0 + 10 * MIN,
        [booking()],
        seen(healthy_since=None, reason="sensors-2f offline since 10:02"),
    )
    assert result[0][2] == "not released: sensors-2f offline since 10:02"


def test_a_release_carries_its_evidence(config: ServiceConfig) -> None:
    engine = Engine(config, Memory())
    sensing = seen(((T0 - 40 * MIN, T0 - 30 * MIN),))
    [action] = engine.evaluate(T0 + 10 * MIN, {MEETING: [booking()]}, {MEETING: sensing})
    evidence = action.decision.evidence
    assert evidence["vacant_since"] == (T0 - 30 * MIN).isoformat()
    assert evidence["device"] == NODE
    assert evidence["sensor_healthy_since"] == LONG_AGO.isoformat()
    assert evidence["last_status_at"] == LONG_AGO.isoformat()
    assert evidence["window"] == f"{(T0 - 5 * MIN).isoformat()}..{(T0 + 10 * MIN).isoformat()}"
    assert evidence["grace_min"] == "10"


def test_decisions_are_taken_once(config: ServiceConfig) -> None:
    engine = Engine(config, Memory())
    found = {MEETING: [booking()]}
    first = engine.evaluate(T0 + 10 * MIN, found, {MEETING: seen()})
    engine.settled(first[0].decision, ok=True, at=T0 + 10 * MIN)
    assert [a.decision.kind for a in first] == ["released"]
    assert engine.evaluate(T0 + 11 * MIN, found, {MEETING: seen()}) == []
    # Even if someone turns up afterwards, a released booking stays released.
    late = seen(((T0 + 12 * MIN, None),))
    assert engine.evaluate(T0 + 13 * MIN, found, {MEETING: late}) == []


def test_a_failed_calendar_call_is_tried_again_at_a_later_poll(config: ServiceConfig) -> None:
    engine = Engine(config, Memory())
    found = {MEETING: [booking()]}
    [first] = engine.evaluate(T0 + 10 * MIN, found, {MEETING: seen()})
    engine.settled(first.decision, ok=False, at=T0 + 10 * MIN)
    assert engine.evaluate(T0 + 10 * MIN + timedelta(seconds=29), found, {MEETING: seen()}) == []
    [again] = engine.evaluate(T0 + 10 * MIN + timedelta(seconds=30), found, {MEETING: seen()})
    assert again.decision == first.decision  # the same decision, not a new one


def test_a_booking_the_calendar_says_is_checked_in_is_left_alone(config: ServiceConfig) -> None:
    checked = booking(checked_in=T0)
    assert run(config, T0 + 10 * MIN, [checked], seen()) == []


def test_a_held_booking_is_held_once_and_checked_in_if_people_come(config: ServiceConfig) -> None:
    engine = Engine(config, Memory())
    found = {MEETING: [booking()]}
    offline = seen(healthy_since=None, reason="sensors-2f offline since 10:02")
    assert [a.decision.kind for a in engine.evaluate(T0 + 10 * MIN, found, {MEETING: offline})] == [
        "held"
    ]
    assert engine.evaluate(T0 + 11 * MIN, found, {MEETING: offline}) == []
    healed = seen(healthy_since=T0 + 12 * MIN)
    assert engine.evaluate(T0 + 13 * MIN, found, {MEETING: healed}) == []  # still no evidence
    came = seen(((T0 + 14 * MIN, None),), healthy_since=T0 + 12 * MIN)
    assert [a.decision.kind for a in engine.evaluate(T0 + 15 * MIN, found, {MEETING: came})] == [
        "checked_in"
    ]


def test_unbooked_use_is_booked_up_to_the_next_booking(config: ServiceConfig) -> None:
    in_use = seen(((T0 - 11 * MIN, None),))
    engine = Engine(config, Memory())
    [action] = engine.evaluate(T0, {MEETING: []}, {MEETING: in_use})
    assert (action.decision.kind, action.decision.start, action.decision.end) == (
        "ad_hoc", T0, T0 + 30 * MIN,
    )  # fmt: skip
    assert action.booking is None
    engine = Engine(config, Memory())
    later = booking(T0 + 20 * MIN)
    [action] = engine.evaluate(T0, {MEETING: [later]}, {MEETING: in_use})
    assert action.decision.end == T0 + 20 * MIN


def test_short_use_is_not_booked_nor_a_room_without_ad_hoc(config: ServiceConfig) -> None:
    assert run(config, T0, [], seen(((T0 - 9 * MIN, None),))) == []
    booth = seen(((T0 - 30 * MIN, None),), zone=BOOTH)
    assert run(config, T0, [], booth) == []


def test_use_that_ran_on_from_a_booking_counts_from_its_end(config: ServiceConfig) -> None:
    # People leaving at the end of a meeting: the room still reads occupied a few minutes
    # (a PIR booth holds after its door shuts). That is not unbooked use of the whole hour.
    meeting = booking(T0 - 60 * MIN, 60, checked_in=T0 - 55 * MIN)
    ran_on = seen(((T0 - 55 * MIN, None),))
    memory = Memory()
    assert "ad_hoc" not in kinds(run(config, T0 + 8 * MIN, [meeting], ran_on, memory))
    engine = Engine(config, Memory())
    assert engine.unbooked_since(T0 + 8 * MIN, ran_on, [meeting]) == T0
    assert "ad_hoc" in kinds(run(config, T0 + 11 * MIN, [meeting], ran_on, Memory()))


def test_our_booking_is_extended_while_the_room_stays_in_use(config: ServiceConfig) -> None:
    ours = booking(T0 - 28 * MIN, 30, uid="adhoc-1", ad_hoc=True)
    [action] = Engine(config, Memory()).evaluate(
        T0, {MEETING: [ours]}, {MEETING: seen(((T0 - 31 * MIN, None),))}
    )
    assert (action.decision.kind, action.decision.start) == ("ad_hoc", T0 + 2 * MIN)


def test_our_booking_is_released_once_the_room_is_vacant_for_the_grace_time(
    config: ServiceConfig,
) -> None:
    ours = booking(T0 - 30 * MIN, 60, uid="adhoc-1", ad_hoc=True)
    left = seen(((T0 - 31 * MIN, T0 - 10 * MIN),))
    assert kinds(run(config, T0, [ours], left)) == ["released"]
    assert run(config, T0 - MIN, [ours], left) == []  # vacant for 9 minutes only
    assert run(config, T0, [ours], seen(((T0 - 31 * MIN, None),))) == []  # still in use


# -- properties -------------------------------------------------------------------------

minutes = st.integers(min_value=-90, max_value=90)


@st.composite
def histories(draw: st.DrawFn) -> tuple[Sensing, datetime]:
    """A random sensor history around T0 and a moment to judge it at."""
    at = T0 + draw(st.integers(min_value=-20, max_value=70)) * MIN
    cuts = sorted(draw(st.lists(minutes, max_size=8, unique=True)))
    spans: list[Span] = []
    for begin, end in zip(cuts[::2], cuts[1::2], strict=False):
        if T0 + begin * MIN <= at:
            spans.append((T0 + begin * MIN, min(T0 + end * MIN, at)))
    if draw(st.booleans()) and spans and spans[-1][1] == at:
        spans[-1] = (spans[-1][0], None)  # still occupied
    healthy = draw(st.one_of(st.none(), minutes.map(lambda m: T0 + m * MIN)))
    if healthy is not None and healthy > at:
        healthy = None
    return seen(tuple(spans), healthy_since=healthy, reason="" if healthy else "offline"), at


@settings(max_examples=300, deadline=None)
@given(histories())
def test_no_release_while_occupied_or_without_a_healthy_window(
    config: ServiceConfig, case: tuple[Sensing, datetime]
) -> None:
    sensing, at = case
    engine = Engine(config, Memory())
    one = booking()
    for action in engine.evaluate(at, {MEETING: [one]}, {MEETING: sensing}):
        if action.decision.kind != "released":
            continue
        opens, closes = engine.window(config.rooms[0], one)
        assert sensing.occupied is False, "released while occupied"
        assert sensing.healthy_throughout(opens), "released without a healthy window"
        assert sensing.presence_between(opens, closes) is None, "released after presence"
        assert at >= closes, "released before start + grace"


@settings(max_examples=200, deadline=None)
@given(
    start=st.integers(min_value=0, max_value=24 * 60),
    poll_s=st.integers(min_value=1, max_value=120),
    room=st.sampled_from([MEETING, BOOTH]),
)
def test_every_proven_no_show_is_released_at_start_plus_grace(
    config: ServiceConfig, start: int, poll_s: int, room: str
) -> None:
    """Stepped every poll from before the window: released by start + grace + one poll."""
    one = booking(T0 + start * MIN, room=room)
    engine = Engine(config, Memory())
    settings_ = config.room(room)
    assert settings_ is not None
    opens, closes = engine.window(settings_, one)
    vacant = seen(healthy_since=opens - timedelta(hours=1), zone=room)
    at = opens - 10 * MIN
    released_at = None
    while at < one.end and released_at is None:
        actions = engine.evaluate(at, {room: [one]}, {room: vacant})
        if any(a.decision.kind == "released" for a in actions):
            released_at = at
        at += timedelta(seconds=poll_s)
    assert released_at is not None
    assert closes <= released_at < closes + timedelta(seconds=poll_s)


def test_memory_restored_is_respected(config: ServiceConfig, tmp_path: Path) -> None:
    memory = Memory()
    memory.kinds[("cal", "b1", T0)] = "released"
    assert run(config, T0 + 10 * MIN, [booking()], seen(), memory) == []
