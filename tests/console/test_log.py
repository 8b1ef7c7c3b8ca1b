"""The central log on its own (SQLite only): the hash chain and what `verify` catches,
de-duplication, gaps in seq, refused events, a chain continued across a reopen.
(Every chained column, the audit and acknowledgement chains and anchors: test_chain.py.)"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from console.log import GENESIS, CentralLog, LogError, canonical, chain_hash

RECEIVED = "2026-11-26T00:00:02.000Z"


def event(device: str, seq: int, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "v": 1,
        "id": f"{device}:{seq}",
        "seq": seq,
        "device": device,
        "ts": f"2026-11-26T00:{seq // 60 % 60:02d}:{seq % 60:02d}.000Z",
        "clock_synced": True,
        "kind": "access",
        "type": "granted",
        "door": device,
        "card_ref": f"{seq:064x}",
        "reason": "granted",
    }
    body.update(changes or {})
    return body


def events(device: str, seqs: Iterable[int]) -> list[dict[str, Any]]:
    return [event(device, s) for s in seqs]


def tamper(path: Path, *statements: tuple[str, list[Any]]) -> None:
    """Change the file behind the log's back, as someone with the file would."""
    with closing(sqlite3.connect(path, isolation_level=None)) as conn:
        conn.execute("BEGIN")
        for sql, params in statements:
            conn.execute(sql, params)
        conn.execute("COMMIT")


