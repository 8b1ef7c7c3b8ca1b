"""The rooms checks of the report pass on a good history and fail on each crafted bad one."""

from __future__ import annotations

from dataclasses import replace

from simulator.rooms_checks import (
    RoomsDay,
    RoomsLog,
    ad_hoc_booked,
    no_shows_released,
    no_wrong_release,
    occupied_never_shown_released,
    occupied_never_vacant,
    rooms_checks,
    rooms_figures,
)
from simulator.rooms_plan import Use

H = 3600.0
M = 60.0
GRACE = {"meeting-room": 600.0, "focus-booth": 600.0, "phone-booth": 600.0}

# focus-2f-1: a no-show at 3 h, a normal booking at 5 h, someone walking in unbooked at 7 h.
NO_SHOW = Use("focus-2f-1", "focus-booth", 3 * H, 4 * H, "no_show", None, None, "a@x")
NORMAL = Use("focus-2f-1", "focus-booth", 5 * H, 6 * H, "normal", 5 * H - M, 6 * H - M, "b@x")
WALK_IN = Use("focus-2f-1", "focus-booth", 7 * H, 7.3 * H, "ad_hoc", 7 * H, 7.3 * H, "c@x")
STAYS = {"focus-2f-1": [[5 * H - M, 6 * H - M], [7 * H, 7.3 * H]]}
REPORTED = {
    "focus-2f-1": [
        (5 * H - M + 1, True),
        (6 * H, False),
        (7 * H + 2, True),
        (7.3 * H + 60, False),
    ]
}


def good_day() -> RoomsDay:
    log = RoomsLog(
        releases=[(3 * H + 600 + 30, "focus-2f-1", 3 * H, 4 * H)],
        check_ins=[(5 * H - M + 30, "focus-2f-1", 5 * H, 6 * H)],
        ad_hoc=[(7 * H + 3 * M + 30, "focus-2f-1", 7 * H + 3 * M + 30, 7.6 * H)],
        shown={
            "focus-2f-1": [
                (3 * H + 630, "released"),
                (4 * H, "free"),
                (5 * H - M + 30, "in-use"),
                (6 * H, "free"),
            ]
        },
    )
    return RoomsDay(
        uses=[NO_SHOW, NORMAL, WALK_IN],
        stays=STAYS,
        offline={},
        reported=REPORTED,
        log=log,
        grace_s=GRACE,
        ad_hoc_after_s=3 * M,
        end_s=15 * H,
    )


def test_a_good_day_passes_every_check_and_counts_its_figures() -> None:
    day = good_day()
    assert [c.name for c in rooms_checks(day) if not c.ok] == []
    figures = rooms_figures(day)
    assert figures["releases"] == 1
    assert figures["check_ins"] == 1
    assert figures["ad_hoc_bookings"] == 1
    assert round(figures["released_h"], 2) == round((H - 630) / H, 2)


def test_a_no_show_released_late_or_never_fails() -> None:
    day = good_day()
    late = replace(
        day, log=replace(day.log, releases=[(3 * H + 600 + 2 * M, "focus-2f-1", 3 * H, 4 * H)])
    )
    assert not no_shows_released(late).ok
    never = replace(day, log=replace(day.log, releases=[]))
    check = no_shows_released(never)
    assert not check.ok
    assert "never" in check.detail


def test_a_no_show_whose_sensor_was_off_need_not_be_released() -> None:
    day = good_day()
    off = replace(
        day,
        log=replace(day.log, releases=[]),
        offline={"focus-2f-1": [(2.9 * H, 3.5 * H)]},
    )
    assert no_shows_released(off).ok


def test_a_release_of_an_occupied_room_or_while_its_sensor_was_off_fails() -> None:
    day = good_day()
    occupied = replace(day, log=replace(day.log, releases=[(5.5 * H, "focus-2f-1", 5 * H, 6 * H)]))
    check = no_wrong_release(occupied)
    assert not check.ok
    assert "truly occupied" in check.detail
    offline = replace(
        day,
        offline={"focus-2f-1": [(3 * H, 3.5 * H)]},
    )
    check = no_wrong_release(offline)
    assert not check.ok
    assert "offline" in check.detail


def test_a_release_inside_the_grace_time_before_anyone_came_fails() -> None:
    late_use = replace(NORMAL, outcome="late", arrive_s=5 * H + 7 * M)
    day = good_day()
    early = replace(
        day,
        uses=[NO_SHOW, late_use, WALK_IN],
        stays={"focus-2f-1": [[5 * H + 7 * M, 6 * H - M]]},
        log=replace(day.log, releases=[(5 * H + 5 * M, "focus-2f-1", 5 * H, 6 * H)], check_ins=[]),
    )
    check = no_wrong_release(early)
    assert not check.ok
    assert "grace" in check.detail


def test_an_unbooked_use_never_booked_fails() -> None:
    day = good_day()
    assert not ad_hoc_booked(replace(day, log=replace(day.log, ad_hoc=[]))).ok
    too_late = replace(
        day, log=replace(day.log, ad_hoc=[(7 * H + 10 * M, "focus-2f-1", 7 * H + 10 * M, 7.6 * H)])
    )
    assert not ad_hoc_booked(too_late).ok
    # A booking it made for the one before them, still running when they are due: booked.
    before = [(6 * H, "focus-2f-1", 6 * H, 7.2 * H)]
    assert ad_hoc_booked(replace(day, log=replace(day.log, ad_hoc=before))).ok
    over = [(6 * H, "focus-2f-1", 6 * H, 7 * H + 2 * M)]  # over before they are due
    assert not ad_hoc_booked(replace(day, log=replace(day.log, ad_hoc=over))).ok


def test_an_agent_calling_an_occupied_room_vacant_fails_unless_the_node_had_no_power() -> None:
    day = good_day()
    # The PIR lost the still person: vacant for 20 minutes in the middle of the stay.
    lost = [*REPORTED["focus-2f-1"], (5.3 * H, False), (5.3 * H + 20 * M, True)]
    bad = replace(day, reported={"focus-2f-1": lost})
    check = occupied_never_vacant(bad)
    assert not check.ok
    assert "focus-2f-1 vacant" in check.detail
    unpowered = replace(bad, offline={"focus-2f-1": [(5.3 * H - M, 5.3 * H + 21 * M)]})
    assert occupied_never_vacant(unpowered).ok
    unsynced = replace(bad, unsure={"focus-2f-1": [(5.2 * H, 5.4 * H)]})
    assert occupied_never_vacant(unsynced).ok  # its clock was off: times not compared
    slow = replace(day, reported={"focus-2f-1": [(5 * H - M + 40, True), (6 * H, False)]})
    assert not occupied_never_vacant(slow).ok  # 40 s to notice someone walking in


def test_an_occupied_room_shown_released_fails() -> None:
    day = good_day()
    shown = {"focus-2f-1": [(5 * H + 10 * M, "released"), (6 * H, "free")]}
    check = occupied_never_shown_released(replace(day, log=replace(day.log, shown=shown)))
    assert not check.ok
    assert "focus-2f-1" in check.detail
