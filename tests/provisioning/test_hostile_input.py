"""Hostile HR files through the real `edge-provision cards import`: a clean answer, always.

Generated files mix what HR exports and broken tools produce: other encodings (with and
without --encoding), fields of up to 300,000 characters, CR, LF, CRLF and LF-CR line endings,
control characters, extra fields, blank rows full of commas, swapped columns that put card
numbers where names, technologies or groups belong, files with no header row. Whatever the
file, the command exits 0 or 2 with a message, never prints a traceback, and never prints a
card number that is in the file, nor a control character.
"""

from __future__ import annotations

import csv
import io
import re
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from provisioning.cli import cli
from provisioning.cli_devices import _status_line
from provisioning.staff_csv import COLUMNS

_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
HEADER = list(COLUMNS)
GOOD = ["S001", "佐藤 花子", "総務課", "felica", "0114A1B2C3D4E5F6", "staff;floor-2", "", ""]
CONTROLS = ["\x00", "\x1b[2J", "\x1b]0;owned\x07", "\x85", "\u202e", "\t", "\x7f", "\r"]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = tmp_path_factory.mktemp("hostile") / "site"
    result = CliRunner().invoke(cli, ["site", "init", "--site", "test-site", "--dir", str(site)])
    assert result.exit_code == 0, result.output
    return site


CARD_IDS = st.one_of(
    st.from_regex(r"[0-9A-F]{16}", fullmatch=True),
    st.from_regex(r"[0-9A-F]{14}", fullmatch=True),
    st.from_regex(r"[0-9A-F]{8}", fullmatch=True),
    st.from_regex(r"[0-9A-F]{20}", fullmatch=True),
).filter(lambda card: re.search("[A-F]", card) is not None)  # never mistaken for a line number

TEXT = st.one_of(
    st.sampled_from(["佐藤 花子", "Ｓ０２０", "staff", "felica", "2026-04-01", "", " ", '"', ","]),
    st.text(max_size=30),
    st.builds(lambda base, mark: base + mark, st.text(max_size=5), st.sampled_from(CONTROLS)),
    st.integers(min_value=200, max_value=300_000).map(lambda n: "長" * n),
    st.sampled_from(["9999-12-31", "0001-01-01", "2026-02-30", "２０２７／０３／３１"]),
)


@st.composite
def rows(draw: st.DrawFn, cards: list[str]) -> list[str]:
    """One row: good, mutated, swapped, short, long or blank, with a card number somewhere."""
    card = draw(CARD_IDS)
    cards.append(card)
    row = [*GOOD]
    row[0] = f"S{draw(st.integers(min_value=1, max_value=999)):03d}"
    row[4] = card
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        row[draw(st.integers(min_value=0, max_value=7))] = draw(TEXT)
    shape = draw(st.sampled_from(["plain", "swapped", "shuffled", "extra", "short", "blank"]))
    if shape == "swapped":  # the card number lands in another column
        other = draw(st.sampled_from([0, 1, 2, 3, 5, 6, 7]))
        row[4], row[other] = row[other], row[4]
    elif shape == "shuffled":
        row = draw(st.permutations(row))
    elif shape == "extra":
        row += draw(st.lists(st.sampled_from(["", "x", card]), min_size=1, max_size=4))
    elif shape == "short":
        row = row[: draw(st.integers(min_value=0, max_value=7))]
    elif shape == "blank":
        row = [""] * draw(st.integers(min_value=0, max_value=12))
    return row


@st.composite
def hostile_files(draw: st.DrawFn) -> tuple[bytes, list[str], list[str]]:
    """A hostile HR file, the card numbers written in it, and the extra command options."""
    cards: list[str] = []
    header_kind = draw(st.sampled_from(["good", "good", "none", "shuffled", "extra", "missing"]))
    body = draw(st.lists(rows(cards), max_size=8))
    lines: list[list[str]] = []
    if header_kind == "good":
        lines.append(HEADER)
    elif header_kind == "shuffled":
        lines.append(draw(st.permutations(HEADER)))
    elif header_kind == "extra":
        lines.append(
            [*HEADER, draw(st.sampled_from(["email", "", "card_id", cards[0] if cards else "x"]))]
        )
    elif header_kind == "missing":
        lines.append(HEADER[: draw(st.integers(min_value=0, max_value=7))])
    lines += body
    out = io.StringIO()
    ending = draw(st.sampled_from(["\r\n", "\n", "\r", "\n\r"]))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    csv.writer(out, lineterminator=ending, quoting=quoting).writerows(lines)
    text = out.getvalue()
    encoding = draw(
        st.sampled_from(["utf-8", "utf-8-sig", "cp932", "euc_jp", "iso2022_jp", "utf-16"])
    )
    data = text.encode(encoding, errors="replace")
    if draw(st.integers(min_value=0, max_value=9)) == 0:  # a few random bytes somewhere
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=16)) + data[at:]
    options = []
    if draw(st.booleans()):
        options += [
            "--encoding",
            draw(st.sampled_from([encoding, "utf-8", "cp932", "rot13", "bogus"])),
        ]
    if draw(st.booleans()):
        options.append("--skip-bad")
    return data, cards, options


def _import(site: Path, tmp_path: Path, data: bytes, options: list[str]) -> tuple[int, str]:
    path = tmp_path / "hr.csv"
    path.write_bytes(data)
    result = CliRunner().invoke(cli, ["cards", "import", str(path), "--dir", str(site), *options])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(hostile=hostile_files())