def full_row_hash(previous: str, row: dict[str, Any]) -> str:
    """The rule written out: SHA-256 over the previous hash, a newline and the JSON (sorted
    keys, no spaces) of the chain, the scheme and every non-NULL column but row, hash, scheme."""
    columns = {k: v for k, v in row.items() if k not in ("row", "hash", "scheme") and v is not None}
    text = json.dumps(
        {"chain": "events", "scheme": 2, "row": columns},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(f"{previous}\n{text}".encode()).hexdigest()


def stored_row(log: CentralLog, event_id: str) -> dict[str, Any]:
    rows = list(log.db.query("SELECT * FROM events WHERE id = ?", [event_id]))
    return rows[0]


def row_of(log: CentralLog, event_id: str) -> tuple[int, str, str]:
    row, body, stored = log.db.execute(
        "SELECT row, body, hash FROM events WHERE id = ?", [event_id]
    ).fetchone()
    return int(row), str(body), str(stored)


# -- the chain -----------------------------------------------------------------------------


def test_an_intact_log_verifies_and_each_hash_chains_on_the_previous(log: CentralLog) -> None:
    batch_1 = events("gate-1", range(1, 6))
    batch_2 = events("gate-2", range(1, 4)) + events("gate-1", range(6, 8))
    assert log.append(batch_1, RECEIVED) == [e["id"] for e in batch_1]
    assert log.append(batch_2, RECEIVED) == [e["id"] for e in batch_2]

    assert log.verify() == []
    head = GENESIS
    for expected, entry in zip(batch_1 + batch_2, log.entries(), strict=True):
        row = stored_row(log, entry.id)
        assert entry.body == expected
        assert row["body"] == canonical(expected)
        assert row["scheme"] == 2
        head = full_row_hash(head, row)
        assert row["hash"] == head


def test_chain_hash_is_sha256_of_the_previous_hash_newline_text() -> None:
    body = canonical(event("gate-1", 1))
    assert chain_hash(GENESIS, body) == hashlib.sha256(f"{GENESIS}\n{body}".encode()).hexdigest()
    assert canonical({"b": 1, "a": "é"}) == '{"a":"é","b":1}'


def test_verify_names_an_edited_row(log: CentralLog, path: Path) -> None:
    log.append(events("gate-1", range(1, 11)), RECEIVED)
    row, body, _ = row_of(log, "gate-1:4")
    edited = body.replace('"type":"granted"', '"type":"denied"')
    assert edited != body
    tamper(path, ("UPDATE events SET body = ?, type = 'denied' WHERE row = ?", [edited, row]))

    problems = log.verify()

    assert len(problems) == 1, problems
    assert f"row {row} (gate-1:4)" in problems[0]
    assert "hash does not match" in problems[0]


def test_an_edit_that_rewrites_its_own_hash_still_breaks_the_next_row(
    log: CentralLog, path: Path
) -> None:
    log.append(events("gate-1", range(1, 11)), RECEIVED)
    previous_hash = row_of(log, "gate-1:3")[2]
    stored = stored_row(log, "gate-1:4")
    row = stored["row"]
    edited = {**stored, "body": stored["body"].replace('"reason":"granted"', '"reason":"forged"')}
    tamper(
        path,
        (
            "UPDATE events SET body = ?, hash = ? WHERE row = ?",
            [edited["body"], full_row_hash(previous_hash, edited), row],
        ),
    )

    problems = log.verify()

    assert len(problems) == 1, problems
    assert f"row {row + 1} (gate-1:5)" in problems[0]


@pytest.mark.parametrize("deleted", ["gate-1:1", "gate-1:5"])
def test_verify_names_a_deleted_row(log: CentralLog, path: Path, deleted: str) -> None:
    log.append(events("gate-1", range(1, 11)), RECEIVED)
    row = row_of(log, deleted)[0]
    tamper(path, ("DELETE FROM events WHERE row = ?", [row]))

    problems = log.verify()

    assert problems, "a deleted row went unnoticed"
    # The row after the hole no longer chains on what precedes it.
    assert any(f"row {row + 1} (gate-1:{int(deleted[7:]) + 1})" in p for p in problems), problems
    if row > 1:
        assert any(f"row {row}..{row} missing" in p for p in problems), problems


def test_verify_notices_the_newest_row_deleted(log: CentralLog, path: Path) -> None:
    log.append(events("gate-1", range(1, 11)), RECEIVED)
    tamper(path, ("DELETE FROM events WHERE id = 'gate-1:10'", []))

    assert log.verify() != [] or log.gaps() != {}


def swap_bodies_and_hashes(path: Path, a: int, b: int) -> None:
    with closing(sqlite3.connect(path)) as conn:
        (body_a, hash_a), (body_b, hash_b) = (
            conn.execute("SELECT body, hash FROM events WHERE row = ?", [r]).fetchone()
            for r in (a, b)
        )
    tamper(
        path,
        ("UPDATE events SET body = ?, hash = ? WHERE row = ?", [body_b, hash_b, a]),
        ("UPDATE events SET body = ?, hash = ? WHERE row = ?", [body_a, hash_a, b]),
    )


def swap_row_numbers(path: Path, a: int, b: int) -> None:
    tamper(
        path,
        ("UPDATE events SET row = -1 WHERE row = ?", [a]),
        ("UPDATE events SET row = ? WHERE row = ?", [a, b]),
        ("UPDATE events SET row = ? WHERE row = -1", [b]),
    )


@pytest.mark.parametrize("swap", [swap_bodies_and_hashes, swap_row_numbers])
def test_verify_names_two_swapped_rows(log: CentralLog, path: Path, swap: Any) -> None:
    log.append(events("gate-1", range(1, 11)), RECEIVED)
    a, b = row_of(log, "gate-1:4")[0], row_of(log, "gate-1:5")[0]
    swap(path, a, b)

    problems = log.verify()

    # Both swapped rows are named; following the stored chain, the row after them breaks too.
    assert [p.split(" (")[0] for p in problems] == [f"row {a}", f"row {b}", f"row {b + 1}"]
    assert all("hash does not match" in p for p in problems)


# -- duplicates and gaps -------------------------------------------------------------------


def test_duplicates_are_stored_once_and_counted(log: CentralLog) -> None:
    first = events("gate-1", range(1, 6))
    assert len(log.append(first, RECEIVED)) == 5

    again = log.append([event("gate-1", 2), event("gate-1", 6), event("gate-1", 6)], RECEIVED)

    assert again == ["gate-1:6"]  # 2 was stored before; the second 6 repeats the first
    assert log.count() == 6
    device = log.devices()["gate-1"]
    assert device["duplicates"] == 2
    assert (device["contiguous"], device["max_seq"]) == (6, 6)
    assert [e.id for e in log.entries()] == [f"gate-1:{s}" for s in range(1, 7)]
    assert log.verify() == []


def test_gaps_list_the_missing_seqs_until_they_arrive(log: CentralLog) -> None:
    log.append(events("gate-1", [1, 2, 5, 7]) + events("gate-2", [1, 2]), RECEIVED)

    assert log.gaps() == {"gate-1": [3, 4, 6]}
    assert (log.devices()["gate-1"]["contiguous"], log.devices()["gate-1"]["max_seq"]) == (2, 7)

    log.append(events("gate-1", [4, 3]), RECEIVED)
    assert log.gaps() == {"gate-1": [6]}
    assert log.devices()["gate-1"]["contiguous"] == 5

    log.append(events("gate-1", [6]), RECEIVED)
    assert log.gaps() == {}
    assert (log.devices()["gate-1"]["contiguous"], log.devices()["gate-1"]["max_seq"]) == (7, 7)
    assert log.devices()["gate-2"]["contiguous"] == 2
    assert log.verify() == []


# -- refused events ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({k: v for k, v in event("gate-1", 3).items() if k != "id"}, "without a valid id"),
        (event("gate-1", 3, {"id": "gate-1:4"}), "does not match its seq"),
        (event("gate-1", 3, {"id": "gate-1"}), "without a valid id"),
        (event("gate-1", 3, {"seq": "3"}), "without a valid id"),
        (event("gate-1", 3, {"id": 17}), "without a valid id"),
    ],
)
def test_a_malformed_event_is_refused_and_nothing_of_its_batch_is_stored(
    log: CentralLog, bad: dict[str, Any], message: str
) -> None:
    log.append(events("gate-1", [1]), RECEIVED)

    with pytest.raises(LogError, match=message):
        log.append([event("gate-1", 2), bad], RECEIVED)

    assert log.count() == 1  # the batch is one transaction: the good event went too
    assert log.devices()["gate-1"]["max_seq"] == 1
    assert log.verify() == []


# -- reopening -----------------------------------------------------------------------------


def test_the_chain_continues_across_close_and_reopen(path: Path) -> None:
    first = CentralLog(path)
    first.append(events("gate-1", range(1, 4)), RECEIVED)
    head = row_of(first, "gate-1:3")[2]
    first.close()
    first.close()  # idempotent

    second = CentralLog(path)
    try:
        stored = second.append(events("gate-1", range(3, 6)), RECEIVED)
        assert stored == ["gate-1:4", "gate-1:5"]  # 3 survived the reopen, so it is a duplicate
        row_4 = stored_row(second, "gate-1:4")
        assert row_4["hash"] == full_row_hash(head, row_4)
        assert second.count() == 5
        assert second.devices()["gate-1"]["duplicates"] == 1
        assert second.verify() == []
    finally:
        second.close()
