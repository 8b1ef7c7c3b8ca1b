"""The central log on SQLite and on PostgreSQL alike: each edit, deletion, insertion and
reordering behind its back is named the same way on both (the SQLite-only cases and the
rule written out: test_log.py, test_chain.py)."""

from __future__ import annotations

from typing import Any

import pytest

from console.chain import EVENT_COLUMNS, EVENTS, GENESIS, row_hash, site_events
from console.users import audit_trail
from tests.console.chain_fixtures import RECEIVED, alarm
from tests.console.log_backends import SITE, Backend, backend_fixture  # noqa: F401 (the fixture)
from tests.console.test_log import event, events
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)

pytestmark = pytest.mark.services


def filled(b: Backend) -> None:
    """Ten events of one site (one an alarm acknowledged twice) and an audit row."""
    from console.alarms import acknowledge  # noqa: PLC0415  # after the log module
    from console.users import audit  # noqa: PLC0415

    b.log.append(events("gate-1", range(1, 6)), RECEIVED, site=SITE)
    batch = [alarm("gate-1", 6, "lost_card_used"), alarm("gate-1", 7, "door_forced")]
    b.log.append(batch, RECEIVED, site=SITE)
    b.log.append(events("gate-1", range(8, 11)), RECEIVED, site=SITE)
    audit(b.log, "manager1", "export", "log.csv: 10 rows")
    assert acknowledge(b.log, "gate-1:7", "guard1", "on my way")
    assert acknowledge(b.log, "gate-1:7", "guard2", "door shut")
    assert b.log.verify() == []


def problems_at(b: Backend) -> list[str]:
    return [p.split(" (")[0].split(":")[0] for p in b.log.verify()]


def row_of(b: Backend, event_id: str) -> int:
    return int(b.log.db.execute("SELECT row FROM events WHERE id = ?", [event_id]).fetchone()[0])


def other(value: Any) -> Any:
    if isinstance(value, int):
        return value + 1000
    return "edited" if value is None else f"{value}x"


def test_an_intact_log_verifies_and_names_its_chains(backend: Backend) -> None:
    filled(backend)

    heads = backend.log.heads()

    assert sorted(heads) == sorted([backend.events, "audit", "acks"])
    assert heads[backend.events] == backend.log.head(backend.events)
    assert heads[backend.events][0] == row_of(backend, "gate-1:10")
    assert backend.log.anchored(*heads[backend.events], backend.events) is None
    assert backend.log.check().notes == []


@pytest.mark.parametrize("column", [c for c in EVENT_COLUMNS if c != "site"])
def test_an_edit_of_any_event_column_is_named(backend: Backend, column: str) -> None:
    filled(backend)
    row = row_of(backend, "gate-1:4")
    (value,) = backend.log.db.execute(
        f"SELECT {column} FROM events WHERE row = ?", [row]
    ).fetchone()
    backend.tamper((f"UPDATE events SET {column} = ? WHERE row = ?", [other(value), row]))

    problems = backend.log.verify()

    assert len(problems) == 1, problems
    assert problems[0].startswith(f"row {row} (")
    assert "hash does not match" in problems[0]


def test_an_edit_of_the_site_is_named(backend: Backend) -> None:
    filled(backend)
    row = row_of(backend, "gate-1:4")
    backend.tamper(("UPDATE events SET site = 'annex' WHERE row = ?", [row]))

    problems = backend.log.verify()

    # SQLite: the row's hash no longer matches. PostgreSQL: the row left its site's chain
    # (the next one chained on it: missing there) and heads a chain no head was kept for.
    assert any(p.startswith(f"row {row} (") and "hash does not match" in p for p in problems) or (
        any(f"row {row}..{row} missing" in p for p in problems)
        and any(p.startswith("events/annex:") for p in problems)
    ), problems


