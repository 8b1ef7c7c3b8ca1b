"""The journal: decisions survive a restart, so nothing is released twice or forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from rooms.bookings import Booking
from rooms.checkin import Engine
from rooms.journal import NO_CALL, OK, RESTARTED, Journal
from rooms.sensing import Sensing
from tests.rooms.service_site import MEETING, NODE, service_config

T0 = datetime(2031, 4, 1, 1, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
VACANT = Sensing(MEETING, NODE, False, (), healthy_since=T0 - timedelta(hours=2))
OFFLINE = Sensing(MEETING, NODE, None, (), reason="sensors-2f offline since 09:58")
PERSONAL = ("tanaka.hanako@city.example", "suzuki@city.example", "Budget talk with the mayor")


def one_booking() -> Booking:
    return Booking(
        "cal", MEETING, "b1", T0, T0 + 60 * MIN,
        organiser=PERSONAL[0], attendees=(PERSONAL[1],), title=PERSONAL[2],
    )  # fmt: skip


def decide(path: Path, at: datetime, sensing: Sensing, outcome: str = OK) -> list[str]:
    """Start from the journal, evaluate once, record every decision with `outcome`."""
    config = service_config(path)
    journal = Journal(config.state_path)
    engine = Engine(config, journal.memory())
    actions = engine.evaluate(at, {MEETING: [one_booking()]}, {MEETING: sensing})
    for action in actions:
        done = NO_CALL if action.decision.kind == "held" else outcome
        journal.record(action.decision, done)
        engine.settled(action.decision, ok=done != outcome or outcome == OK, at=at)
    journal.close()
    return [a.decision.kind for a in actions]


def test_a_restart_never_releases_twice(tmp_path: Path) -> None:
    assert decide(tmp_path, T0 + 10 * MIN, VACANT) == ["released"]
    assert decide(tmp_path, T0 + 11 * MIN, VACANT) == []
    journal = Journal(tmp_path / "rooms.db")
    [entry] = journal.entries(kind="released")
    assert (entry.room, entry.outcome, entry.uid) == (MEETING, OK, "b1")
    assert entry.evidence["device"] == NODE
    journal.close()


def test_a_restart_remembers_a_check_in(tmp_path: Path) -> None:
    present = Sensing(
        MEETING, NODE, True, ((T0 - 2 * MIN, None),), healthy_since=T0 - timedelta(hours=2)
    )
    assert decide(tmp_path, T0, present) == ["checked_in"]
    # They left; after a restart the booking is still checked in, so it is not released.
    left = Sensing(MEETING, NODE, False, ((T0 - 2 * MIN, T0 + MIN),), healthy_since=T0 + 5 * MIN)
    assert decide(tmp_path, T0 + 20 * MIN, left) == []


def test_a_release_the_calendar_never_took_is_held_after_a_restart(tmp_path: Path) -> None:
    assert decide(tmp_path, T0 + 10 * MIN, VACANT, outcome="error: calendar cal refused") == [
        "released"
    ]
    assert decide(tmp_path, T0 + 12 * MIN, VACANT) == []  # not sent again blind
    journal = Journal(tmp_path / "rooms.db")
    memory = journal.memory()
    outcomes = [e.outcome for e in journal.entries(kind="released")]
    journal.close()
    assert outcomes == ["error: calendar cal refused"]
    [(key, kind)] = memory.kinds.items()
    assert (kind, memory.pending) == ("held", {})
    assert memory.reasons[key] == RESTARTED


def test_a_check_in_the_calendar_never_took_is_sent_after_a_restart(tmp_path: Path) -> None:
    present = Sensing(
        MEETING, NODE, True, ((T0 - 2 * MIN, None),), healthy_since=T0 - timedelta(hours=2)
    )
    assert decide(tmp_path, T0, present, outcome="error: calendar cal refused") == ["checked_in"]
    assert decide(tmp_path, T0 + 2 * MIN, present) == ["checked_in"]
    assert decide(tmp_path, T0 + 4 * MIN, present) == []


def test_a_held_booking_stays_held_after_a_restart(tmp_path: Path) -> None:
    assert decide(tmp_path, T0 + 10 * MIN, OFFLINE) == ["held"]
    healed = Sensing(MEETING, NODE, False, (), healthy_since=T0 + 12 * MIN)
    assert decide(tmp_path, T0 + 13 * MIN, healed) == []


def test_no_personal_data_reaches_the_file(tmp_path: Path) -> None:
    decide(tmp_path, T0 + 10 * MIN, VACANT)
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("rooms.db*"))
    assert b"b1" in stored  # the file was read, the booking's row is in it
    for text in PERSONAL:
        assert text.encode() not in stored
