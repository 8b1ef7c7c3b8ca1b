"""The reader's lights and buzzer for the PIN prompt: seen at the door, never over an alarm."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest

from edge.core.outputs import Signal
from edge.gpio import GpioIndicator
from simulator.pins import WatchedFactory

GREEN, RED, BUZZER = 5, 6, 13


@pytest.fixture
def lights() -> Iterator[tuple[GpioIndicator, WatchedFactory]]:
    factory = WatchedFactory()
    indicator = GpioIndicator(
        "gate-in", green=GREEN, red=RED, buzzer=BUZZER, active_high=True, factory=factory
    )
    yield indicator, factory
    indicator.close()
    factory.close()


def rises(factory: WatchedFactory, pin: int) -> int:
    states = factory.pin(pin).states
    return sum(1 for a, b in itertools.pairwise(states) if b.state and not a.state)


def test_the_pin_prompt_flickers_green_and_beeps_once(
    lights: tuple[GpioIndicator, WatchedFactory],
) -> None:
    indicator, factory = lights
    indicator.show(Signal.PIN_WANTED)
    assert factory.wait_for(lambda: rises(factory, GREEN) >= 3, timeout=5.0), "no flicker"
    assert rises(factory, BUZZER) == 1
    assert not any(s.state for s in factory.pin(RED).states)


def test_the_pin_prompt_never_silences_a_sounding_alarm(
    lights: tuple[GpioIndicator, WatchedFactory],
) -> None:
    indicator, factory = lights
    indicator.show(Signal.ALARM)
    buzzer = factory.pin(BUZZER)
    assert factory.wait_for(lambda: buzzer.state is True, timeout=5.0)
    sounding_since = len(buzzer.states)
    indicator.show(Signal.PIN_WANTED)
    assert factory.wait_for(lambda: rises(factory, GREEN) >= 2, timeout=5.0)
    assert all(s.state for s in buzzer.states[sounding_since - 1 :])
    assert indicator.background is Signal.ALARM
