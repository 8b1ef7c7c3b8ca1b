"""Value rules, checked over many values rather than a few picked by hand."""

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_config.errors import ConfigError
from firmware_config.fields import (
    check_month_day,
    check_nfc_path,
    check_pin,
    check_slug,
    check_timezone,
    check_topic_root,
)


@pytest.mark.parametrize(
    ("pin", "valid"), [(0, False), (1, False), (2, True), (27, True), (28, False)]
)
def test_pin_range_edges(pin: int, valid: bool) -> None:
    if valid:
        assert check_pin(pin) == pin
    else:
        with pytest.raises(ConfigError, match="HAT EEPROM"):
            check_pin(pin)


@given(st.integers(min_value=-10, max_value=60))
def test_a_pin_is_valid_exactly_from_2_to_27(pin: int) -> None:
    if 2 <= pin <= 27:
        assert check_pin(pin) == pin
    else:
        with pytest.raises(ConfigError, match=f"GPIO {pin} does not exist"):
            check_pin(pin)


@given(st.from_regex(r"[a-z0-9][a-z0-9-]{0,62}", fullmatch=True))
def test_slugs_are_accepted(slug: str) -> None:
    assert check_slug(slug) == slug


@given(st.text(min_size=1).filter(lambda text: any(c.isupper() or c in " _/." for c in text)))
def test_ids_with_capitals_spaces_or_punctuation_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="not a valid id"):
        check_slug(text)


def test_a_long_id_is_refused() -> None:
    with pytest.raises(ConfigError):
        check_slug("a" * 64)


@given(st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2000, 12, 31)))
def test_every_day_of_a_leap_year_is_a_closure_day(day: datetime.date) -> None:
    text = day.strftime("%m-%d")

    assert check_month_day(text) == text


@pytest.mark.parametrize("text", ["12-32", "13-01", "00-10", "2-3", "12/29", "1229"])
def test_impossible_closure_days_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match="MM-DD"):
        check_month_day(text)


@pytest.mark.parametrize(
    ("written", "suggested"),
    [("Tokyo", "Asia/Tokyo"), ("asia/tokyo", "Asia/Tokyo"), ("Asia/Tokio", "Asia/Tokyo")],
)
def test_a_wrong_time_zone_gets_a_suggestion(written: str, suggested: str) -> None:
    with pytest.raises(ConfigError, match=f'did you mean "{suggested}"'):
        check_timezone(written)


@pytest.mark.parametrize("name", ["Asia/Tokyo", "UTC", "Europe/London"])
def test_iana_time_zones_are_accepted(name: str) -> None:
    assert check_timezone(name) == name


@pytest.mark.parametrize("root", ["edge", "kamakura/edge", "a/b-2/c"])
def test_topic_roots_are_accepted(root: str) -> None:
    assert check_topic_root(root) == root


@pytest.mark.parametrize("root", ["", "/edge", "edge/", "edge/+", "#", "Edge", "edge//x", "$SYS"])
def test_bad_topic_roots_are_refused(root: str) -> None:
    with pytest.raises(ConfigError):
        check_topic_root(root)


@pytest.mark.parametrize(
    "path", ["usb", "usb:054c:06c3", "usb:001:004", "tty:USB0:pn532", "udp:127.0.0.1:50000"]
)
def test_nfcpy_paths_are_accepted(path: str) -> None:
    assert check_nfc_path(path) == path


@pytest.mark.parametrize("path", ["", "/dev/ttyUSB0", "usb0", "USB:054c:06c3", "tcp:127.0.0.1:1"])
def test_other_nfc_paths_are_refused(path: str) -> None:
    with pytest.raises(ConfigError, match="nfcpy"):
        check_nfc_path(path)
