"""Couriers: started explicitly, one rate-limited person never holds up the others, and no
status of this service outlives it (cleared at close, or at the next start)."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path

from rooms.uc.courier import Courier
from rooms.uc.directory import UcDirectory
from rooms.uc.states import UcState
from rooms.uc.tracker import PresenceTracker
from tests.rooms.test_uc_tracker import AT, KINDS, S1, TOKYO, settled, site, template  # noqa: F401 (the fixtures)
from tests.rooms.uc_fakes import RecordingAdapter
from tests.rooms.uc_site import Site

S2 = "@s002:uc.test"


def couriers_running() -> int:
    return sum(t.name.startswith("uc-courier") and t.is_alive() for t in threading.enumerate())


def test_a_courier_starts_its_thread_only_when_told_and_once() -> None:
    before = couriers_running()
    adapter = RecordingAdapter()
    courier = Courier(adapter)
    assert couriers_running() == before  # no hidden thread at construction
    courier.want(S1, UcState.AVAILABLE, AT)
    courier.start()
    courier.start()  # idempotent
    assert couriers_running() == before + 1
    assert courier.idle(5.0)
    assert adapter.states(S1) == [UcState.AVAILABLE]
    courier.close()
    courier.close()  # idempotent
    assert couriers_running() == before
    assert adapter.closed == 1


def test_a_rate_limited_person_waits_alone_and_is_retried_when_asked(
    site: Site,  # noqa: F811
) -> None:
    site.provision("people", "uc-presence", "S002", "--on", "--uc-id", S2)
    adapter = RecordingAdapter()
    adapter.later[S1] = 8.0
    courier = Courier(adapter)
    tracker = PresenceTracker(UcDirectory(site.registry), [courier], KINDS, TOKYO)
    tracker.start()
    try:
        tracker.crossing(site.refs["S001"], True, AT)
        tracker.crossing(site.refs["S002"], True, AT)
        settled(tracker)
        assert courier.state_of(S2) is UcState.AVAILABLE  # the other went on at once
        assert courier.state_of(S1) is None
        assert not courier.failing
        tracker.tick(AT + timedelta(seconds=5))  # before the wait asked: not tried
        settled(tracker)
        assert adapter.states(S1) == [UcState.AVAILABLE]
        del adapter.later[S1]
        tracker.tick(AT + timedelta(seconds=9))
        settled(tracker)
        assert courier.state_of(S1) is UcState.AVAILABLE
    finally:
        tracker.close()


def test_close_sets_every_held_person_away(site: Site) -> None:  # noqa: F811
    adapter = RecordingAdapter()
    tracker = PresenceTracker(UcDirectory(site.registry), [Courier(adapter)], KINDS, TOKYO)
    tracker.start()
    tracker.crossing(site.refs["S001"], True, AT)
    settled(tracker)

    tracker.close()

    assert adapter.states(S1) == [UcState.AVAILABLE, UcState.AWAY]
    assert tracker.couriers[0].held_ids() == set()


def test_close_is_bounded_and_remembers_whom_it_could_not_clear(
    site: Site,  # noqa: F811
    tmp_path: Path,
) -> None:
    held_file = tmp_path / "rooms.db.uc.json"
    adapter = RecordingAdapter()
    courier = Courier(adapter, close_s=0.3)
    tracker = PresenceTracker(UcDirectory(site.registry), [courier], KINDS, TOKYO, held_file)
    tracker.start()
    tracker.crossing(site.refs["S001"], True, AT)
    settled(tracker)
    tracker.tick(AT + timedelta(seconds=1))
    assert json.loads(held_file.read_text()) == {"uc_ids": [S1]}
    adapter.hang = threading.Event()  # the server stops answering

    began = time.monotonic()
    tracker.close()
    took = time.monotonic() - began
    adapter.hang.set()

    assert took < 10.0, f"{took:.1f} s"  # close_s, not the HTTP timeouts of every person
    assert json.loads(held_file.read_text()) == {"uc_ids": [S1]}
    assert held_file.stat().st_mode & 0o077 == 0


def test_statuses_left_by_an_earlier_run_are_cleared_at_the_first_tick(
    site: Site,  # noqa: F811
    tmp_path: Path,
) -> None:
    held_file = tmp_path / "rooms.db.uc.json"
    # S001 is still opted in; S002 opted out (or never in) while the service was down.
    held_file.write_text(json.dumps({"uc_ids": [S1, S2]}))
    adapter = RecordingAdapter()
    tracker = PresenceTracker(
        UcDirectory(site.registry), [Courier(adapter)], KINDS, TOKYO, held_file
    )
    tracker.start()
    try:
        tracker.tick(AT)
        settled(tracker)
        assert adapter.states(S1) == [UcState.AWAY]
        assert adapter.states(S2) == [UcState.AWAY]
        tracker.tick(AT + timedelta(seconds=1))
        assert json.loads(held_file.read_text()) == {"uc_ids": []}
    finally:
        tracker.close()
    assert len(adapter.calls) == 2  # nothing more to clear at close


def test_an_unreadable_held_file_clears_nothing_and_the_service_runs(
    site: Site,  # noqa: F811
    tmp_path: Path,
) -> None:
    held_file = tmp_path / "rooms.db.uc.json"
    held_file.write_text("{not json")
    adapter = RecordingAdapter()
    tracker = PresenceTracker(
        UcDirectory(site.registry), [Courier(adapter)], KINDS, TOKYO, held_file
    )
    tracker.start()
    try:
        tracker.tick(AT)
        tracker.crossing(site.refs["S001"], True, AT)
        settled(tracker)
        assert adapter.states(S1) == [UcState.AVAILABLE]
    finally:
        tracker.close()
