"""Head counts that add up across gates: entries at one gate, exits at another, button exits,
resets and the daily forgiveness, each event once, never below zero, read off indexes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import count
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from console import headcount
from console.log import CentralLog, open_log
from console.people import Directory
from console.search import parse_query, search
from console.users import add_user
from console.web import Settings, create_app
from tests.console.test_log import event
from tests.console.web_fixtures import PASSWORDS, Client, serve
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)

LINE = "staff-area"
RECEIVED = "2026-11-27T00:00:00.000Z"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.services)])
def target(request: pytest.FixtureRequest, path: Path) -> Path | str:
    """Where the log is: an SQLite file, or a PostgreSQL database."""
    return path if request.param == "sqlite" else str(request.getfixturevalue("pg_database"))


@pytest.fixture
def log(target: Path | str) -> Iterator[CentralLog]:
    central = open_log(target)
    yield central
    central.close()


class Gates:
    """Events of several gates on the line, each with its own gap-free seq."""

    def __init__(self, log: CentralLog) -> None:
        self.log = log
        self.seqs: dict[str, count[int]] = {}
        self.site = "test-site" if log.keys_sites else None  # PostgreSQL: every row's site

    def send(self, device: str, ts: str, **fields: Any) -> dict[str, Any]:
        seq = next(self.seqs.setdefault(device, count(1)))
        made = {k: v for k, v in event(device, seq).items() if k not in ("card_ref", "reason")}
        made = {**made, "ts": f"2026-11-26T{ts}.000Z", **fields}
        self.log.append([made], RECEIVED, site=self.site)
        return made

    def enter(self, device: str, ts: str, zone: str = LINE) -> dict[str, Any]:
        return self.send(
            device, ts, type="crossing", card_ref="c" * 64, from_zone="lobby", to_zone=zone
        )

    def leave(self, device: str, ts: str, zone: str = LINE) -> dict[str, Any]:
        return self.send(
            device, ts, type="crossing", card_ref="c" * 64, from_zone=zone, to_zone="lobby"
        )

    def button_exit(self, device: str, ts: str) -> dict[str, Any]:
        return self.send(device, ts, type="button_exit", from_zone=LINE, to_zone="lobby")

    def reset(self, device: str, ts: str, to: int) -> None:
        self.send(device, ts, kind="system", type="occupancy_reset", zone=LINE, count=to, by="x")

    def forgiven(self, device: str, ts: str, local_date: str = "2026-11-26") -> None:
        fields = {"kind": "system", "type": "anti_passback_forgiven", "local_date": local_date}
        self.send(device, ts, zone=LINE, **fields)


@pytest.fixture
def gates(log: CentralLog) -> Gates:
    return Gates(log)


def line(log: CentralLog) -> headcount.ZoneCount:
    return headcount.occupancy(log)[LINE]


def test_entries_at_one_gate_and_exits_at_others_add_up(log: CentralLog, gates: Gates) -> None:
    for i in range(3):
        gates.enter("gate-1", f"08:0{i}:00")
    gates.leave("gate-2", "09:00:00")
    gates.button_exit("gate-3", "09:10:00")
    gates.enter("gate-4", "09:20:00")
    # What each gate saw, as it reports it: none of them is the line's count.
    log.set_occupancy("gate-1", LINE, 3, True, "2026-11-26T08:02:00.000Z", site=gates.site)
    log.set_occupancy("gate-2", LINE, 0, False, "2026-11-26T09:00:00.000Z", site=gates.site)
    log.set_occupancy("gate-4", LINE, 1, True, "2026-11-26T09:20:00.000Z", site=gates.site)
    assert line(log) == headcount.ZoneCount(LINE, 2, True, None, "log")
    assert headcount.occupancy(log)["lobby"].count == 0  # more left it than entered: not below 0


def test_an_event_sent_again_is_counted_once(log: CentralLog, gates: Gates) -> None:
    first = gates.enter("gate-1", "08:00:00")
    gates.enter("gate-1", "08:01:00")
    log.append([first, dict(first)], RECEIVED, site=gates.site)  # sent again, twice
    assert line(log).count == 2


def test_more_exits_than_entries_is_zero_not_negative(log: CentralLog, gates: Gates) -> None:
    gates.enter("gate-1", "08:00:00")
    gates.leave("gate-2", "18:00:00")
    gates.leave("gate-3", "18:01:00")
    gates.button_exit("gate-4", "18:02:00")
    assert line(log) == headcount.ZoneCount(LINE, 0, False, None, "log")


def test_a_reset_is_the_start_and_only_later_movements_count(log: CentralLog, gates: Gates) -> None:
    for i in range(4):
        gates.enter("gate-1", f"08:0{i}:00")
    gates.reset("gate-2", "10:00:00", to=10)
    gates.enter("gate-3", "10:00:00")  # the same moment as the reset: already in its count
    gates.enter("gate-3", "10:05:00")
    gates.button_exit("gate-1", "10:06:00")
    gates.enter("gate-4", "10:07:00")
    found = line(log)
    assert (found.count, found.since, found.basis) == (
        11,
        "2026-11-26T10:00:00.000Z",
        "occupancy_reset",
    )


def test_the_daily_forgiveness_starts_from_zero_at_its_first_record(
    log: CentralLog, gates: Gates
) -> None:
    gates.reset("gate-2", "01:00:00", to=40)  # older than the forgiveness: superseded
    gates.enter("gate-1", "02:00:00")
    gates.forgiven("gate-1", "03:00:00")
    gates.enter("gate-1", "08:00:00")
    gates.enter("gate-2", "08:30:00")
    gates.forgiven("gate-3", "09:00:00")  # off at 03:00: it noticed the same date late
    gates.leave("gate-3", "12:00:00")
    found = line(log)
    assert (found.count, found.since, found.basis) == (
        1,
        "2026-11-26T03:00:00.000Z",
        "anti_passback_forgiven",
    )
    gates.reset("gate-4", "12:30:00", to=7)  # a reset after it is the start again
    assert line(log).count == 7


def test_a_presence_only_zone_keeps_the_devices_occupied_or_vacant(
    log: CentralLog, gates: Gates
) -> None:
    gates.enter("gate-1", "08:00:00")
    log.set_occupancy("booth-3f", "booth-1", 0, True, "2026-11-26T08:00:00.000Z", site=gates.site)
    log.set_occupancy("booth-3f", "booth-2", 0, False, "2026-11-26T08:00:00.000Z", site=gates.site)
    zones = headcount.occupancy(log)
    assert zones["booth-1"] == headcount.ZoneCount("booth-1", None, True)
    assert zones["booth-2"] == headcount.ZoneCount("booth-2", None, False)
    assert list(zones) == ["booth-1", "booth-2", "lobby", LINE]


@pytest.mark.parametrize(
    ("query", "index"),
    [
        ("SELECT count(*) FROM events WHERE {move} AND {to} = 'x' AND ts > 'a'", "into_zone"),
        ("SELECT count(*) FROM events WHERE {move} AND {fr} = 'x' AND ts > 'a'", "out_of_zone"),
        ("SELECT min({fr}) FROM events WHERE {move} AND {fr} > ''", "out_of_zone"),
        ("SELECT ts FROM events WHERE {base} AND {zone} = 'x' ORDER BY ts DESC", "zone_baseline"),
    ],
)
def test_every_count_query_reads_an_index(path: Path, query: str, index: str) -> None:
    """The queries as console.headcount writes them: a year of log never means a scan
    (SQLite's plan; bench/ compares PostgreSQL's)."""
    log = open_log(path)
    text = query.format(
        move=headcount._MOVE,
        base=headcount._BASE,
        to="json_extract(body, '$.to_zone')",
        fr="json_extract(body, '$.from_zone')",
        zone=headcount._ZONE,
    )
    plan = " ".join(str(row[3]) for row in log.db.execute(f"EXPLAIN QUERY PLAN {text}"))
    log.close()
    assert f"USING INDEX events_{index}" in plan, plan


def test_the_occupancy_page_shows_the_line_added_up(
    log: CentralLog, gates: Gates, tmp_path: Path, target: Path | str
) -> None:
    gates.enter("gate-1", "08:00:00")
    gates.enter("gate-1", "08:01:00")
    gates.leave("gate-2", "08:02:00")
    log.set_occupancy("gate-1", LINE, 2, True, "2026-11-26T08:01:00.000Z", site=gates.site)
    log.set_occupancy("booth-3f", "booth-1", 0, True, "2026-11-26T08:00:00.000Z", site=gates.site)
    add_user(log, "ops", "operator", PASSWORDS["ops"], by="test")
    settings = Settings(target, None, tmp_path / "session.key", secure_cookies=False)
    with serve(create_app(settings)) as url:
        client = Client(url)
        client.login("ops")
        shown = client.get("/occupancy").text
    assert f'data-zone="{LINE}" data-count="1"' in shown
    booth = re.search(r'<div class="zone (\w+)" data-zone="booth-1">', shown)
    assert booth is not None
    assert booth.group(1) == "occupied"


def test_a_button_exit_is_found_in_the_log_by_its_result(log: CentralLog, gates: Gates) -> None:
    gates.enter("gate-1", "08:00:00")
    gates.button_exit("gate-3", "09:10:00")
    query = parse_query({"result": "button_exit"}, None, ZoneInfo("Asia/Tokyo"))
    found = search(log, query, Directory(None)).entries
    assert [(e.device, e.type) for e in found] == [("gate-3", "button_exit")]
