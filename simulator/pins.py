"""Simulated wiring: put every input of a device in its idle state on gpiozero's MockFactory."""

from __future__ import annotations

from gpiozero.pins.mock import MockFactory

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
    levels += [(p.pin, p.occupied_when) for p in config.presence]
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