@example(hostile=(("x" * 140_000 + "\n").encode(), [], []))
@example(
    hostile=(
        ",".join(HEADER).encode() + b"\r" + ",".join(GOOD).encode() + b"\r",
        ["0114A1B2C3D4E5F6"],
        [],
    )
)
@example(
    hostile=(
        ",".join(HEADER).encode() + b"\n\r" + ",".join(GOOD).encode() + b"\n\r",
        ["0114A1B2C3D4E5F6"],
        [],
    )
)
@example(hostile=((",".join(HEADER) + "\n,,,,,,,,,,\n").encode(), [], []))
@example(hostile=(",".join(GOOD).encode() + b"\n", ["0114A1B2C3D4E5F6"], []))
def test_import_never_crashes_and_never_shows_a_card_number(
    site: Path, tmp_path: Path, hostile: tuple[bytes, list[str], list[str]]
) -> None:
    data, cards, options = hostile

    code, output = _import(site, tmp_path, data, options)

    assert code in (0, 2), output[-2000:]
    assert "Traceback" not in output
    assert _CONTROL.search(output) is None, output[-2000:]
    for card in cards:
        assert card not in output, output[-2000:]


def _row(*values: str) -> str:
    return ",".join(values) + "\n"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (_row(*HEADER) + _row(*GOOD[:5], "x" * 140_000, "", ""), "line 2: row: a field is longer"),
        (_row(*HEADER) + _row(*GOOD[:1], "長" * 300, *GOOD[2:]), "line 2: name: 300 characters"),
        (_row(*HEADER) + _row(*GOOD, "extra"), "line 2: row: 9 fields, but the header names 8"),
        (
            _row(*HEADER) + _row(*GOOD[:1], "佐藤\x1b[2J", *GOOD[2:]),
            "line 2: name: holds a control",
        ),
        (_row(*HEADER, "email"), "line 1: header column 9: not a known column"),
        (_row(*GOOD), "line 1: header: the first line is not a header row"),
        (
            _row(*HEADER) + _row(*GOOD[:3], GOOD[4], GOOD[3], *GOOD[5:]),
            "line 2: card_tech: not a card technology",
        ),
        (_row(*HEADER) + _row(*GOOD[:5], GOOD[4], "", ""), "group 1 is not a group name"),
        (_row(*HEADER) + _row(*GOOD[:7], "9999-12-31"), "use a date from 2000-01-01"),
    ],
)
def test_each_problem_names_the_line_and_column_not_the_card(
    site: Path, tmp_path: Path, content: str, expected: str
) -> None:
    code, output = _import(site, tmp_path, content.encode(), [])

    assert code == 2
    assert expected in output, output
    assert "0114A1B2C3D4E5F6" not in output
    assert "\x1b" not in output


@pytest.mark.parametrize(
    "data",
    [
        (_row(*HEADER) + _row(*GOOD)).replace("\n", "\r").encode(),
        (_row(*HEADER) + _row(*GOOD)).replace("\n", "\n\r").encode(),
        (_row(*HEADER) + _row(*GOOD) + ",,,,,,,,,,,\n").encode(),
    ],
    ids=["cr-only", "lf-cr", "blank-row-with-extra-commas"],
)
def test_line_endings_and_blank_rows_of_commas_import(tmp_path: Path, data: bytes) -> None:
    site = tmp_path / "site"
    assert (
        CliRunner().invoke(cli, ["site", "init", "--site", "s", "--dir", str(site)]).exit_code == 0
    )

    code, output = _import(site, tmp_path, data, [])

    assert code == 0, output
    assert "imported 1 people" in output


def test_a_missing_site_directory_says_how_to_make_one(tmp_path: Path) -> None:
    csv_file = tmp_path / "hr.csv"
    csv_file.write_text(_row(*HEADER) + _row(*GOOD))
    missing = tmp_path / "no-such-dir"

    result = CliRunner().invoke(cli, ["cards", "import", str(csv_file), "--dir", str(missing)])

    assert result.exit_code == 2
    assert f"no site at {missing}; run edge-provision site init" in result.output
    assert "Traceback" not in result.output
    assert not missing.exists()


def test_terminal_output_of_listed_people_has_no_control_characters(
    tmp_path: Path,
) -> None:
    site = tmp_path / "site"
    assert (
        CliRunner().invoke(cli, ["site", "init", "--site", "s", "--dir", str(site)]).exit_code == 0
    )
    # Names and departments as an older import (or another tool) may have stored them.
    with sqlite3.connect(site / "registry.db") as db:
        db.execute(
            "INSERT INTO people (staff_no, name, department, groups, valid_from, valid_until, "
            "updated_at) VALUES (?, ?, ?, ?, NULL, NULL, '')",
            ["S1\x1b[2J", "佐藤\x1b]0;owned\x07\u202e", "総務\x00課", '["staff"]'],
        )

    for command in (["people", "list"], ["cards", "list"]):
        result = CliRunner().invoke(cli, [*command, "--dir", str(site)])

        assert result.exit_code == 0, result.output
        assert "佐藤" in result.output
        assert _CONTROL.search(result.output) is None, repr(result.output)


@pytest.mark.parametrize(
    "status",
    [
        {"state": "online\x1b[2J", "software": "\x1b]0;owned\x07" * 1000, "backlog": 10**5000},
        {"state": ["x"], "credentials": {"age_s": float("inf"), "version": "\u202e9"}},
        {"credentials": {"age_s": 10**400}, "config_hash": None, "clock_synced": "yes"},
    ],
)
def test_a_device_status_cannot_reach_the_terminal_raw(status: dict[str, object]) -> None:
    line = _status_line(status)

    assert _CONTROL.search(line) is None, repr(line)
    assert len(line) < 400