def test_an_edit_that_rehashes_its_row_breaks_the_next_one(backend: Backend) -> None:
    filled(backend)
    a, b = row_of(backend, "gate-1:3"), row_of(backend, "gate-1:4")
    before, row = backend.log.db.query(
        "SELECT * FROM events WHERE row IN (?, ?) ORDER BY row", [a, b]
    )
    chain = EVENTS if backend.kind == "sqlite" else site_events(SITE)
    forged = {**row, "ts": "2026-11-26T23:59:00.000Z", "card_ref": "f" * 64}
    digest = row_hash(before["hash"], chain, forged)
    backend.tamper(
        (
            "UPDATE events SET ts = ?, card_ref = ?, hash = ? WHERE row = ?",
            [forged["ts"], forged["card_ref"], digest, b],
        )
    )

    assert problems_at(backend) == [f"row {row_of(backend, 'gate-1:5')}"]


@pytest.mark.parametrize("deleted", ["gate-1:1", "gate-1:5"])
def test_a_deleted_row_is_named(backend: Backend, deleted: str) -> None:
    filled(backend)
    row, after = row_of(backend, deleted), row_of(backend, f"gate-1:{int(deleted[7:]) + 1}")
    backend.tamper(("DELETE FROM events WHERE row = ?", [row]))

    problems = backend.log.verify()

    assert any(p.startswith(f"row {after} (") and "hash does not match" in p for p in problems)
    if row > 1:
        assert any(f"row {row}..{row} missing" in p for p in problems), problems


def test_the_newest_rows_deleted_stay_visible_after_new_rows_arrive(backend: Backend) -> None:
    filled(backend)
    last, kept = row_of(backend, "gate-1:10"), row_of(backend, "gate-1:8")
    backend.tamper(("DELETE FROM events WHERE seq >= 9", []), ("DELETE FROM devices", []))
    assert backend.log.verify() == [
        f"{backend.events}: rows after {kept} deleted (the recorded head is row {last})"
    ]

    backend.log.append(events("gate-2", range(1, 4)), RECEIVED, site=SITE)

    # The next row chains on the recorded head, which is gone. PostgreSQL's rows are numbered
    # by a sequence that never goes back, and each keeps the row it chained on: the hole
    # is named too (SQLite numbers the next row where the deleted ones were).
    holes = [f"row {kept + 1}..{last} missing"] if backend.kind == "postgresql" else []
    assert problems_at(backend) == [*holes, f"row {row_of(backend, 'gate-2:1')}"]


def swap_bodies_and_hashes(b: Backend, x: int, y: int) -> None:
    (body_x, hash_x), (body_y, hash_y) = (
        b.log.db.execute("SELECT body, hash FROM events WHERE row = ?", [r]).fetchone()
        for r in (x, y)
    )
    b.tamper(
        ("UPDATE events SET body = ?, hash = ? WHERE row = ?", [body_y, hash_y, x]),
        ("UPDATE events SET body = ?, hash = ? WHERE row = ?", [body_x, hash_x, y]),
    )


def swap_row_numbers(b: Backend, x: int, y: int) -> None:
    b.tamper(
        ("UPDATE events SET row = -1 WHERE row = ?", [x]),
        ("UPDATE events SET row = ? WHERE row = ?", [x, y]),
        ("UPDATE events SET row = ? WHERE row = -1", [y]),
    )


@pytest.mark.parametrize("swap", [swap_bodies_and_hashes, swap_row_numbers])
def test_two_swapped_rows_are_named(backend: Backend, swap: Any) -> None:
    filled(backend)
    x, y, z = (row_of(backend, f"gate-1:{seq}") for seq in (4, 5, 6))
    swap(backend, x, y)

    problems = backend.log.verify()

    assert [p.split(" (")[0] for p in problems] == [f"row {x}", f"row {y}", f"row {z}"]
    assert all("hash does not match" in p for p in problems)


def test_a_row_added_at_the_end_behind_the_consoles_back_is_named(backend: Backend) -> None:
    filled(backend)
    forged = {
        **dict.fromkeys(EVENT_COLUMNS),
        **{"site": SITE, "id": "gate-1:11", "device": "gate-1", "seq": 11},
        **{"ts": "2026-11-26T00:00:11.000Z", "kind": "access", "type": "granted"},
        **{"body": "{}", "received_at": RECEIVED, "ts_implausible": 0},
    }
    chain = EVENTS if backend.kind == "sqlite" else site_events(SITE)
    head = backend.log.head(backend.events)
    extra = {"prev": head[0]} if backend.kind == "postgresql" else {}
    values = {**forged, "hash": row_hash(head[1], chain, forged), "scheme": 2, **extra}
    backend.tamper(
        (
            f"INSERT INTO events ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
            list(values.values()),
        )
    )
    added = row_of(backend, "gate-1:11")

    assert backend.log.verify() == [
        f"{backend.events}: rows {added}..{added} were not written by the console"
    ]


