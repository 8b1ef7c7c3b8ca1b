"""A log you can prove: every column chained, the audit trail and acknowledgements chained,
heads signed into an anchor file by a running collector, and `verify` catching each change."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlite_utils import Database

from console.alarms import acknowledge, active
from console.anchor import (
    Anchorer,
    AnchorError,
    check_file,
    load_or_create_key,
    load_verifier,
    signed_line,
)
from console.chain import EVENT_COLUMNS, EVENTS, GENESIS, row_hash
from console.collector import Collector
from console.log import CentralLog, canonical, chain_hash, migrations
from console.mqtt import ConsoleClient
from console.users import audit, audit_trail
from simulator.readiness import wait_for_output
from tests.broker import Broker, start_broker
from tests.console.test_claims import provision
from tests.console.test_log import event, events, tamper

RECEIVED = "2026-11-26T00:00:02.000Z"
ROOT = Path(__file__).resolve().parents[2]
SITE = "test-hall"
GATES = ("gate-1", "gate-2")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "log.db"


@pytest.fixture
def log(path: Path) -> Iterator[CentralLog]:
    central = CentralLog(path)
    yield central
    central.close()


def alarm(device: str, seq: int, type_: str) -> dict[str, Any]:
    return event(device, seq, {"kind": "alarm", "type": type_, "state": "raised"})


def filled(log: CentralLog) -> None:
    """Ten events (one an alarm acknowledged twice) and three audit rows: a verified log."""
    log.append(events("gate-1", range(1, 6)), RECEIVED)
    log.append([alarm("gate-1", 6, "lost_card_used"), alarm("gate-1", 7, "door_forced")], RECEIVED)
    log.append(events("gate-1", range(8, 11)), RECEIVED)
    audit(log, "manager1", "export", "log.csv: 10 rows")
    assert acknowledge(log, "gate-1:7", "guard1", "on my way")
    assert acknowledge(log, "gate-1:7", "guard2", "door shut")
    assert log.verify() == []


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


# -- anchors -----------------------------------------------------------------------------------


def test_the_anchor_key_is_created_0600_and_refused_when_open_to_others(tmp_path: Path) -> None:
    key_path = tmp_path / "anchor.key"
    key = load_or_create_key(key_path)
    assert key_path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(key_path).public_key() == key.public_key()
    key_path.chmod(0o644)
    with pytest.raises(AnchorError, match="chmod 600"):
        load_or_create_key(key_path)


def anchored_log(log: CentralLog, tmp_path: Path) -> tuple[Path, Ed25519PrivateKey]:
    filled(log)
    key = Ed25519PrivateKey.generate()
    anchors = tmp_path / "anchors.jsonl"
    anchorer = Anchorer(anchors, key, every_s=300)
    anchorer.anchor(log)
    return anchors, key


def test_a_forged_or_edited_anchor_line_is_refused(log: CentralLog, tmp_path: Path) -> None:
    anchors, key = anchored_log(log, tmp_path)
    assert check_file(log, anchors, key.public_key()) == (1, [])
    line = json.loads(anchors.read_text())
    # Someone who rewrote the log writes a line for its new heads, with a key of their own.
    forged = signed_line(log.heads(), Ed25519PrivateKey.generate(), line["at"])
    # Or edits the real line's heads and keeps its signature.
    line["heads"]["events"]["row"] = 5
    edited = json.dumps(line)
    anchors.write_text(f"{forged}\n{edited}\n{{not json\n")

    count, problems = check_file(log, anchors, key.public_key())

    assert count == 3
    assert problems[0].startswith("anchors.jsonl line 1: signed with key")
    assert problems[1] == "anchors.jsonl line 2: the signature does not verify: forged or edited"
    assert problems[2].startswith("anchors.jsonl line 3: not an anchor line")


def test_anchors_are_checked_with_the_key_file_or_its_public_half(
    log: CentralLog, tmp_path: Path
) -> None:
    filled(log)
    key_path = tmp_path / "console-anchor.key"
    anchorer = Anchorer(tmp_path / "anchors.jsonl", load_or_create_key(key_path), every_s=300)
    anchorer.anchor(log)
    public = tmp_path / "anchor.pub"
    public.write_text(anchorer.public_key + "\n")

    assert check_file(log, anchorer.path, load_verifier(key_path)) == (1, [])
    assert check_file(log, anchorer.path, load_verifier(public)) == (1, [])
    public.write_text("not a key\n")
    with pytest.raises(AnchorError, match="64 hexadecimal digits"):
        load_verifier(public)


def rewrite(path: Path, row: int, ts: str) -> None:
    """Edit an event and recompute every hash after it: the chains alone hold again."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("UPDATE events SET ts = ? WHERE row = ?", [ts, row])
        head = GENESIS
        conn.row_factory = sqlite3.Row
        for stored in conn.execute("SELECT * FROM events ORDER BY row").fetchall():
            head = row_hash(head, EVENTS, dict(stored))
            conn.execute("UPDATE events SET hash = ? WHERE row = ?", [head, stored["row"]])
        conn.execute("UPDATE chain_heads SET hash = ? WHERE chain = 'events'", [head])
        conn.commit()


# -- a running collector anchors on its own ---------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_broker(tmp_path / "broker")
    yield b
    b.stop()


