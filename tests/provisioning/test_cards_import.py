"""edge-provision cards import: UTF-8 and Shift_JIS exports, every bad row listed, no card id."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.provisioning.commands import provision

HEADER = "staff_no,name,department,card_tech,card_id,groups,valid_from,valid_until\n"
GOOD = [
    "S001,佐藤 花子,総務課,felica,0114A1B2C3D4E5F6,staff;floor-2,2026-04-01,\n",
    "S002,鈴木 太郎,財政課,felica,0114A1B2C3D4E5F7,staff,,2027-03-31\n",
    "S003,高橋 健太,警備,iso14443a,04A2B3C4D5E680,staff;security,,\n",
]


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    assert (
        provision("site", "init", "--site", "kamakura-city-hall", "--dir", str(site)).returncode
        == 0
    )
    return site


def people(site: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(site / "registry.db") as conn:
        return conn.execute(
            "SELECT staff_no, name, groups FROM people ORDER BY staff_no"
        ).fetchall()


def test_utf8_import(site: Path, tmp_path: Path) -> None:
    csv = tmp_path / "staff.csv"
    csv.write_text(HEADER + "".join(GOOD), encoding="utf-8-sig")
    result = provision("cards", "import", str(csv), "--dir", str(site))
    assert result.returncode == 0, result.stderr
    assert "imported 3 people" in result.stdout
    assert people(site)[0] == ("S001", "佐藤 花子", '["staff", "floor-2"]')
    listed = provision("people", "list", "--dir", str(site)).stdout
    assert "S001     佐藤 花子 (総務課) [staff;floor-2] 1 active card(s)" in listed
    registry = (site / "registry.db").read_bytes()
    assert b"0114A1B2C3D4E5F6" not in registry  # cards by reference only


def test_shift_jis_is_read_when_named_and_refused_when_not(site: Path, tmp_path: Path) -> None:
    csv = tmp_path / "hr-export.csv"
    csv.write_bytes((HEADER + "".join(GOOD)).encode("cp932"))

    guessed = provision("cards", "import", str(csv), "--dir", str(site))
    named = provision("cards", "import", str(csv), "--dir", str(site), "--encoding", "cp932")

    assert guessed.returncode == 2
    assert "not UTF-8" in guessed.stderr
    assert "--encoding cp932" in guessed.stderr
    assert named.returncode == 0, named.stderr
    assert "(cp932)" in named.stdout
    assert people(site)[1][1] == "鈴木 太郎"


@pytest.mark.parametrize("encoding", ["euc_jp", "iso2022_jp"])
def test_euc_jp_and_iso_2022_jp_are_refused_unless_named(
    site: Path, tmp_path: Path, encoding: str
) -> None:
    csv = tmp_path / "hr-export.csv"
    csv.write_bytes((HEADER + "".join(GOOD)).encode(encoding))

    guessed = provision("cards", "import", str(csv), "--dir", str(site))
    named = provision("cards", "import", str(csv), "--dir", str(site), "--encoding", encoding)

    assert guessed.returncode == 2, guessed.stdout
    assert "--encoding" in guessed.stderr
    assert named.returncode == 0, named.stderr
    assert people(site)[0][1] == "佐藤 花子"


def test_a_bad_file_is_refused_whole_with_every_bad_row(site: Path, tmp_path: Path) -> None:
    bad = [
        "S004,,市民課,felica,0114A1B2C3D4E5F8,staff,,\n",  # no name
        "S005,伊藤 大輔,市民課,mifare,0114A1B2C3D4E5F9,staff,,\n",  # unknown technology
        "S006,渡辺 美咲,市民課,felica,0114A1B2,staff,,\n",  # IDm too short
        "S007,山本 陽菜,市民課,felica,0114A1B2C3D4E5FA,Staff Room,,\n",  # bad group
        # ends before it starts:
        "S008,中村 葵,市民課,felica,0114A1B2C3D4E5FB,staff,2027/04/01,2026-03-31\n",
        "S001,佐藤 花子,総務課,felica,0114A1B2C3D4E5FC,staff,,\n",  # staff number twice
        "S009,小林 翔,市民課,felica,0114A1B2C3D4E5F6,staff,,\n",  # the same card as line 2
    ]
    csv = tmp_path / "staff.csv"
    csv.write_text(HEADER + "".join(GOOD[:1] + bad), encoding="utf-8")
    result = provision("cards", "import", str(csv), "--dir", str(site))
    assert result.returncode == 2
    err = result.stderr
    for line, words in [
        (3, "name"),
        (4, "use one of felica"),
        (5, "16 hexadecimal digits"),
        (6, "lower-case"),
        (7, "ends before valid_from"),
        (8, "already on line 2"),
        (9, "same card is on line 2"),
    ]:
        assert any(f"line {line}:" in row and words in row for row in err.splitlines()), (
            line,
            words,
            err,
        )
    assert "nothing imported" in err
    assert "0114A1B2" not in err  # card ids are never shown, not even bad ones
    assert people(site) == []
    partial = provision("cards", "import", str(csv), "--dir", str(site), "--skip-bad")
    assert partial.returncode == 0
    assert [p[0] for p in people(site)] == ["S001"]  # the one good row


def test_a_card_already_held_by_someone_else_is_refused(site: Path, tmp_path: Path) -> None:
    first = tmp_path / "a.csv"
    first.write_text(HEADER + GOOD[0], encoding="utf-8")
    assert provision("cards", "import", str(first), "--dir", str(site)).returncode == 0
    second = tmp_path / "b.csv"
    second.write_text(
        HEADER + "S099,別の人,総務課,felica,0114A1B2C3D4E5F6,staff,,\n", encoding="utf-8"
    )
    result = provision("cards", "import", str(second), "--dir", str(site))
    assert result.returncode == 2
    assert "belongs to staff S001" in result.stderr


def test_a_file_in_another_encoding_says_what_to_do(site: Path, tmp_path: Path) -> None:
    csv = tmp_path / "staff.csv"
    csv.write_bytes(b"\xff\xfe" + (HEADER + GOOD[0]).encode("utf-16-le"))
    result = provision("cards", "import", str(csv), "--dir", str(site))
    assert result.returncode == 2
    assert "--encoding" in result.stderr


def test_real_world_mess_blank_lines_and_full_width_digits(site: Path, tmp_path: Path) -> None:
    csv = tmp_path / "hr.csv"
    messy = (
        HEADER
        + "\n"
        + "Ｓ０２０,山田 誠,財政課,felica,０１１４A1B2C3D4E5F0,staff,２０２６-０４-０１,\n"
        + ",,,,,,,\n\n"
    )
    csv.write_bytes(messy.encode("cp932"))
    result = provision("cards", "import", str(csv), "--dir", str(site), "--encoding", "cp932")
    assert result.returncode == 0, result.stderr
    assert "imported 1 people" in result.stdout
    assert people(site) == [("S020", "山田 誠", '["staff"]')]