@pytest.mark.parametrize(
    "damage",
    [
        "ALTER TABLE events DROP COLUMN reason",
        "ALTER TABLE audit DROP COLUMN detail",
        "DROP TABLE alarm_acks",
        "DROP TABLE devices",
    ],
)
def test_a_table_altered_under_the_log_is_named_not_a_traceback(
    backend: Backend, damage: str
) -> None:
    filled(backend)
    backend.tamper((damage, []))

    problems = backend.log.verify()

    assert len(problems) == 1, problems
    assert problems[0].endswith(": altered")


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("UPDATE audit SET username = 'someone' WHERE id = 1", "audit row 1"),
        ("DELETE FROM audit WHERE id = 2", "audit row 2..2 missing"),
        ("DELETE FROM audit WHERE id = 3", "audit"),
        ("UPDATE alarm_acks SET note = '' WHERE row = 2", "acknowledgement row 2"),
        ("DELETE FROM alarm_acks WHERE row = 1", "acknowledgement row 1..1 missing"),
        (
            "INSERT INTO alarm_acks (row, alarm, username, at, note, hash) "
            "SELECT 3, 'gate-1:6', username, at, note, hash FROM alarm_acks WHERE row = 2",
            "acks",
        ),
    ],
)
def test_an_edited_deleted_or_inserted_audit_row_or_acknowledgement_is_named(
    backend: Backend, damage: str, named: str
) -> None:
    from console.users import audit  # noqa: PLC0415

    filled(backend)
    audit(backend.log, "manager1", "export", "again")
    assert [row[2] for row in audit_trail(backend.log)].count("export") == 2

    backend.tamper((damage, []))

    problems = backend.log.verify()
    assert any(p.startswith(named) for p in problems), problems


def test_an_anchor_names_a_log_rewritten_or_cut(backend: Backend) -> None:
    filled(backend)
    row, digest = backend.log.head(backend.events)
    assert backend.log.anchored(row, digest, backend.events) is None
    assert backend.log.anchored(0, GENESIS, backend.events) is None

    backend.tamper(("UPDATE events SET hash = ? WHERE row = ?", ["0" * 64, row]))
    assert "rewritten" in str(backend.log.anchored(row, digest, backend.events))
    backend.tamper(("DELETE FROM events WHERE row = ?", [row]))
    assert "rows were deleted" in str(backend.log.anchored(row, digest, backend.events))


def test_the_chain_continues_across_close_and_reopen(backend: Backend) -> None:
    backend.log.append(events("gate-1", range(1, 4)), RECEIVED, site=SITE)
    log = backend.reopen()

    stored = log.append(events("gate-1", range(3, 6)), RECEIVED, site=SITE)

    assert stored == ["gate-1:4", "gate-1:5"]
    assert log.count() == 5
    assert log.devices(site=SITE)["gate-1"]["duplicates"] == 1
    assert log.verify() == []


def test_duplicates_and_gaps_are_kept_alike(backend: Backend) -> None:
    log = backend.log
    log.append(events("gate-1", [1, 2, 5, 7]) + events("gate-2", [1, 2]), RECEIVED, site=SITE)
    again = log.append(
        [event("gate-1", 2), event("gate-1", 4), event("gate-1", 4)], RECEIVED, site=SITE
    )

    assert again == ["gate-1:4"]
    assert log.gaps(site=SITE) == {"gate-1": [3, 6]}
    device = log.devices(site=SITE)["gate-1"]
    assert (device["site"], device["contiguous"], device["max_seq"]) == (SITE, 2, 7)
    assert device["duplicates"] == 2
    assert [e.id for e in log.entries("device = ?", ["gate-1"])] == [
        "gate-1:1",
        "gate-1:2",
        "gate-1:5",
        "gate-1:7",
        "gate-1:4",
    ]
    assert log.verify() == []
