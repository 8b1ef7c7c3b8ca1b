"""Mutated example configurations through the real `edge-agent check`: a clean error, always.

Each example file gets one or more values replaced with something an installer, an editor
or a broken disk might leave there: extreme and non-finite numbers, very deep nesting, very
long or control-laden text, other TOML types; or the whole file re-encoded or overwritten
with random bytes. Whatever it is, `check` either accepts it or lists problems and exits
2: never a traceback, never a control character on the terminal, never an endless line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import firmware_config
from edge.cli import EXIT_INVALID_CONFIG, cli

EXAMPLES = {
    path.name: path.read_text(encoding="utf-8")
    for path in sorted((Path(firmware_config.__file__).parent / "examples").glob("*.toml"))
}
_SETTING = re.compile(r"^(\s*[A-Za-z0-9_]+\s*=\s*)(.*)$", re.MULTILINE)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_MAX_LINE = 2000


def _nested(depth: int, inline_table: bool) -> str:
    return "{ a = " * depth + "1" + " }" * depth if inline_table else "[" * depth + "]" * depth


NUMBERS = st.one_of(
    st.sampled_from(["inf", "-inf", "nan", "+nan", "1e308", "-1e308", "1e-320", "-0", "0"]),
    st.integers().map(str),
    st.integers(min_value=20, max_value=6000).map(lambda digits: "9" * digits),
    st.integers(min_value=20, max_value=6000).map(lambda digits: "0x" + "f" * digits),
    st.floats().map(lambda x: repr(x).replace("e+", "e")),
)
NESTING = st.builds(_nested, st.integers(min_value=1, max_value=1500), st.booleans())
TEXT = st.one_of(
    st.text(max_size=300).map(json.dumps),  # \uXXXX escapes for controls
    st.integers(min_value=200, max_value=300_000).map(lambda n: '"' + "x" * n + '"'),
    st.sampled_from(['"\\u001b[2J\\u001b[31m"', '"a\\u0000b"', '"\\u202egate"', '""']),
)
OTHER_TYPES = st.sampled_from(
    ["true", "1979-05-27T07:32:00Z", "07:32:00", "1979-05-27", "{}", "[1, 2]", '["a", 1]']
)
VALUES = st.one_of(NUMBERS, NESTING, TEXT, OTHER_TYPES)


@st.composite
def mutated_configs(draw: st.DrawFn) -> bytes:
    """An example configuration with some values replaced, perhaps re-encoded or corrupted."""
    text = EXAMPLES[draw(st.sampled_from(sorted(EXAMPLES)))]
    settings_found = list(_SETTING.finditer(text))
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        match = draw(st.sampled_from(settings_found))
        value = draw(VALUES)
        text = text.replace(match[0], match[1] + value, 1)
    if draw(st.booleans()):  # a key of its own, anywhere
        key = draw(st.text(min_size=1, max_size=80).map(json.dumps))
        text = text.replace("\n[", f"\n{key} = {draw(VALUES)}\n[", 1)
    how = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "encoding", "bytes"]))
    if how == "encoding":
        encoding = draw(st.sampled_from(["utf-16", "shift_jis", "euc_jp", "iso2022_jp", "latin-1"]))
        return text.encode(encoding, errors="replace")
    data = text.encode("utf-8")
    if how == "bytes":
        at = draw(st.integers(min_value=0, max_value=len(data)))
        data = data[:at] + draw(st.binary(min_size=1, max_size=64)) + data[at:]
    return data


def _check(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(data)

    result = CliRunner().invoke(cli, ["check", "--config", str(path)])

    output = result.output
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit), output[-2000:]
    assert result.exit_code in (0, EXIT_INVALID_CONFIG), output[-2000:]
    assert _CONTROL.search(output) is None, output[-2000:]
    assert all(len(line) < _MAX_LINE for line in output.splitlines()), "an endless line"
    if result.exit_code == EXIT_INVALID_CONFIG:
        assert "fix:" in output


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=mutated_configs())
@example(data=EXAMPLES["security-gate.toml"].replace("pin = 17", "pin = inf").encode())
@example(data=EXAMPLES["security-gate.toml"].replace("pin = 17", "pin = nan").encode())
@example(data=EXAMPLES["security-gate.toml"].replace("pin = 17", "pin = " + "9" * 5000).encode())
@example(data=EXAMPLES["security-gate.toml"].replace("pin = 17", "pin = 0x" + "f" * 5000).encode())
@example(
    data=EXAMPLES["security-gate.toml"]
    .replace("pin = 17", "pin = " + _nested(1000, False))
    .encode()
)
@example(
    data=EXAMPLES["security-gate.toml"].replace("pin = 17", "pin = " + _nested(300, False)).encode()
)
@example(
    data=EXAMPLES["security-gate.toml"]
    .replace("held_open_s = 30", "held_open_s = " + "9" * 400)
    .encode()
)
@example(
    data=EXAMPLES["stairway-door.toml"].replace('kind = "nfc"', "kind = 0x" + "f" * 4000).encode()
)
@example(
    data=EXAMPLES["security-gate.toml"].replace('role = "gate"', "role = 0x" + "f" * 4000).encode()
)
def test_check_never_prints_a_traceback(tmp_path: Path, data: bytes) -> None:
    _check(tmp_path, data)


@pytest.mark.parametrize(
    ("old", "new", "shown"),
    [
        (
            "pre_alarm_s = 10",
            "pre_alarm_s = 1e9",
            "pre_alarm_s = 1000000000.0: must be at most 3600",
        ),
        ("hold_s = 120", "hold_s = 1e9", "hold_s = 1000000000.0: must be at most 86400"),
        ("capacity = 3", "capacity = 10000000", "capacity = 10000000: must be at most 100000"),
        ('name = "', 'name = "' + "長" * 201 + '" # ', "longer than 200 characters"),
    ],
)
def test_durations_capacities_and_text_have_upper_bounds(
    tmp_path: Path, old: str, new: str, shown: str
) -> None:
    name = next(name for name, text in EXAMPLES.items() if old in text)
    path = tmp_path / "agent.toml"
    path.write_text(EXAMPLES[name].replace(old, new, 1), encoding="utf-8")

    result = CliRunner().invoke(cli, ["check", "--config", str(path)])

    assert result.exit_code == EXIT_INVALID_CONFIG, result.output
    assert shown in result.output


def test_an_escape_sequence_in_a_name_is_refused_and_shown_escaped(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    text = EXAMPLES["security-gate.toml"].replace(
        'name = "1F east security gate"', 'name = "\\u001b]0;owned\\u0007\\u001b[2J"'
    )
    path.write_text(text, encoding="utf-8")

    result = CliRunner().invoke(cli, ["check", "--config", str(path)])

    assert result.exit_code == EXIT_INVALID_CONFIG
    assert "\x1b" not in result.output
    assert 'doors[0].name = "\\u001b]0;owned\\u0007\\u001b[2J"' in result.output
    assert "control or invisible characters" in result.output


def test_a_huge_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    path.write_bytes(b"# " + b"x" * (8 * 1024 * 1024))

    result = CliRunner().invoke(cli, ["check", "--config", str(path)])

    assert result.exit_code == EXIT_INVALID_CONFIG
    assert "larger than 256 KiB" in result.output


def test_many_problems_are_capped(tmp_path: Path) -> None:
    path = tmp_path / "agent.toml"
    unknown = "".join(f"unknown_{n} = 1\n" for n in range(200))
    path.write_text(EXAMPLES["security-gate.toml"].replace("[device]\n", "[device]\n" + unknown))

    result = CliRunner().invoke(cli, ["check", "--config", str(path)])

    assert result.exit_code == EXIT_INVALID_CONFIG
    assert "… and 150 more" in result.output
