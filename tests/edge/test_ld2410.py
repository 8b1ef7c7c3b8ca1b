"""The HLK-LD2410 report frames: byte-exact fixtures, a noisy line, and a real pseudo-terminal."""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.core.events import Event, PresenceChanged, PresenceSensorStatus
from edge.sensors.ld2410 import (
    FrameError,
    FrameReader,
    PresenceRule,
    Report,
    TargetState,
    parse_report,
)
from edge.sensors.ld2410_serial import Ld2410SerialSensor

# A basic report: still target at 81 cm (0x51), energy 0x3B = 59; detection distance 0 cm.
STILL = bytes.fromhex("F4F3F2F1 0D00 02AA 02 5100 00 5100 3B 0000 5500 F8F7F6F5")
# A basic report: moving target at 120 cm, energy 40, still at 115 cm, energy 100, seen to 150 cm.
BOTH = bytes.fromhex("F4F3F2F1 0D00 02AA 03 7800 28 7300 64 9600 5500 F8F7F6F5")
# A basic report: nobody.
NOBODY = bytes.fromhex("F4F3F2F1 0D00 02AA 00 0000 00 0000 00 0000 5500 F8F7F6F5")
# An engineering report (type 01, length 0x23 as in the protocol document's example): the
# basic data, then max moving gate 8, max still gate 8, nine moving energies, nine still
# energies, two bytes of additional data, then 55 00. A moving target at 300 cm, energy 70.
ENGINEERING = bytes.fromhex(
    "F4F3F2F1 2300 01AA 01 2C01 46 0000 00 2C01 08 08"
    " 0A0B0C0D0E0F101112 010203040506070809 0305 5500 F8F7F6F5"
)
# A command acknowledgement (FD FC FB FA ... 04 03 02 01): not a report, skipped.
ACK = bytes.fromhex("FDFCFBFA 0400 FF01 0000 04030201")
# A frame whose target state is 7: corrupted on the line, rejected whole.
BAD_STATE = bytes.fromhex("F4F3F2F1 0D00 02AA 07 5100 00 5100 3B 0000 5500 F8F7F6F5")
# A header followed by a length of 0xFFFF: noise that looks like a header.
FALSE_HEADER = bytes.fromhex("F4F3F2F1 FFFF")


def test_a_basic_report_is_read_byte_for_byte() -> None:
    assert FrameReader().feed(STILL) == [Report(TargetState.STILL, 81, 0, 81, 59, 0)]
    assert FrameReader().feed(BOTH) == [Report(TargetState.BOTH, 120, 40, 115, 100, 150)]


def test_an_engineering_report_gives_its_basic_data() -> None:
    (report,) = FrameReader().feed(ENGINEERING)
    assert report == Report(TargetState.MOVING, 300, 70, 0, 0, 300, engineering=True)


def test_acks_garbage_and_corrupt_frames_are_skipped_and_the_reader_resyncs() -> None:
    reader = FrameReader()
    line = b"\x00\xff" + ACK + FALSE_HEADER + STILL[:7] + BAD_STATE + NOBODY + b"\xf4\xf3" + BOTH
    assert [r.state for r in reader.feed(line)] == [TargetState.NONE, TargetState.BOTH]
    assert reader.rejected == 1
    assert reader.skipped > 0


def test_a_frame_cut_anywhere_by_the_reads_is_still_read_once() -> None:
    for cut in range(1, len(STILL)):
        reader = FrameReader()
        assert reader.feed(STILL[:cut]) == []
        assert len(reader.feed(STILL[cut:])) == 1


@given(noise=st.binary(max_size=300), chunks=st.integers(1, 40))
def test_noise_never_raises_and_never_hides_the_next_good_frame(noise: bytes, chunks: int) -> None:
    reader = FrameReader()
    stream = noise + STILL + BOTH
    reports: list[Report] = []
    for start in range(0, len(stream), chunks):
        reports += reader.feed(stream[start : start + chunks])
    # Noise may hold a frame of its own, never the loss of the two real ones after it.
    assert reports[-2:] == [
        Report(TargetState.STILL, 81, 0, 81, 59, 0),
        Report(TargetState.BOTH, 120, 40, 115, 100, 150),
    ]
    assert len(reader._buffer) <= 4 + 2 + 64 + 4


