"""A simulated membrane keypad on gpiozero's MockFactory pins.

Pressing a key joins its row and column lines: while the scanner drives that row low,
the column reads low. `tap` waits, with a timeout, until the scanner has read the key
and then seen it released, so a test types as fast as the scanner reads, never faster.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from gpiozero.pins.mock import MockFactory, MockPin

from edge.keypad import LAYOUTS


class _RowPin(MockPin):  # type: ignore[misc]  # gpiozero has no type hints
    matrix: SimulatedMatrix | None = None

    def _change_state(self, value: bool) -> bool:
        changed = bool(super()._change_state(value))
        if changed and self.matrix is not None:
            self.matrix.row_changed(self, value)
        return changed


class SimulatedMatrix:
    """The wiring of a 3x4 or 4x4 keypad; build it before the keypad claims the pins."""

    def __init__(self, factory: MockFactory, rows: Sequence[int], cols: Sequence[int]) -> None:
        self.layout = LAYOUTS[len(cols)]
        self._rows: list[Any] = [factory.pin(n, pin_class=_RowPin) for n in rows]
        self._cols: list[Any] = [factory.pin(n) for n in cols]
        self._pressed: set[tuple[int, int]] = set()
        self._cond = threading.Condition(threading.RLock())
        self._read_since_idle = False
        self._key_read = False
        self._selected: int | None = None
        self.scans = 0  # scans completed (all rows back low after reading some)
        self.key_scans = 0  # of them, scans that read a pressed key's row
        for pin in self._rows:
            pin.matrix = self

    def __repr__(self) -> str:
        return f"<SimulatedMatrix {len(self.layout[0])}x4 pressed={len(self._pressed)}>"

    def _where(self, key: str) -> tuple[int, int]:
        for r, line in enumerate(self.layout):
            if key in line:
                return r, line.index(key)
        raise ValueError(f"no key {key!r} on a {len(self.layout[0])}x4 keypad")

    def row_changed(self, pin: Any, high: bool) -> None:
        """Follow the scanner: note which rows it read, then update the columns."""
        with self._cond:
            r = self._rows.index(pin)
            others_high = all(p.state for p in self._rows if p is not pin)
            read = high and others_high and self._selected == r
            self._selected = r if not high and others_high else None
            if read:  # row r alone was driven low and is released again: it has been read
                self._read_since_idle = True
                if any(row == r for row, _ in self._pressed):
                    self._key_read = True
            if not any(p.state for p in self._rows) and self._read_since_idle:
                self.scans += 1
                self.key_scans += self._key_read
                self._read_since_idle = self._key_read = False
                self._cond.notify_all()
            self._update()

    def _update(self) -> None:
        for c, col in enumerate(self._cols):
            if col.function != "input":
                continue
            low = any((r, c) in self._pressed and not row.state for r, row in enumerate(self._rows))
            if low:
                col.drive_low()
            else:
                col.drive_high()

    def press(self, key: str) -> None:
        """Hold a key down."""
        with self._cond:
            self._pressed.add(self._where(key))
            self._update()

    def release(self, key: str) -> None:
        """Let a key go."""
        with self._cond:
            self._pressed.discard(self._where(key))
            self._update()

    def tap(self, key: str, timeout_s: float = 5.0) -> None:
        """Press a key until the scanner has read it, then release it until it saw that."""
        with self._cond:
            before = self.key_scans
            self.press(key)
            if not self._cond.wait_for(lambda: self.key_scans > before, timeout_s):
                raise TimeoutError(f"the keypad was not scanned for key {key!r}")
            before = self.scans
            self.release(key)
            if not self._cond.wait_for(lambda: self.scans > before, timeout_s):
                raise TimeoutError(f"the keypad did not see key {key!r} released")

    def type(self, keys: str, timeout_s: float = 5.0) -> None:
        """Tap each key in turn, e.g. "1234#"."""
        for key in keys:
            self.tap(key, timeout_s)
