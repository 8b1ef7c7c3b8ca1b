"""`edge-agent credentials load` and `edge-agent status`, against a real store and agent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from edge.cardref import card_references
from edge.core.credentials import Credential, DenyReason
from edge.core.policy import AccessPolicy, Rule
from edge.snapshot import build

from .agent_fixtures import CREDENTIALS_KEY, KEY, SimDevice, felica, sim_config
from .sim_process import AgentProcess

POLICY = AccessPolicy(rules=(Rule("staff", frozenset({"gate-east"})),))


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edge.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write_snapshot(
    tmp: Path, version: int, cards: range, lost: range = range(0), **kw: str
) -> Path:
    numbers = [*cards, *lost]
    refs = dict(
        zip(numbers, card_references(KEY, [("felica", felica(n)) for n in numbers]), strict=True)
    )
    data = build(
        CREDENTIALS_KEY,
        site=kw.get("site", "kamakura-city-hall"),
        device=kw.get("device", "gate-1f-east"),
        version=version,
        policy=POLICY,
        credentials=[Credential(refs[n], frozenset({"staff"})) for n in cards],
        deny={refs[n]: DenyReason.LOST for n in lost},
    )
    path = tmp / f"snapshot-v{version}.json"
    path.write_bytes(data)
    return path


def test_load_applies_once_and_refuses_older_and_foreign(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    config = str(device.config)
    first = cli(
        "credentials", "load", str(write_snapshot(tmp_path, 2, range(5))), "--config", config
    )
    assert first.returncode == 0, first.stderr
    assert "applied credential set v2: 5 cards" in first.stdout
    again = cli(
        "credentials", "load", str(write_snapshot(tmp_path, 2, range(5))), "--config", config
    )
    assert "already in use" in again.stdout
    older = cli(
        "credentials", "load", str(write_snapshot(tmp_path, 1, range(9))), "--config", config
    )
    assert older.returncode == 2
    assert "older than v2" in older.stderr
    foreign = write_snapshot(tmp_path, 5, range(5), device="stair-b-2f")
    refused = cli("credentials", "load", str(foreign), "--config", config)
    assert refused.returncode == 2
    assert "for device 'stair-b-2f'" in refused.stderr
    status = cli("status", "--config", config, "--json")
    assert json.loads(status.stdout)["credentials"]["version"] == 2


def test_a_running_agent_denies_a_revoked_card_at_the_next_tap(tmp_path: Path) -> None:
    device: SimDevice = sim_config(tmp_path)
    config = str(device.config)
    assert (
        cli(
            "credentials", "load", str(write_snapshot(tmp_path, 1, range(5))), "--config", config
        ).returncode
        == 0
    )
    agent = AgentProcess(device, tmp_path)
    try:

        def tap(n: int, reader: str = "gate-east-in") -> dict[str, object]:
            return agent.request(op="tap", reader=reader, technology="felica", id=felica(n))

        assert tap(1)["decision"] == "granted"
        revoke = write_snapshot(tmp_path, 2, range(2, 5), lost=range(1, 2))
        assert cli("credentials", "load", str(revoke), "--config", config).returncode == 0
        # The very next tap (at the other reader: the same one would merge it with the
        # first within debounce_s): no restart, no wait.
        assert tap(1, "gate-east-out")["reason"] == "revoked"
        assert tap(3)["decision"] == "granted"
    finally:
        assert agent.terminate() == 0
    status = cli("status", "--config", config)
    assert "credentials: v2, 3 cards" in status.stdout
    assert "system/credentials_applied" in status.stdout or "alarm/lost_card_used" in status.stdout
    report = json.loads(cli("status", "--config", config, "--json", "--events", "100").stdout)
    types = [e["type"] for e in report["events"]]
    assert types.count("credentials_applied") == 1  # v2, picked up live; v1 was there at start
    started = next(e for e in report["events"] if e["type"] == "started")
    assert started["policy_version"] == 1
    assert "lost_card_used" in types


def test_status_without_a_store_says_so(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    result = cli("status", "--config", str(device.config))
    assert result.returncode == 1
    assert "no store yet" in result.stderr


def test_a_store_moved_aside_still_refuses_a_snapshot_from_before_a_revocation(
    tmp_path: Path,
) -> None:
    device = sim_config(tmp_path)
    config = str(device.config)
    before = write_snapshot(tmp_path, 1, range(5))
    revocation = write_snapshot(tmp_path, 2, range(2, 5), lost=range(1, 2))
    for snapshot in (before, revocation):
        assert cli("credentials", "load", str(snapshot), "--config", config).returncode == 0
    guard = Path(f"{device.store}.guard")
    assert guard.stat().st_mode & 0o777 == 0o600
    # Power cut on an SD card: the store is damaged and moved aside at the next open.
    device.store.write_bytes(b"\x00garbage" * 512)
    for part in tmp_path.glob("agent.db-*"):
        part.unlink()
    replayed = cli("credentials", "load", str(before), "--config", config)
    assert replayed.returncode == 2, replayed.stdout
    assert "older than v2" in replayed.stderr
    assert len(list(tmp_path.glob("agent.db.corrupt-*"))) == 1
    # The revocation itself (and anything newer) still applies to the fresh store.
    again = cli("credentials", "load", str(revocation), "--config", config)
    assert again.returncode == 0, again.stderr
    assert "applied credential set v2" in again.stdout
    report = json.loads(cli("status", "--config", config, "--json").stdout)
    assert report["rollback_guard"]["credentials_version"] == 2
    status = cli("status", "--config", config).stdout
    assert "credential snapshots older than v2 refused" in status


def test_the_guard_file_is_written_only_when_a_number_changes(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    config = str(device.config)
    snapshot = write_snapshot(tmp_path, 3, range(5))
    assert cli("credentials", "load", str(snapshot), "--config", config).returncode == 0
    guard = Path(f"{device.store}.guard")
    written = (guard.stat().st_ino, guard.stat().st_mtime_ns)
    assert json.loads(guard.read_text())["credentials_version"] == 3
    assert "already in use" in cli("credentials", "load", str(snapshot), "--config", config).stdout
    agent = AgentProcess(device, tmp_path)  # opens the store, runs, closes it
    assert agent.terminate() == 0
    assert (guard.stat().st_ino, guard.stat().st_mtime_ns) == written
    guard.unlink()  # a guard file lost: the store's copy writes it again at the next open
    assert cli("credentials", "load", str(snapshot), "--config", config).returncode == 0
    assert json.loads(guard.read_text())["credentials_version"] == 3


def test_without_its_guard_file_a_damaged_store_still_yields_its_floor(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    config = str(device.config)
    before = write_snapshot(tmp_path, 1, range(5))
    big = write_snapshot(tmp_path, 2, range(3000))  # enough pages to damage some in the middle
    for snapshot in (before, big):
        assert cli("credentials", "load", str(snapshot), "--config", config).returncode == 0
    Path(f"{device.store}.guard").unlink()  # e.g. a store written before the guard file existed
    data = bytearray(device.store.read_bytes())
    middle = len(data) // 2 // 1024 * 1024
    data[middle : middle + 20 * 1024] = b"\xaa" * 20 * 1024
    device.store.write_bytes(data)
    replayed = cli("credentials", "load", str(before), "--config", config)
    assert replayed.returncode == 2, replayed.stdout
    assert "older than v2" in replayed.stderr
    assert len(list(tmp_path.glob("agent.db.corrupt-*Z"))) == 1