def test_payloads_that_are_not_reports_are_refused_with_the_reason() -> None:
    with pytest.raises(FrameError, match="neither basic"):
        parse_report(bytes.fromhex("03AA 02 5100 00 5100 3B 0000 5500"))
    with pytest.raises(FrameError, match="markers"):
        parse_report(bytes.fromhex("02AB 02 5100 00 5100 3B 0000 5500"))
    with pytest.raises(FrameError, match="over 100"):
        parse_report(bytes.fromhex("02AA 02 5100 00 5100 FF 0000 5500"))


@pytest.mark.parametrize(
    ("rule", "report", "present"),
    [
        (PresenceRule(), Report(TargetState.NONE, 0, 0, 0, 0, 0), False),
        (PresenceRule(), Report(TargetState.STILL, 0, 0, 81, 59, 0), True),
        # Beyond max_gate (2 gates = 150 cm): the person in the next booth.
        (PresenceRule(max_gate=2), Report(TargetState.STILL, 0, 0, 151, 59, 0), False),
        (PresenceRule(max_gate=2), Report(TargetState.STILL, 0, 0, 150, 59, 0), True),
        (PresenceRule(still_energy_min=60), Report(TargetState.STILL, 0, 0, 81, 59, 0), False),
        (PresenceRule(moving_energy_min=30), Report(TargetState.MOVING, 90, 29, 0, 0, 0), False),
        (PresenceRule(moving_energy_min=30), Report(TargetState.MOVING, 90, 30, 0, 0, 0), True),
        # The still half of "both" counts on its own when the moving half is too weak.
        (PresenceRule(moving_energy_min=50), Report(TargetState.BOTH, 90, 10, 80, 20, 0), True),
    ],
)
def test_presence_is_a_target_within_reach_with_enough_energy(
    rule: PresenceRule, report: Report, present: bool
) -> None:
    assert rule.present(report) is present


# -- the serial path, over a real pseudo-terminal -----------------------------------------


@pytest.fixture
def pty() -> Iterator[tuple[int, Path]]:
    """A pseudo-terminal: the test writes to its master, pyserial opens the slave's path."""
    master, slave = os.openpty()
    yield master, Path(os.ttyname(slave))
    os.close(master)
    os.close(slave)


def next_event(events: queue.Queue[Event], timeout: float = 5.0) -> Event:
    return events.get(timeout=timeout)


def report_until_heard(master: int, frame: bytes, events: queue.Queue[Event]) -> Event:
    """Send a report every 50 ms, as the radar does, until the sensor emits an event.

    pyserial empties the port's input when it opens it, so the first reports may be lost.
    """
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        os.write(master, frame)
        try:
            return events.get(timeout=0.05)
        except queue.Empty:
            continue
    raise AssertionError("the sensor emitted nothing in 5 s")


def test_the_radar_over_a_serial_line_reports_presence_faults_and_returns(
    pty: tuple[int, Path],
) -> None:
    master, path = pty
    events: queue.Queue[Event] = queue.Queue()
    sensor = Ld2410SerialSensor(
        "booth-radar", path, 256000, PresenceRule(max_gate=2), fault_after_s=0.5
    )
    sensor.start(events.put)
    try:
        assert report_until_heard(master, STILL, events) == PresenceChanged("booth-radar", True)
        # Noise, half a report, its rest: the same presence, so nothing more is emitted.
        os.write(master, b"\x00\x13" + STILL[:9])
        os.write(master, STILL[9:] + STILL)
        os.write(master, NOBODY)
        assert next_event(events) == PresenceChanged("booth-radar", False)
        # Silence: the fault, once.
        fault = next_event(events)
        assert isinstance(fault, PresenceSensorStatus)
        assert (fault.sensor, fault.ok) == ("booth-radar", False)
        assert "no report" in fault.detail
        # Reports again: the fault clears and the presence is told anew.
        assert report_until_heard(master, BOTH, events) == PresenceSensorStatus(
            "booth-radar", ok=True
        )
        assert next_event(events) == PresenceChanged("booth-radar", True)
    finally:
        sensor.close()
    assert events.empty()