def publish(port: int, device: str, seqs: range, retain: bool = False) -> None:
    client = ConsoleClient("127.0.0.1", port, client_id=f"pub-{device}", persistent=False)
    client.start()
    try:
        for seq in seqs:
            body = json.dumps(event(device, seq)).encode()
            client.publish(f"edge/{SITE}/{device}/events/access", body, retain=retain)
    finally:
        client.close()


def test_a_running_collector_anchors_and_its_anchors_catch_a_rewritten_log(
    tmp_path: Path, broker: Broker
) -> None:
    path = tmp_path / "log.db"
    key = Ed25519PrivateKey.generate()
    anchorer = Anchorer(tmp_path / "anchors.jsonl", key, every_s=0.1)
    collector = Collector(
        path,
        site_dir=provision(tmp_path / "site", gates=GATES),
        host="127.0.0.1",
        port=broker.port,
        site=SITE,
        client_id="collector-a",
        anchorer=anchorer,
    )
    collector.start()
    try:
        assert anchorer.wait_for(lambda heads: True, 10), "no anchor at start"
        publish(broker.port, "gate-1", range(1, 21))
        # On its schedule, with nobody asking: a line with all 20 events.
        assert anchorer.wait_for(lambda heads: heads["events"][0] == 20, 30), anchorer
    finally:
        collector.close()
    lines = anchorer.path.read_text().splitlines()
    assert len(lines) >= 3  # at start, on the schedule, on close
    log = CentralLog(path)
    try:
        assert log.count() == 20
        assert check_file(log, anchorer.path, key.public_key()) == (len(lines), [])
        rewrite(path, 5, "2026-11-26T23:59:59.000Z")
        assert log.verify() == []  # the chains alone are fooled

        _count, problems = check_file(log, anchorer.path, key.public_key())
    finally:
        log.close()

    assert problems, "a rewritten log passed its anchors"
    assert all("row" in p and "rewritten" in p for p in problems), problems


def edge_console(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
    )


def test_edge_console_collect_anchors_by_default_and_verify_checks_the_file(
    tmp_path: Path, broker: Broker
) -> None:
    site = provision(tmp_path / "site", gates=GATES)
    (site / "registry.db").touch()
    for device in GATES:  # retained: there when the collector subscribes
        publish(broker.port, device, range(1, 2), retain=True)
    db = tmp_path / "console" / "log.db"
    collect = subprocess.Popen(  # our own module, no shell
        [
            sys.executable,
            "-m",
            "console.cli",
            "collect",
            "--db",
            str(db),
            "--registry",
            str(site / "registry.db"),
            "--host",
            "127.0.0.1",
            "--port",
            str(broker.port),
            "--site",
            SITE,
            "--user",
            "collector-a",
            "--anchor-every-s",
            "0.2",
        ],
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert collect.stderr is not None
        assert wait_for_output(collect.stderr, b"events 2:", 30), "never anchored both events"
    finally:
        collect.send_signal(signal.SIGTERM)
        collect.wait(30)
    assert collect.returncode == 0
    anchors, key = db.with_name("anchors.jsonl"), db.with_name("console-anchor.key")
    assert key.stat().st_mode & 0o777 == 0o600
    assert anchors.stat().st_mode & 0o777 == 0o600

    intact = edge_console("verify", "--db", str(db), "--anchor-file", str(anchors))
    assert intact.returncode == 0, intact.stdout + intact.stderr
    assert "anchor lines hold" in intact.stdout

    rewrite(db, 1, "2026-11-26T23:59:59.000Z")
    assert edge_console("verify", "--db", str(db)).returncode == 0  # the chains alone: fooled
    caught = edge_console("verify", "--db", str(db), "--anchor-file", str(anchors))
    assert caught.returncode == 1
    assert "TAMPERED: anchors.jsonl line" in caught.stdout
    assert "the log was rewritten" in caught.stdout

    stranger = tmp_path / "stranger.key"
    load_or_create_key(stranger)
    refused = edge_console(
        "verify", "--db", str(db), "--anchor-file", str(anchors), "--anchor-key", str(stranger)
    )
    assert refused.returncode == 1
    assert "not the anchor key" in refused.stdout


def test_the_anchor_options_are_in_help() -> None:
    collect = edge_console("collect", "--help").stdout
    assert "--anchor-file" in collect
    assert "--anchor-every-s" in collect
    assert "--no-anchor" in collect
    verify = edge_console("verify", "--help").stdout
    assert "--anchor-file" in verify
    assert "--anchor-key" in verify


def test_head_all_and_verify_anchor_per_chain(log: CentralLog, path: Path) -> None:
    filled(log)
    heads = edge_console("head", "--db", str(path), "--all").stdout.split()
    assert [h.split(":")[0] for h in heads] == ["events", "audit", "acks"]
    ok = edge_console("verify", "--db", str(path), *[f"--anchor={h}" for h in heads])
    assert ok.returncode == 0, ok.stdout
    tamper(
        path,
        ("UPDATE alarm_acks SET note = 'x', hash = ? WHERE row = 2", ["0" * 64]),
        ("UPDATE chain_heads SET hash = ? WHERE chain = 'acks'", ["0" * 64]),
    )
    bad = edge_console("verify", "--db", str(path), f"--anchor={heads[2]}")
    assert bad.returncode == 1
    assert "acknowledgement row 2 no longer ends in" in bad.stdout
    junk = edge_console("verify", "--db", str(path), "--anchor", "nope:1:abc")
    assert junk.returncode == 2
    assert "use [CHAIN:]ROW:HASH" in junk.stderr
