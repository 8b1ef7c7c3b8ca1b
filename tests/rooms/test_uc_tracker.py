"""The tracker and its couriers: who is told what, when, and what is never sent or kept."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rooms.bookings import Booking
from rooms.uc.courier import Courier
from rooms.uc.directory import DirectoryError, UcDirectory
from rooms.uc.states import UcState
from rooms.uc.tracker import PresenceTracker
from tests.rooms.uc_fakes import RecordingAdapter
from tests.rooms.uc_site import Site, make_site

TOKYO = ZoneInfo("Asia/Tokyo")
AT = datetime(2030, 4, 1, 9, 0, tzinfo=TOKYO)
KINDS = {"room-2a": "meeting-room", "booth-1": "phone-booth"}
S1 = "@s001:uc.test"


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Site:
    return make_site(tmp_path_factory.mktemp("uc-site"))


@pytest.fixture
def site(template: Site, tmp_path: Path) -> Site:
    """A fresh copy of the site, S001 opted in (with a calendar address), S002 not."""
    copy = Site(tmp_path / "site", template.refs)
    copy.directory.mkdir()
    with sqlite3.connect(template.registry) as source, sqlite3.connect(copy.registry) as target:
        source.backup(target)
    (copy.directory / "keys").symlink_to(template.directory / "keys")
    copy.provision(
        "people", "uc-presence", "S001", "--on", "--uc-id", S1, "--mail", "s001@city.example"
    )
    return copy


@pytest.fixture
def adapter() -> RecordingAdapter:
    return RecordingAdapter()


@pytest.fixture
def tracker(site: Site, adapter: RecordingAdapter) -> Iterator[PresenceTracker]:
    tracker = PresenceTracker(UcDirectory(site.registry), [Courier(adapter)], KINDS, TOKYO)
    tracker.start()
    yield tracker
    tracker.close()


def settled(tracker: PresenceTracker) -> None:
    for courier in tracker.couriers:
        assert courier.idle(5.0), "the courier did not finish sending"


def meeting(room: str, organiser: str, *attendees: str) -> Booking:
    return Booking(
        "cal", room, f"uid-{room}", AT, AT + timedelta(hours=1), organiser, attendees,
        "Budget review", checked_in=AT + timedelta(minutes=2),
    )  # fmt: skip


def test_an_opted_in_person_is_in_the_building_in_a_meeting_then_away(
    site: Site, tracker: PresenceTracker, adapter: RecordingAdapter
) -> None:
    tracker.crossing(site.refs["S001"], True, AT)
    settled(tracker)
    tracker.meetings(
        [meeting("room-2a", "boss@city.example", "mailto:S001@city.example")],
        AT + timedelta(minutes=3),
    )
    settled(tracker)
    tracker.meetings([], AT + timedelta(hours=1))
    settled(tracker)
    tracker.crossing(site.refs["S001"], False, AT + timedelta(hours=2))
    settled(tracker)
    assert adapter.states(S1) == [
        UcState.AVAILABLE,
        UcState.MEETING,
        UcState.AVAILABLE,
        UcState.AWAY,
    ]


def test_the_organiser_of_a_phone_booth_is_on_the_phone(
    site: Site, tracker: PresenceTracker, adapter: RecordingAdapter
) -> None:
    tracker.crossing(site.refs["S001"], True, AT)
    tracker.meetings([meeting("booth-1", S1)], AT + timedelta(minutes=3))  # matched by UC id too
    settled(tracker)
    assert adapter.states(S1)[-1] is UcState.PHONE


def test_nothing_is_sent_or_kept_for_people_who_did_not_opt_in(
    site: Site, tracker: PresenceTracker, adapter: RecordingAdapter
) -> None:
    tracker.crossing(site.refs["S002"], True, AT)
    tracker.crossing("f" * 64, True, AT)  # a card nobody in the registry holds
    tracker.meetings([meeting("booth-1", "s002@city.example", "someone@city.example")], AT)
    tracker.tick(AT + timedelta(minutes=5))
    settled(tracker)
    assert adapter.calls == []
    assert tracker._crossings == {}
    assert tracker._engaged == {}
    assert tracker._states == {}


def test_a_meeting_outside_the_line_changes_nothing(
    tracker: PresenceTracker, adapter: RecordingAdapter
) -> None:
    tracker.meetings([meeting("room-2a", "s001@city.example")], AT)
    settled(tracker)
    assert adapter.calls == []  # away, and never set by us: nothing to clear either


def test_midnight_ends_a_day_inside_without_a_crossing_out(
    site: Site, tracker: PresenceTracker, adapter: RecordingAdapter
) -> None:
    tracker.crossing(site.refs["S001"], True, datetime(2030, 4, 1, 22, 0, tzinfo=TOKYO))
    settled(tracker)
    tracker.tick(datetime(2030, 4, 1, 23, 59, tzinfo=TOKYO))
    settled(tracker)
    assert adapter.states(S1) == [UcState.AVAILABLE, UcState.AVAILABLE]  # still in, refreshed
    tracker.tick(datetime(2030, 4, 2, 0, 0, 1, tzinfo=TOKYO))
    settled(tracker)
    assert adapter.states(S1)[-1] is UcState.AWAY
    assert tracker._crossings == {}


def test_a_late_older_crossing_changes_nothing(
    site: Site, tracker: PresenceTracker, adapter: RecordingAdapter
) -> None:
    tracker.crossing(site.refs["S001"], True, AT)
    tracker.crossing(site.refs["S001"], False, AT + timedelta(minutes=5))
    tracker.crossing(site.refs["S001"], True, AT + timedelta(minutes=1))
    settled(tracker)
    assert tracker.state_of("S001") is UcState.AWAY


def test_online_states_are_refreshed_as_the_server_needs_and_away_never(
    site: Site, tracker: PresenceTracker, adapter: RecordingAdapter
) -> None:
    tracker.crossing(site.refs["S001"], True, AT)
    settled(tracker)
    tracker.tick(AT + timedelta(seconds=19))
    settled(tracker)
    assert len(adapter.states(S1)) == 1
    tracker.tick(AT + timedelta(seconds=20))
    settled(tracker)
    assert adapter.states(S1) == [UcState.AVAILABLE, UcState.AVAILABLE]
    tracker.crossing(site.refs["S001"], False, AT + timedelta(seconds=30))
    for minutes in (1, 10, 60):
        tracker.tick(AT + timedelta(minutes=minutes))
    settled(tracker)
    assert adapter.states(S1) == [UcState.AVAILABLE, UcState.AVAILABLE, UcState.AWAY]
    assert tracker.couriers[0].held() == 0  # cleared: nothing of theirs is held


def test_opting_out_clears_the_status_at_the_next_tick_and_forgets_the_person(
    site: Site, tracker: PresenceTracker, adapter: RecordingAdapter
) -> None:
    tracker.crossing(site.refs["S001"], True, AT)
    settled(tracker)
    site.provision("people", "uc-presence", "S001", "--off")
    tracker.tick(AT + timedelta(seconds=5))
    settled(tracker)
    assert adapter.states(S1) == [UcState.AVAILABLE, UcState.AWAY]
    assert tracker._crossings == {}
    assert tracker.couriers[0].held() == 0
    tracker.crossing(site.refs["S001"], True, AT + timedelta(minutes=1))
    tracker.tick(AT + timedelta(minutes=2))
    settled(tracker)
    assert adapter.states(S1) == [UcState.AVAILABLE, UcState.AWAY]


def test_a_new_uc_id_clears_the_old_one_and_sets_the_new(
    site: Site, tracker: PresenceTracker, adapter: RecordingAdapter
) -> None:
    tracker.crossing(site.refs["S001"], True, AT)
    settled(tracker)
    site.provision("people", "uc-presence", "S001", "--on", "--uc-id", "@hanako:uc.test")
    tracker.tick(AT + timedelta(seconds=5))
    settled(tracker)
    assert adapter.states(S1) == [UcState.AVAILABLE, UcState.AWAY]
    assert adapter.states("@hanako:uc.test") == [UcState.AVAILABLE]


def test_someone_opting_in_is_taken_at_the_next_tick(
    site: Site, tracker: PresenceTracker, adapter: RecordingAdapter
) -> None:
    tracker.crossing(site.refs["S002"], True, AT)
    site.provision("people", "uc-presence", "S002", "--on", "--uc-id", "@s002:uc.test")
    tracker.tick(AT + timedelta(seconds=5))
    tracker.crossing(site.refs["S002"], True, AT + timedelta(seconds=6))
    settled(tracker)
    assert adapter.states("@s002:uc.test") == [UcState.AVAILABLE]


def test_a_revoked_card_no_longer_counts(
    site: Site, tracker: PresenceTracker, adapter: RecordingAdapter
) -> None:
    site.provision("cards", "revoke", "S001")
    tracker.tick(AT)
    tracker.crossing(site.refs["S001"], True, AT + timedelta(seconds=1))
    settled(tracker)
    assert adapter.calls == []


def test_a_failing_server_is_logged_once_probed_once_per_retry_and_healed_once(
    site: Site, adapter: RecordingAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    site.provision("people", "uc-presence", "S002", "--on", "--uc-id", "@s002:uc.test")
    courier = Courier(adapter, retry_s=30)
    tracker = PresenceTracker(UcDirectory(site.registry), [courier], KINDS, TOKYO)
    tracker.start()
    caplog.set_level(logging.INFO, logger="rooms.uc")
    try:
        adapter.down = True
        tracker.crossing(site.refs["S001"], True, AT)
        tracker.crossing(site.refs["S002"], True, AT)
        settled(tracker)
        for seconds in (10, 31, 45, 62):
            tracker.tick(AT + timedelta(seconds=seconds))
            settled(tracker)
        assert courier.failing
        tries = len(adapter.calls)
        assert tries <= 4  # two first sends, one probe per retry period
        adapter.down = False
        tracker.tick(AT + timedelta(seconds=100))
        settled(tracker)
        tracker.tick(AT + timedelta(seconds=101))  # healed: the rest go at once
        settled(tracker)
        assert courier.state_of(S1) is UcState.AVAILABLE
        assert courier.state_of("@s002:uc.test") is UcState.AVAILABLE
    finally:
        tracker.close()
    failing = [r for r in caplog.records if "failing" in r.getMessage()]
    healed = [r for r in caplog.records if "working again" in r.getMessage()]
    assert len(failing) == 1
    assert len(healed) == 1
    text = caplog.text
    assert "@s00" not in text
    assert "S00" not in text


def test_a_refused_person_is_counted_not_named_and_others_go_on(
    site: Site, adapter: RecordingAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    site.provision("people", "uc-presence", "S002", "--on", "--uc-id", "@s002:uc.test")
    adapter.refused.add(S1)
    tracker = PresenceTracker(UcDirectory(site.registry), [Courier(adapter)], KINDS, TOKYO)
    tracker.start()
    try:
        tracker.crossing(site.refs["S001"], True, AT)
        tracker.crossing(site.refs["S002"], True, AT)
        settled(tracker)
        tracker.tick(AT + timedelta(minutes=5))
        settled(tracker)
        assert adapter.states(S1) == [UcState.AVAILABLE]  # not retried while nothing changes
        assert tracker.couriers[0].failing is False
        assert tracker.couriers[0].state_of("@s002:uc.test") is UcState.AVAILABLE
    finally:
        tracker.close()
    assert "1 refusal(s) so far" in caplog.text
    assert "@s001" not in caplog.text


def test_an_adapter_bug_neither_stops_the_courier_nor_leaks_its_text(
    site: Site, adapter: RecordingAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    adapter.broken = True
    tracker = PresenceTracker(
        UcDirectory(site.registry), [Courier(adapter, retry_s=1)], KINDS, TOKYO
    )
    tracker.start()
    try:
        tracker.crossing(site.refs["S001"], True, AT)
        settled(tracker)
        adapter.broken = False
        tracker.tick(AT + timedelta(seconds=2))
        settled(tracker)
        assert tracker.couriers[0].state_of(S1) is UcState.AVAILABLE
    finally:
        tracker.close()
    assert "unexpected KeyError in the adapter" in caplog.text
    assert "@s001" not in caplog.text


def test_close_is_idempotent_closes_adapters_and_refuses_later_use(
    tracker: PresenceTracker, adapter: RecordingAdapter
) -> None:
    tracker.close()
    tracker.close()
    assert adapter.closed == 1
    with pytest.raises(RuntimeError, match="closed"):
        tracker.tick(AT)


def test_an_unreadable_registry_keeps_what_was_read_and_says_so_once(
    site: Site,
    tracker: PresenceTracker,
    adapter: RecordingAdapter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    site.registry.write_bytes(b"not a database at all")
    tracker.tick(AT)
    tracker.tick(AT + timedelta(seconds=1))
    tracker.crossing(site.refs["S001"], True, AT + timedelta(seconds=2))
    settled(tracker)
    assert adapter.states(S1) == [UcState.AVAILABLE]
    assert caplog.text.count("keeping the opt-ins read before") == 1


def test_a_registry_from_before_the_opt_in_says_how_to_upgrade(tmp_path: Path) -> None:
    old = tmp_path / "registry.db"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE people (staff_no TEXT)")
        conn.execute("CREATE TABLE cards (card_ref TEXT, staff_no TEXT, status TEXT)")
    with pytest.raises(DirectoryError, match="no UC opt-in yet: run `edge-provision people list"):
        UcDirectory(old)
    with pytest.raises(DirectoryError, match="no provisioning registry at"):
        UcDirectory(tmp_path / "missing.db")


def test_the_directory_holds_only_opted_in_people_and_their_active_cards(site: Site) -> None:
    directory = UcDirectory(site.registry)
    assert set(directory.people) == {"S001"}
    person = directory.person(site.refs["S001"])
    assert person is not None
    assert person.addresses == {S1, "s001@city.example"}
    assert directory.person(site.refs["S002"]) is None
    assert "s001" not in repr(person)
    assert "S001" not in repr(directory)


def test_a_row_with_a_bad_uc_id_is_skipped_and_counted(site: Site) -> None:
    with sqlite3.connect(site.registry) as conn:
        conn.execute(
            "UPDATE people SET uc_presence = 1, uc_id = 'not an id' WHERE staff_no = 'S003'"
        )
    directory = UcDirectory(site.registry)
    assert set(directory.people) == {"S001"}
    assert directory.skipped == 1
