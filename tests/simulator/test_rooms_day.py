"""A morning at the small building with the rooms service: bookings, still people, a power cut."""

from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest

from simulator.scenario import Scenario

from .city import failed, played

pytestmark = pytest.mark.services  # mosquitto, Radicale and the agents

CUT_AT, CUT_MIN = time(11, 0), 10


@pytest.mark.timeout(300)
def test_the_rooms_service_releases_no_shows_books_walk_ins_and_keeps_the_cut_booth(
    tmp_path: Path,
) -> None:
    scenario = Scenario.model_validate(
        {
            "date": "2026-12-01",
            "start": time(8, 30),
            "end": time(14, 30),
            "seed": 7,
            "faults": [
                {"at": CUT_AT, "kind": "power_cut", "device": "sensors-2f-booths", "minutes": 10}
            ],
        }
    )
    with played(tmp_path, scenario) as (sim, report):
        assert not failed(report), failed(report)
        names = " ".join(c.name for c in report.checks)
        for expected in ("no-show", "truly occupied", "used without a booking", "reported vacant"):
            assert expected in names
        assert sim.rooms is not None
        outcomes = {u.outcome for u in sim.rooms.uses}
        assert outcomes == {"normal", "no_show", "late", "early_leave", "ad_hoc"}
        rooms = report.rooms
        assert rooms["releases"] >= 1
        assert rooms["released_h"] > 0
        assert rooms["ad_hoc_bookings"] >= 1
        assert rooms["check_ins"] >= rooms["bookings"] - rooms["no_shows"] - 1
        # The booking spanning the booth node's power cut was neither released nor lost.
        cut = (CUT_AT.hour * 3600 + CUT_AT.minute * 60) - (8 * 3600 + 30 * 60)
        spanning = [
            u for u in sim.rooms.uses if u.room == "focus-2f-1" and u.start_s < cut < u.end_s
        ]
        assert len(spanning) == 1
        booking = spanning[0]
        assert not [
            at
            for at, room, _, _ in sim.rooms.log.releases
            if room == "focus-2f-1" and booking.start_s <= at < booking.end_s
        ]
        assert sim.world.truth.unpowered["sensors-2f-booths"] == [[cut, cut + CUT_MIN * 60]]
        assert "rooms service:" in report.text()
