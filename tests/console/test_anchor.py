"""Anchors outside the log: the chains' heads signed into a file by a running collector, and
`verify --anchor-file` catching a log rewritten with fresh hashes."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.anchor import (
    Anchorer,
    AnchorError,
    check_file,
    load_or_create_key,
    load_verifier,
    signed_line,
)
from console.chain import EVENTS, GENESIS, row_hash
from console.collector import Collector
from console.log import CentralLog
from console.mqtt import ConsoleClient
from simulator.readiness import wait_for_output
from tests.broker import Broker
from tests.console.chain_fixtures import filled
from tests.console.commands import edge_console
from tests.console.test_claims import provision
from tests.console.test_log import event, tamper

pytestmark = pytest.mark.services  # starts mosquitto, pcscd, an emulated card or a building

ROOT = Path(__file__).resolve().parents[2]
SITE = "test-hall"
GATES = ("gate-1", "gate-2")


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
        if collect.stderr is not None:
            collect.stderr.close()
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


def test_anchoring_goes_on_when_the_logs_database_fails(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = CentralLog(tmp_path / "log.db")
    log.append([event("gate-1", 1)], "2026-11-26T10:00:00.000Z")
    now = [0.0]
    anchorer = Anchorer(
        tmp_path / "anchors.jsonl", Ed25519PrivateKey.generate(), every_s=1, clock=lambda: now[0]
    )
    log.db.execute("ALTER TABLE events RENAME TO events_away")  # the database fails the read
    for _ in range(3):
        anchorer.tick(log)  # neither raises (sqlite3's own error) nor logs it each time
        now[0] += 2
    anchorer.anchor(log)
    failures = [
        r for r in caplog.records if r.levelname == "ERROR" and "cannot anchor" in r.message
    ]
    assert len(failures) == 1
    assert anchorer.written == 0
    log.db.execute("ALTER TABLE events_away RENAME TO events")  # back: anchoring resumes
    anchorer.tick(log)
    assert anchorer.written == 1
    log.close()
