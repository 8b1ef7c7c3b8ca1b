"""An HLK-LD2410 radar on a serial port, through pyserial: the only module that imports it.

One daemon thread reads the port, cuts frames with `edge.sensors.ld2410.FrameReader`, and
only emits events: `PresenceChanged` when presence (per `PresenceRule`) changes, and
`PresenceSensorStatus` when the radar falls silent for `fault_after_s` (unplugged, wire cut,
wrong baud rate, serial console still on the port) or talks again. A port that cannot be
opened, or fails, is reopened every second; its silence raises the fault the same way.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import serial  # type: ignore[import-untyped]  # pyserial ships no type information

from edge.core.events import PresenceChanged, PresenceSensorStatus
from edge.errors import ClosedError, EdgeError
from edge.ports import Emit
from edge.sensors.ld2410 import FrameReader, PresenceRule, Report

log = logging.getLogger(__name__)

FAULT_AFTER_S = 5.0  # the radar reports about ten times a second
MIN_CHANGE_GAP_S = 0.2
_READ_TIMEOUT_S = 0.1
_REOPEN_S = 1.0


class Ld2410SerialSensor:
    """A presence sensor that reads an LD2410's report frames from a serial port."""

    def __init__(
        self,
        sensor_id: str,
        port: Path,
        baud: int,
        rule: PresenceRule,
        *,
        fault_after_s: float = FAULT_AFTER_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.sensor_id = sensor_id
        self.port = port
        self.baud = baud
        self.rule = rule
        self.fault_after_s = fault_after_s
        self._monotonic = monotonic
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.frames = FrameReader()
        log.info(
            "presence sensor %s: LD2410 on %s at %d baud, %s, fault after %.1f s of silence",
            sensor_id,
            port,
            baud,
            rule,
            fault_after_s,
        )

    def __repr__(self) -> str:
        return f"<Ld2410SerialSensor {self.sensor_id} {self.port}@{self.baud}>"

    def start(self, emit: Emit) -> None:
        """Start the reader thread; it emits presence when the first report arrives."""
        if self._closed:
            raise ClosedError(f"presence sensor {self.sensor_id} is closed")
        self._thread = threading.Thread(
            target=self._run, args=(emit,), name=f"ld2410-{self.sensor_id}", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and release the port; idempotent."""
        self._closed = True
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def _run(self, emit: Emit) -> None:
        watch = _Watch(self.sensor_id, emit, self._monotonic(), self.fault_after_s)
        while not self._stop.is_set():
            try:
                with serial.Serial(str(self.port), self.baud, timeout=_READ_TIMEOUT_S) as line:
                    self._read(line, watch)
            except (serial.SerialException, OSError) as exc:
                watch.problem = f"serial port {self.port}: {exc}"
                log.debug("presence sensor %s: %s", self.sensor_id, watch.problem)
            except Exception:
                # The thread must live on: only it can tell the core the radar went silent.
                log.exception("presence sensor %s: reading failed; reopening", self.sensor_id)
                watch.problem = "reading failed (see the journal)"
            watch.check(self._monotonic())
            self._stop.wait(_REOPEN_S)

    def _read(self, line: serial.Serial, watch: _Watch) -> None:
        while not self._stop.is_set():
            data = line.read(max(1, min(line.in_waiting, 4096)))
            now = self._monotonic()
            for report in self.frames.feed(data):
                watch.report(now, self.rule.present(report))
            watch.check(now)


def first_report(port: Path, baud: int, within_s: float) -> Report | None:
    """Open the port, return the first report heard within `within_s`, or None; never hang.

    Raise EdgeError (naming the port) when it cannot be opened or read as a serial port.
    """
    frames = FrameReader()
    deadline = time.monotonic() + within_s
    try:
        with serial.Serial(str(port), baud, timeout=_READ_TIMEOUT_S) as line:
            while time.monotonic() < deadline:
                reports = frames.feed(line.read(max(1, min(line.in_waiting, 4096))))
                if reports:
                    return reports[0]
    except (serial.SerialException, OSError) as exc:
        raise EdgeError(f"serial port {port}: {exc}") from exc
    return None


class _Watch:
    """What the sensor last told the core: its presence and whether it answers.

    Presence changes go out at most every `MIN_CHANGE_GAP_S`: a line flipping the target on
    and off a thousand times a second (noise, or a hostile device) costs the loop a few
    events, and the latest state always follows.
    """

    def __init__(self, sensor: str, emit: Emit, now: float, fault_after_s: float) -> None:
        self.sensor = sensor
        self.emit = emit
        self.fault_after_s = fault_after_s
        self.last_frame = now  # the start counts as a frame: the radar has its time to speak
        self.seen: bool | None = None  # what the latest report showed
        self.told: bool | None = None  # what the core was told; None since the start or a fault
        self.told_at = -MIN_CHANGE_GAP_S
        self.faulty = False
        self.problem = ""

    def report(self, now: float, present: bool) -> None:
        self.last_frame = now
        self.problem = ""
        self.seen = present
        if self.faulty:
            self.faulty = False
            log.warning("presence sensor %s: reports again", self.sensor)
            self.emit(PresenceSensorStatus(self.sensor, ok=True))
        self.check(now)

    def check(self, now: float) -> None:
        if not self.faulty and now - self.last_frame >= self.fault_after_s:
            self._fault()
            return
        if self.faulty or self.seen is None or self.seen == self.told:
            return
        if self.told is None or now - self.told_at >= MIN_CHANGE_GAP_S:
            self.told, self.told_at = self.seen, now
            self.emit(PresenceChanged(self.sensor, self.seen))

    def _fault(self) -> None:
        self.faulty = True
        self.seen = self.told = None
        detail = f"no report for {self.fault_after_s:g} s"
        if self.problem:
            detail += f" ({self.problem})"
        log.warning("presence sensor %s: %s", self.sensor, detail)
        self.emit(PresenceSensorStatus(self.sensor, ok=False, detail=detail[:200]))
