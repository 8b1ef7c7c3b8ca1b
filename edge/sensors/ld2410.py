"""HLK-LD2410 report frames: bytes in, target reports out. Pure: no serial port here.

The radar sends a report about ten times a second, unasked, at 256000 baud 8N1:

    F4 F3 F2 F1 | length (2 bytes LE) | type | AA | target data | 55 | 00 | F8 F7 F6 F5

`length` counts from `type` to the `00` before the footer. `type` is 02 for a basic report,
01 for an engineering one (the basic target data, then the per-gate energies). Target data:

    state (0 none, 1 moving, 2 still, 3 both) | moving distance cm (LE16) | moving energy
    | still distance cm (LE16) | still energy | detection distance cm (LE16)

Checked against Hi-Link's "LD2410 Serial Communication Protocol" as restated by the
mgiesen/LD2410 library (README "Data Frame" and "Basic Target Information") and by the Seeed
24GHz mmWave for XIAO parser (frame comment: `F4 F3 F2 F1 [len 2B LE] [type 1B] 0xAA
[target data] 0x55 0x00 F8 F7 F6 F5`, basic data `state 1B, move_dist 2B, move_energy 1B,
stat_dist 2B, stat_energy 1B, det_dist 2B (LE)`): a basic frame's length is 0x000D.

The line may be noisy or hostile: anything that is not a whole, well-formed frame is
skipped, and the reader finds the next header on its own (resync), with bounded memory.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Final

HEADER: Final = bytes.fromhex("F4F3F2F1")
FOOTER: Final = bytes.fromhex("F8F7F6F5")
BASIC: Final = 0x02
ENGINEERING: Final = 0x01
GATE_CM: Final = 75  # one distance gate is 0.75 m
_HEAD: Final = 0xAA
_TAIL: Final = bytes.fromhex("5500")
_BASIC_LENGTH: Final = 13  # type, AA, 9 bytes of target data, 55, 00
_MAX_LENGTH: Final = 64  # an engineering report is 35; anything far longer is noise
_TARGET: Final = struct.Struct("<BHBHBH")
_MAX_ENERGY: Final = 100


class TargetState(IntEnum):
    """What the radar sees."""

    NONE = 0
    MOVING = 1
    STILL = 2
    BOTH = 3


class FrameError(ValueError):
    """A frame's payload is not a report (wrong type, markers, or values out of range)."""


@dataclass(frozen=True, slots=True)
class Report:
    """One target report."""

    state: TargetState
    moving_cm: int
    moving_energy: int
    still_cm: int
    still_energy: int
    detection_cm: int
    engineering: bool = False


@dataclass(frozen=True, slots=True)
class PresenceRule:
    """When a report means someone is there: a target within `max_gate` with enough energy."""

    max_gate: int = 3  # 2.25 m: a booth (firmware_config's default)
    moving_energy_min: int = 0
    still_energy_min: int = 0

    def present(self, report: Report) -> bool:
        """Return True if the report shows a target that counts."""
        reach = self.max_gate * GATE_CM
        moving = (
            report.state in (TargetState.MOVING, TargetState.BOTH)
            and report.moving_cm <= reach
            and report.moving_energy >= self.moving_energy_min
        )
        still = (
            report.state in (TargetState.STILL, TargetState.BOTH)
            and report.still_cm <= reach
            and report.still_energy >= self.still_energy_min
        )
        return moving or still


def parse_report(payload: bytes) -> Report:
    """Parse the bytes between a frame's length and its footer; raise FrameError if bad."""
    if len(payload) < _BASIC_LENGTH:
        raise FrameError(f"a report has at least {_BASIC_LENGTH} bytes, got {len(payload)}")
    kind, head = payload[0], payload[1]
    if kind not in (BASIC, ENGINEERING):
        raise FrameError(f"report type {kind:#04x} is neither basic (02) nor engineering (01)")
    if head != _HEAD or payload[-2:] != _TAIL:
        raise FrameError("report markers AA ... 55 00 are missing")
    if kind == BASIC and len(payload) != _BASIC_LENGTH:
        raise FrameError(f"a basic report has {_BASIC_LENGTH} bytes, got {len(payload)}")
    state, moving_cm, moving_energy, still_cm, still_energy, detection_cm = _TARGET.unpack_from(
        payload, 2
    )
    if state > TargetState.BOTH:
        raise FrameError(f"target state {state} is not 0-3")
    if moving_energy > _MAX_ENERGY or still_energy > _MAX_ENERGY:
        raise FrameError("target energy is over 100")
    return Report(
        TargetState(state),
        moving_cm,
        moving_energy,
        still_cm,
        still_energy,
        detection_cm,
        engineering=kind == ENGINEERING,
    )


class FrameReader:
    """Cut a byte stream into reports; keeps at most one frame's worth of bytes."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self.skipped = 0  # bytes dropped while looking for a frame
        self.rejected = 0  # whole frames whose payload was not a report

    def __repr__(self) -> str:
        return f"<FrameReader buffered={len(self._buffer)} skipped={self.skipped}>"

    def feed(self, data: bytes) -> list[Report]:
        """Take the next bytes from the line; return the reports they complete."""
        self._buffer += data
        reports: list[Report] = []
        while True:
            start = self._buffer.find(HEADER)
            if start < 0:
                # Keep a tail that may be the start of a header cut by the read.
                keep = len(HEADER) - 1
                self.skipped += max(0, len(self._buffer) - keep)
                del self._buffer[: max(0, len(self._buffer) - keep)]
                return reports
            self.skipped += start
            del self._buffer[:start]
            if len(self._buffer) < len(HEADER) + 2:
                return reports
            (length,) = struct.unpack_from("<H", self._buffer, len(HEADER))
            if not _BASIC_LENGTH <= length <= _MAX_LENGTH:
                self._drop_one()  # not a real header: look again one byte on
                continue
            end = len(HEADER) + 2 + length
            if len(self._buffer) < end + len(FOOTER):
                return reports
            if self._buffer[end : end + len(FOOTER)] != FOOTER:
                self._drop_one()
                continue
            payload = bytes(self._buffer[len(HEADER) + 2 : end])
            del self._buffer[: end + len(FOOTER)]
            try:
                reports.append(parse_report(payload))
            except FrameError:
                self.rejected += 1

    def _drop_one(self) -> None:
        self.skipped += 1
        del self._buffer[:1]
