"""A log you can prove: every column chained, the audit trail and acknowledgements chained,
and `verify` catching each change (the anchors outside the log: test_anchor.py)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from console.alarms import active
from console.chain import EVENT_COLUMNS, EVENTS, GENESIS, row_hash
from console.log import CentralLog, canonical, chain_hash, migrations
from console.users import audit, audit_trail
from tests.console.chain_fixtures import RECEIVED, filled
from tests.console.test_log import events, tamper

ROOT = Path(__file__).resolve().parents[2]
SITE = "test-hall"
GATES = ("gate-1", "gate-2")


def problems_at(log: CentralLog) -> list[str]:
    """What `verify` names, up to the first '(' or ':' (the row)."""
    return [p.split(" (")[0].split(":")[0] for p in log.verify()]


def other(value: Any) -> Any:
    """Another value of the same kind: what someone with the file would write."""
    if isinstance(value, int):
        return value + 1000  # past every seq stored: (device, seq) stays unique
    return "edited" if value is None else f"{value}x"


# -- every column of an event ----------------------------------------------------------------


def test_every_stored_column_but_row_hash_and_scheme_is_chained(log: CentralLog) -> None:
    stored = {row[1] for row in log.db.execute("PRAGMA table_info(events)")}
    assert stored - {"row", "hash", "scheme"} == set(EVENT_COLUMNS)


@pytest.mark.parametrize("column", EVENT_COLUMNS)
def test_an_edit_of_any_event_column_is_named(log: CentralLog, path: Path, column: str) -> None:
    filled(log)
    (value,) = log.db.execute(f"SELECT {column} FROM events WHERE row = 4").fetchone()
    tamper(path, (f"UPDATE events SET {column} = ? WHERE row = 4", [other(value)]))

    problems = log.verify()

    assert len(problems) == 1, problems
    assert problems[0].startswith("row 4 (")
    assert "hash does not match" in problems[0]


@pytest.mark.parametrize("column", ["door", "card_ref", "reason"])
def test_a_column_set_to_null_or_to_a_blob_is_named(
    log: CentralLog, path: Path, column: str
) -> None:
    filled(log)
    tamper(
        path,
        (f"UPDATE events SET {column} = NULL WHERE row = 2", []),
        (f"UPDATE events SET {column} = CAST({column} AS BLOB) WHERE row = 3", []),
    )

    assert problems_at(log) == ["row 2", "row 3"]


def test_an_edit_that_rehashes_its_row_breaks_the_next_one(log: CentralLog, path: Path) -> None:
    filled(log)
    before, row = log.db.query("SELECT * FROM events WHERE row IN (3, 4) ORDER BY row")
    forged = {**row, "ts": "2026-11-26T23:59:00.000Z", "card_ref": "f" * 64}
    digest = row_hash(before["hash"], EVENTS, forged)
    tamper(
        path,
        (
            "UPDATE events SET ts = ?, card_ref = ?, hash = ? WHERE row = 4",
            [forged["ts"], forged["card_ref"], digest],
        ),
    )

    assert problems_at(log) == ["row 5"]


def test_a_row_turned_back_to_the_body_only_rule_is_named(log: CentralLog, path: Path) -> None:
    filled(log)
    # Edit a column the body-only rule does not cover and claim that rule for the row; its
    # body-only hash made good, so only the downgrade itself can give it away.
    previous = log.db.execute("SELECT hash FROM events WHERE row = 4").fetchone()[0]
    body = log.db.execute("SELECT body FROM events WHERE row = 5").fetchone()[0]
    tamper(
        path,
        (
            "UPDATE events SET scheme = 1, ts = '2099-01-01T00:00:00.000Z', hash = ? WHERE row = 5",
            [chain_hash(previous, body)],
        ),
    )

    problems = log.verify()

    assert any(p.startswith("row 5 (") and "downgraded" in p for p in problems), problems


def test_body_only_rows_are_accepted_before_the_first_full_row_and_noted(
    log: CentralLog, path: Path
) -> None:
    # A log written before every column was chained: hashes over the body alone.
    log.append(events("gate-1", range(1, 4)), RECEIVED)
    head = GENESIS
    with closing(sqlite3.connect(path)) as conn:
        for row, body in conn.execute("SELECT row, body FROM events ORDER BY row").fetchall():
            head = chain_hash(head, body)
            conn.execute("UPDATE events SET scheme = 1, hash = ? WHERE row = ?", [head, row])
        conn.execute("UPDATE chain_heads SET hash = ? WHERE chain = 'events'", [head])
        conn.commit()
    log.append(events("gate-1", range(4, 6)), RECEIVED)  # the full-row rule from here on

    checked = log.check()

    assert checked.problems == []
    assert len(checked.notes) == 1
    assert "rows 1..3 are chained by their body only" in checked.notes[0]


def test_a_log_from_before_every_column_was_chained_opens_verified_and_noted(path: Path) -> None:
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        old = Database(conn)
        migrations.apply(old, stop_before="0006_chain")
        head = GENESIS
        for body in map(canonical, events("gate-1", range(1, 4))):
            head = chain_hash(head, body)
            old.execute(
                "INSERT INTO events (id, device, seq, ts, kind, type, body, received_at, hash) "
                "SELECT json_extract(:b, '$.id'), 'gate-1', json_extract(:b, '$.seq'), "
                "json_extract(:b, '$.ts'), 'access', 'granted', :b, :r, :h",
                {"b": body, "r": RECEIVED, "h": head},
            )
        old.execute("INSERT INTO devices (device, contiguous, max_seq) VALUES ('gate-1', 3, 3)")
        for action in ("export", "user added"):
            old.execute(
                "INSERT INTO audit (at, username, action, detail) VALUES (?, 'chief', ?, '')",
                [RECEIVED, action],
            )
        old.execute(
            "INSERT INTO alarm_acks (alarm, username, at, note) VALUES ('gate-1:2', 'g', ?, '')",
            [RECEIVED],
        )

    log = CentralLog(path)  # the chains' migration runs
    try:
        checked = log.check()
        assert checked.problems == []
        assert checked.notes == [
            "rows 1..3 are chained by their body only (written before every column was "
            "chained): an edit of their other columns would not show"
        ]
        assert log.heads()["audit"][0] == 2
        assert log.heads()["acks"][0] == 1
        log.append(events("gate-1", range(4, 6)), RECEIVED)
        audit(log, "chief", "export")
        assert log.verify() == []
    finally:
        log.close()


# -- deleted, inserted, reordered rows --------------------------------------------------------


def test_the_newest_rows_deleted_stay_visible_after_new_rows_arrive(
    log: CentralLog, path: Path
) -> None:
    filled(log)
    # The devices' seq bookkeeping cleared too, so only the chain can tell.
    tamper(path, ("DELETE FROM events WHERE row >= 9", []), ("DELETE FROM devices", []))
    assert log.verify() == ["events: rows after 8 deleted (the recorded head is row 10)"]

    log.append(events("gate-2", range(1, 4)), RECEIVED)  # the collector goes on

    assert problems_at(log) == ["row 9"]


def test_a_row_added_at_the_end_behind_the_consoles_back_is_named(
    log: CentralLog, path: Path
) -> None:
    filled(log)
    forged = {
        **dict.fromkeys(EVENT_COLUMNS),
        **{"id": "gate-1:11", "device": "gate-1", "seq": 11, "ts": "2026-11-26T00:00:11.000Z"},
        **{"kind": "access", "type": "granted", "body": "{}", "received_at": RECEIVED},
        "ts_implausible": 0,
    }
    columns = ", ".join(forged)
    tamper(
        path,
        (
            f"INSERT INTO events ({columns}, hash, scheme) "
            f"VALUES ({', '.join('?' * len(forged))}, ?, 2)",
            [*forged.values(), row_hash(log.head()[1], EVENTS, forged)],
        ),
    )

    assert log.verify() == ["events: rows 11..11 were not written by the console"]


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
    log: CentralLog, path: Path, damage: str
) -> None:
    filled(log)
    tamper(path, (damage, []))

    problems = log.verify()

    assert len(problems) == 1, problems
    assert problems[0].endswith(": altered")


# -- the audit trail and acknowledgements ---------------------------------------------------


@pytest.mark.parametrize(
    ("damage", "named"),
    [
        ("UPDATE audit SET username = 'someone' WHERE id = 1", "audit row 1"),
        ("UPDATE audit SET detail = 'nothing' WHERE id = 2", "audit row 2"),
        ("UPDATE audit SET at = '2026-01-01T00:00:00.000Z' WHERE id = 3", "audit row 3"),
        ("DELETE FROM audit WHERE id = 2", "audit row 2..2 missing"),
        ("DELETE FROM audit WHERE id = 3", "audit"),  # the newest: the recorded head
        (
            "INSERT INTO audit (id, at, username, action, detail, hash) "
            "SELECT 4, at, 'guard9', 'export', '', hash FROM audit WHERE id = 3",
            "audit",
        ),
        ("UPDATE alarm_acks SET username = 'guard3' WHERE row = 1", "acknowledgement row 1"),
        ("UPDATE alarm_acks SET note = '' WHERE row = 2", "acknowledgement row 2"),
        ("UPDATE alarm_acks SET alarm = 'gate-1:6' WHERE row = 2", "acknowledgement row 2"),
        ("DELETE FROM alarm_acks WHERE row = 1", "acknowledgement row 1..1 missing"),
        ("DELETE FROM alarm_acks WHERE row = 2", "acks"),
        (
            "INSERT INTO alarm_acks (row, alarm, username, at, note, hash) "
            "SELECT 3, 'gate-1:6', username, at, note, hash FROM alarm_acks WHERE row = 2",
            "acks",
        ),
    ],
)
def test_an_edited_deleted_or_inserted_audit_row_or_acknowledgement_is_named(
    log: CentralLog, path: Path, damage: str, named: str
) -> None:
    filled(log)
    assert [row[2] for row in audit_trail(log)] == ["alarm acknowledged"] * 2 + ["export"]

    tamper(path, (damage, []))

    problems = log.verify()
    assert any(p.startswith(named) for p in problems), problems


def test_the_newest_acknowledgement_of_an_alarm_counts(log: CentralLog) -> None:
    filled(log)
    forced = next(a for a in active(log) if a.key == "gate-1:7")
    assert forced.acked_by == "guard2"
    assert log.db.execute("SELECT count(*) FROM alarm_acks").fetchone()[0] == 2


def test_audit_rows_written_in_a_callers_transaction_are_part_of_it(log: CentralLog) -> None:
    filled(log)

    def change_that_fails() -> None:
        with log.transaction():
            audit(log, "manager1", "role changed", "guard1 -> manager")
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        change_that_fails()

    assert [row[2] for row in audit_trail(log)].count("role changed") == 0
    assert log.verify() == []
