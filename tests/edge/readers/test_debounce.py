"""Tap debouncing: one tap per presentation, again only after the window."""

from __future__ import annotations

import pytest

from edge.readers.debounce import TapDebouncer


def test_card_left_on_the_reader_is_one_tap() -> None:
    d = TapDebouncer(1.5)
    assert d.arrived("a", 0.0)
    assert not d.arrived("a", 0.1)
    assert not d.arrived("a", 30.0)  # still there: the reader reports it again


def test_quick_second_tap_is_merged_and_a_later_one_counts() -> None:
    d = TapDebouncer(1.5)
    assert d.arrived("a", 0.0)
    d.left("a", 0.2)
    assert not d.arrived("a", 1.0)
    d.left("a", 1.1)
    assert d.arrived("a", 2.7)


def test_other_cards_are_not_held_back() -> None:
    d = TapDebouncer(1.5)
    assert d.arrived("a", 0.0)
    d.left("a", 0.1)
    assert d.arrived("b", 0.2)


def test_memory_is_bounded() -> None:
    d = TapDebouncer(1.0)
    for i in range(10_000):
        d.arrived(f"c{i}", float(i))
        d.left(f"c{i}", float(i))
    assert len(d._last_seen) <= 300


def test_negative_window_refused() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        TapDebouncer(-1)