def test_a_port_that_cannot_be_opened_is_a_fault_not_a_crash(tmp_path: Path) -> None:
    events: queue.Queue[Event] = queue.Queue()
    sensor = Ld2410SerialSensor(
        "booth-radar", tmp_path / "no-such-tty", 256000, PresenceRule(), fault_after_s=0.3
    )
    started = time.monotonic()
    sensor.start(events.put)
    try:
        fault = next_event(events)
    finally:
        sensor.close()
    assert isinstance(fault, PresenceSensorStatus)
    assert not fault.ok
    assert "no-such-tty" in fault.detail
    assert time.monotonic() - started < 5.0


def basic_frame(
    state: int, moving_cm: int, moving_energy: int, still_cm: int, still_energy: int, seen_cm: int
) -> bytes:
    """Build a basic report field by field, as the protocol document lays it out."""
    data = (
        bytes([0x02, 0xAA, state])
        + moving_cm.to_bytes(2, "little")
        + bytes([moving_energy])
        + still_cm.to_bytes(2, "little")
        + bytes([still_energy])
        + seen_cm.to_bytes(2, "little")
        + bytes([0x55, 0x00])
    )
    return b"\xf4\xf3\xf2\xf1" + len(data).to_bytes(2, "little") + data + b"\xf8\xf7\xf6\xf5"


def test_the_fixtures_are_the_frames_the_protocol_lays_out() -> None:
    assert basic_frame(2, 81, 0, 81, 59, 0) == STILL
    assert basic_frame(3, 120, 40, 115, 100, 150) == BOTH
    assert basic_frame(0, 0, 0, 0, 0, 0) == NOBODY


def test_distances_are_read_little_endian() -> None:
    # 258 cm is 0x0102: on the line 02 01. Read big-endian it would be 513 cm.
    frame = basic_frame(1, 258, 30, 0, 0, 600)
    assert frame[9:11] == b"\x02\x01"
    assert FrameReader().feed(frame) == [Report(TargetState.MOVING, 258, 30, 0, 0, 600)]


@given(
    state=st.sampled_from(TargetState),
    moving_cm=st.integers(0, 0xFFFF),
    moving_energy=st.integers(0, 100),
    still_cm=st.integers(0, 0xFFFF),
    still_energy=st.integers(0, 100),
    seen_cm=st.integers(0, 0xFFFF),
)
def test_any_report_built_field_by_field_is_read_back(
    state: TargetState,
    moving_cm: int,
    moving_energy: int,
    still_cm: int,
    still_energy: int,
    seen_cm: int,
) -> None:
    fields = (moving_cm, moving_energy, still_cm, still_energy, seen_cm)
    frame = basic_frame(state, *fields)
    assert FrameReader().feed(frame) == [Report(state, *fields)]


def test_a_line_flipping_presence_a_thousand_times_costs_the_loop_a_few_events(
    pty: tuple[int, Path],
) -> None:
    master, path = pty
    events: queue.Queue[Event] = queue.Queue()
    sensor = Ld2410SerialSensor("booth-radar", path, 256000, PresenceRule(), fault_after_s=5.0)
    sensor.start(events.put)
    try:
        assert report_until_heard(master, NOBODY, events) == PresenceChanged("booth-radar", False)
        os.write(master, (STILL + NOBODY) * 100 + STILL)
        told: list[Event] = []
        while PresenceChanged("booth-radar", True) not in told[-1:]:
            told.append(next_event(events))
    finally:
        sensor.close()
    assert len(told) <= 3, told
