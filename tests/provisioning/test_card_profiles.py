"""Proving cards from HR's CSV to each device: profiles, diversified keys, one key per device."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge.core.credentials import CardProfile
from edge.signing import load_public_key
from edge.snapshot import Snapshot, parse
from provisioning.card_keys import DESFIRE_SLOTS, desfire_key, lite_s_key, load_master
from provisioning.keys import SiteKeys
from tests.provisioning.commands import provision

HEADER = "staff_no,name,department,card_tech,card_id,groups,valid_from,valid_until,card_profile\n"
LITE_IDM = "0114A1B2C3D4E5F6"
DESFIRE_UID = "04A2B3C4D5E680"
ROWS = [
    f"S001,佐藤 花子,総務課,felica,{LITE_IDM},staff,,,lite-s\n",
    f"S002,鈴木 太郎,警備,iso14443a,{DESFIRE_UID},staff;security,,,desfire\n",
    "S003,高橋 健太,財政課,felica,0114A1B2C3D4E5F7,staff,,,\n",
]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    steps = [
        ("site", "init", "--site", "kamakura-city-hall"),
        ("device", "add", "gate-1f-east", "--role", "gate"),
        ("device", "add", "stair-b-2f", "--role", "door"),
        ("device", "add", "sensors-2f", "--role", "sensor-node"),
        ("rules", "add", "staff", "--doors", "gate-east,stair-b-2f"),
    ]
    for step in steps:
        result = provision(*step, "--dir", str(site))
        assert result.returncode == 0, (step, result.stderr)
    return site


def published(site: Path, out: Path, device: str) -> Snapshot:
    return parse(
        next(out.glob(f"{device}.v*.json")).read_bytes(),
        load_public_key(site / "keys" / "credentials.pub"),
        site="kamakura-city-hall",
        device=device,
    )


def test_each_device_gets_only_the_key_it_checks_each_proving_card_with(
    site: Path, tmp_path: Path
) -> None:
    csv = tmp_path / "staff.csv"
    csv.write_text(HEADER + "".join(ROWS), encoding="utf-8")
    result = provision("cards", "import", str(csv), "--dir", str(site))
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out"
    assert provision("publish", "--dir", str(site), "--out", str(out)).returncode == 0

    master = load_master(SiteKeys(site / "keys"))
    lite_ck = lite_s_key(master, bytes.fromhex(LITE_IDM))
    gate_key = desfire_key(master, DESFIRE_SLOTS["gate"], bytes.fromhex(DESFIRE_UID))
    door_key = desfire_key(master, DESFIRE_SLOTS["door"], bytes.fromhex(DESFIRE_UID))
    assert gate_key != door_key

    gate = published(site, out, "gate-1f-east")
    profiles = {c.profile for c in gate.credentials}
    assert profiles == {CardProfile.UID, CardProfile.LITE_S, CardProfile.DESFIRE}
    assert sorted(gate.card_keys.values()) == sorted([lite_ck, gate_key])
    door = published(site, out, "stair-b-2f")
    assert sorted(door.card_keys.values()) == sorted([lite_ck, door_key])
    sensors = published(site, out, "sensors-2f")
    assert not sensors.card_keys

    registry = (site / "registry.db").read_bytes()
    for secret in (master.hex(), LITE_IDM, DESFIRE_UID):
        assert secret.encode() not in registry
    for snapshot in out.glob("*.json"):
        assert master.hex().encode() not in snapshot.read_bytes()


@pytest.mark.parametrize(
    ("row", "words"),
    [
        ("S009,山田,総務課,iso14443a,04A2B3C4D5E681,staff,,,lite-s\n", "FeliCa"),
        ("S009,山田,総務課,felica,0114A1B2C3D4E5F8,staff,,,desfire\n", "7-byte UID"),
        ("S009,山田,総務課,felica,0114A1B2C3D4E5F8,staff,,,magstripe\n", "uid, lite-s or desfire"),
    ],
)
def test_a_profile_that_does_not_fit_the_card_is_named_without_the_card_number(
    site: Path, tmp_path: Path, row: str, words: str
) -> None:
    csv = tmp_path / "staff.csv"
    csv.write_text(HEADER + row, encoding="utf-8")
    result = provision("cards", "import", str(csv), "--dir", str(site))
    assert result.returncode != 0
    assert "card_profile" in result.stderr
    assert words in result.stderr
    assert "04A2B3C4D5E681" not in result.stderr + result.stdout
    assert "0114A1B2C3D4E5F8" not in result.stderr + result.stdout
    with sqlite3.connect(site / "registry.db") as conn:
        assert conn.execute("SELECT count(*) FROM cards").fetchone()[0] == 0


def test_groups_that_need_proof_reach_the_policy(site: Path, tmp_path: Path) -> None:
    assert provision("rules", "require-proof", "security", "--dir", str(site)).returncode == 0
    out = tmp_path / "out"
    assert provision("publish", "--dir", str(site), "--out", str(out)).returncode == 0
    assert published(site, out, "gate-1f-east").policy.authenticated_groups == {"security"}
