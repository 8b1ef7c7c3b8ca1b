"""The keypads: a membrane matrix on MockFactory pins, a USB keypad's input events on a pipe."""

from __future__ import annotations

import os
import queue
import struct
from collections.abc import Iterator

import pytest
from gpiozero.pins.mock import MockFactory

from edge.core.events import Event, PinEntered
from edge.errors import ClosedError
from edge.gpio import HardwareError
from edge.keypad import INPUT_EVENT, MatrixKeypad, UsbKeypad, keys_from_events
from simulator.keypad import SimulatedMatrix

ROWS = (5, 6, 13, 19)
COLS = (12, 16, 20)


def next_event(events: queue.Queue[Event]) -> Event:
    return events.get(timeout=5)


@pytest.fixture
def factory() -> Iterator[MockFactory]:
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.fixture
def matrix(factory: MockFactory) -> Iterator[tuple[SimulatedMatrix, queue.Queue[Event]]]:
    wiring = SimulatedMatrix(factory, ROWS, COLS)
    keypad = MatrixKeypad("gate-in", ROWS, COLS, factory=factory, settle_s=0)
    events: queue.Queue[Event] = queue.Queue()
    keypad.start(events.put)
    yield wiring, events
    keypad.close()


def test_matrix_keys_become_a_pin_on_enter(
    matrix: tuple[SimulatedMatrix, queue.Queue[Event]],
) -> None:
    wiring, events = matrix
    wiring.type("2580#")
    assert next_event(events) == PinEntered("gate-in", "2580")


def test_matrix_repeated_keys_each_count_and_star_clears(
    matrix: tuple[SimulatedMatrix, queue.Queue[Event]],
) -> None:
    wiring, events = matrix
    wiring.type("99*1147#")
    assert next_event(events) == PinEntered("gate-in", "1147")
    assert events.empty()


def test_matrix_layout_decodes_every_key(factory: MockFactory) -> None:
    cols = (12, 16, 20, 21)
    wiring = SimulatedMatrix(factory, ROWS, cols)
    keypad = MatrixKeypad("gate-in", ROWS, cols, factory=factory, settle_s=0)
    events: queue.Queue[Event] = queue.Queue()
    keypad.start(events.put)
    try:
        wiring.type("147A*0123456789D#")  # A and D are no digits: ignored
        assert next_event(events) == PinEntered("gate-in", "0123456789")
    finally:
        keypad.close()


def test_matrix_idle_scanner_sleeps(matrix: tuple[SimulatedMatrix, queue.Queue[Event]]) -> None:
    wiring, events = matrix
    wiring.type("1#")
    scans = wiring.scans
    assert next_event(events) == PinEntered("gate-in", "1")
    with pytest.raises(queue.Empty):
        events.get(timeout=0.2)  # time for a polling scanner to scan many times over
    assert wiring.scans == scans


def test_matrix_pins_in_use_are_a_hardware_error(factory: MockFactory) -> None:
    keypad = MatrixKeypad("gate-in", ROWS, COLS, factory=factory)
    with pytest.raises(HardwareError, match="gate-out"):
        MatrixKeypad("gate-out", ROWS, COLS, factory=factory)
    keypad.close()
    keypad.close()
    with pytest.raises(ClosedError):
        keypad.start(lambda event: None)
    MatrixKeypad("gate-out", ROWS, COLS, factory=factory).close()  # the pins are free again


def key_event(code: int, value: int) -> bytes:
    # struct input_event on a 64-bit kernel: timeval (two longs), type, code, value.
    return struct.pack("@llHHi", 1_764_000_000, 250_000, 1, code, value)


SYN = struct.pack("@llHHi", 1_764_000_000, 250_001, 0, 0, 0)  # EV_SYN SYN_REPORT
MSC = struct.pack("@llHHi", 1_764_000_000, 250_001, 4, 4, 0x70059)  # EV_MSC MSC_SCAN


def keystroke(code: int) -> bytes:
    return MSC + key_event(code, 1) + SYN + key_event(code, 0) + SYN


def test_input_event_is_24_bytes_on_64_bit() -> None:
    assert INPUT_EVENT.size == 24


def test_parser_reads_keypad_and_top_row_keys() -> None:
    # KEY_KP1=79, KEY_KP2=80, KEY_3=4, KEY_0=11, KEY_KPENTER=96; 2 is an auto-repeat.
    data = keystroke(79) + key_event(80, 1) + key_event(80, 2) + key_event(80, 0)
    data += keystroke(4) + keystroke(11) + keystroke(96)
    assert keys_from_events(data) == ["1", "2", "3", "0", "#"]


def test_usb_keypad_on_a_pipe() -> None:
    read_fd, write_fd = os.pipe()
    keypad = UsbKeypad("gate-in", os.fdopen(read_fd, "rb", buffering=0), "pipe")
    events: queue.Queue[Event] = queue.Queue()
    keypad.start(events.put)
    try:
        # KEY_KP7, KEY_KP7, KEY_BACKSPACE (clears), KEY_KP4 KP0 KP9 KP6, KEY_ENTER.
        stream = b"".join(keystroke(c) for c in (71, 71, 14, 75, 82, 73, 77, 28))
        os.write(write_fd, stream[:37])  # a struct split across two reads
        os.write(write_fd, stream[37:])
        event = next_event(events)
        assert event == PinEntered("gate-in", "4096")
        assert "4096" not in repr(event)
    finally:
        keypad.close()
        os.close(write_fd)
    keypad.close()
