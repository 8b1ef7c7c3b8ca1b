"""Simulated wiring: put every input of a device in its idle state on gpiozero's MockFactory."""

from __future__ import annotations

import threading
from collections.abc import Callable

from gpiozero.pins.mock import MockFactory, MockPin

from firmware_config.model import DeviceConfig


def idle_inputs(factory: MockFactory, config: DeviceConfig) -> None:
    """Drive each input to its resting level: doors closed, buttons up, no fire, nobody there."""
    levels: list[tuple[int, str]] = []
    for door in config.doors:
        if door.contact:
            levels.append((door.contact.pin, door.contact.open_when))
        if door.exit_button:
            levels.append((door.exit_button.pin, door.exit_button.pressed_when))
        if door.fire_input:
            levels.append((door.fire_input.pin, door.fire_input.alarm_when))
    levels += [(p.pin, p.occupied_when) for p in config.presence if p.kind != "ld2410-uart"]
    levels += [(d.pin, d.open_when) for d in config.room_doors]  # shut
    for pin, asserted in levels:
        mock = factory.pin(pin)
        if asserted == "high":
            mock.drive_low()
        else:
            mock.drive_high()


def assert_input(factory: MockFactory, pin: int, asserted_when: str, asserted: bool) -> None:
    """Drive an input pin to its asserted (open, pressed, fire, presence) level or back."""
    mock = factory.pin(pin)
    if (asserted_when == "high") == asserted:
        mock.drive_high()
    else:
        mock.drive_low()


class WatchedPin(MockPin):  # type: ignore[misc]  # gpiozero is untyped
    """A mock pin that tells its factory each time its level changes."""

    def _change_state(self, value: bool) -> bool:
        changed = bool(super()._change_state(value))
        if changed:
            self.factory.pin_changed()
        return changed


class WatchedFactory(MockFactory):  # type: ignore[misc]  # gpiozero is untyped
    """gpiozero's MockFactory whose pins announce changes, so a test waits on a condition.

    gpiozero blinks LEDs and beeps buzzers on its own threads: `wait_for` returns as soon as a
    pin change makes the predicate true, instead of polling the pins.
    """

    def __init__(self) -> None:
        super().__init__(pin_class=WatchedPin)
        self._changes = threading.Condition()

    def pin_changed(self) -> None:
        """Wake the waiters (called by the pins, on any thread)."""
        with self._changes:
            self._changes.notify_all()

    def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Wait until `predicate()` holds after some pin change; False after `timeout`."""
        with self._changes:
            return self._changes.wait_for(predicate, timeout)
