"""PIN keypads beside the readers: a GPIO membrane matrix, or a USB numeric keypad.

| kind     | hardware                                        | read through                     |
| -------- | ----------------------------------------------- | -------------------------------- |
| `matrix` | 3x4 or 4x4 membrane keypad on GPIO              | the gpiozero pin factory's pins  |
| `usb`    | USB numeric keypad (HID keyboard)               | Linux input events, pure Python  |

Both turn keys into digits and emit `PinEntered` on enter (#, Enter); `*` / Backspace /
Esc clear what was keyed. Their threads only enqueue. Digits are never logged.

The matrix is read through the pins of the pin factory passed in (the factory's own pin
API; gpiozero itself is imported by `edge.gpio` alone). Rows are outputs, held low while
idle; columns are inputs with pull-ups and edge detection. A key pulls its column low,
the edge wakes the scanner, which drives one row low at a time to find the key. Idle, the
scanner sleeps on the edges: it never polls.
"""

from __future__ import annotations

import fcntl
import logging
import os
import select
import struct
import threading
from collections.abc import Sequence
from typing import Any, BinaryIO, Final, Protocol

from edge.core.events import PinEntered
from edge.errors import ClosedError
from edge.gpio import HardwareError, PinFactory
from edge.ports import Emit

log = logging.getLogger(__name__)

MAX_KEYED: Final = 16  # digits kept before enter; a longer entry is simply wrong
ENTER: Final = "#"
CLEAR: Final = "*"
LAYOUTS: Final = {3: ("123", "456", "789", "*0#"), 4: ("123A", "456B", "789C", "*0#D")}

# struct input_event: struct timeval (two longs), type u16, code u16, value s32 — 24 bytes
# on a 64-bit kernel, 16 on a 32-bit one; native sizes match the running kernel.
INPUT_EVENT: Final = struct.Struct("@llHHi")
EV_KEY: Final = 1
KEY_PRESS: Final = 1  # 0 is release, 2 auto-repeat (ignored: a held key is one key)
KEY_CODES: Final = {
    2: "1", 3: "2", 4: "3", 5: "4", 6: "5", 7: "6", 8: "7", 9: "8", 10: "9", 11: "0",
    71: "7", 72: "8", 73: "9", 75: "4", 76: "5", 77: "6", 79: "1", 80: "2", 81: "3", 82: "0",
    28: ENTER, 96: ENTER,  # KEY_ENTER, KEY_KPENTER
    14: CLEAR, 1: CLEAR,  # KEY_BACKSPACE, KEY_ESC
}  # fmt: skip
EVIOCGRAB: Final = 0x40044590  # _IOW('E', 0x90, int): only we get the keys, not a console


class Keypad(Protocol):
    """A keypad at one reader: emits `PinEntered` when a PIN is confirmed."""

    def start(self, emit: Emit) -> None:
        """Begin reading keys (on the adapter's own thread)."""
        ...

    def close(self) -> None:
        """Stop reading and release the hardware; idempotent."""
        ...


class KeyedPin:
    """Collects the keys of one keypad into a PIN and emits it on enter."""

    def __init__(self, reader: str) -> None:
        self.reader = reader
        self._digits: list[str] = []
        self._emit: Emit | None = None

    def __repr__(self) -> str:
        return f"<KeyedPin reader={self.reader} keyed={len(self._digits)}>"

    def start(self, emit: Emit) -> None:
        """Emit through `emit` from now on."""
        self._emit = emit

    def key(self, key: str) -> None:
        """Take one key: a digit, enter (#) or clear (*); letters are ignored."""
        if key == ENTER:
            digits, self._digits = "".join(self._digits), []
            if digits and self._emit is not None:
                self._emit(PinEntered(self.reader, digits))
        elif key == CLEAR:
            self._digits = []
        elif key.isdigit() and len(self._digits) < MAX_KEYED:
            self._digits.append(key)


def keys_from_events(data: bytes) -> list[str]:
    """Return the keys pressed in whole `input_event` structs (other events are skipped)."""
    keys = []
    for _sec, _usec, type_, code, value in INPUT_EVENT.iter_unpack(data):
        if type_ == EV_KEY and value == KEY_PRESS and code in KEY_CODES:
            keys.append(KEY_CODES[code])
    return keys


class _KeyThread:
    """A keypad's own thread: started once, stopped by `close`, which is idempotent."""

    reader: str
    _pin: KeyedPin
    _thread: threading.Thread | None
    _closed: bool

    def start(self, emit: Emit) -> None:
        """Read keys on a thread of its own until closed (or the keypad goes away)."""
        if self._closed:
            raise ClosedError(f"keypad of reader {self.reader} is closed")
        self._pin.start(emit)
        self._thread = threading.Thread(target=self._run, name=f"keypad-{self.reader}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and let go of the keypad; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wake_to_stop()
        if self._thread is not None:
            self._thread.join(5)
        self._release()

    def _run(self) -> None:
        raise NotImplementedError

    def _wake_to_stop(self) -> None:
        raise NotImplementedError

    def _release(self) -> None:
        raise NotImplementedError


class UsbKeypad(_KeyThread):
    """A USB numeric keypad read from its event device (any binary file: a pipe in tests)."""

    def __init__(self, reader: str, device: BinaryIO, name: str = "") -> None:
        self.reader = reader
        self.name = name or getattr(device, "name", "?")
        self._device = device
        self._pin = KeyedPin(reader)
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<UsbKeypad reader={self.reader} {self.name} {state}>"

    def _wake_to_stop(self) -> None:
        os.write(self._wake_w, b"x")

    def _release(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._device.close()

    def _run(self) -> None:
        fd = self._device.fileno()
        pending = b""
        while True:
            ready, _, _ = select.select([fd, self._wake_r], [], [])
            if self._wake_r in ready:
                return
            try:
                chunk = os.read(fd, INPUT_EVENT.size * 64)
            except OSError as exc:
                log.error("keypad of reader %s: %s; unplugged?", self.reader, exc.strerror)
                return
            if not chunk:
                log.error("keypad of reader %s: the device went away", self.reader)
                return
            pending += chunk
            whole = len(pending) - len(pending) % INPUT_EVENT.size
            for key in keys_from_events(pending[:whole]):
                self._pin.key(key)
            pending = pending[whole:]


def open_usb_keypad(reader: str, path: str) -> UsbKeypad:
    """Open a keypad's event device and grab it, so its keys reach no console or login."""
    try:
        device = open(path, "rb", buffering=0)  # noqa: SIM115 -- the keypad owns and closes it
    except OSError as exc:
        raise HardwareError(
            f"keypad of reader {reader}: cannot open {path}: {exc.strerror}. Check the "
            "device name under /dev/input/by-id/ and that the agent may read it (group input)"
        ) from None
    try:
        fcntl.ioctl(device.fileno(), EVIOCGRAB, 1)
    except OSError as exc:
        device.close()
        raise HardwareError(
            f"keypad of reader {reader}: cannot take {path} for itself: {exc.strerror}. "
            "Is another program reading the keypad?"
        ) from None
    return UsbKeypad(reader, device, path)


class MatrixKeypad(_KeyThread):
    """A membrane keypad on GPIO: `rows` driven, `cols` read with pull-ups."""

    def __init__(
        self,
        reader: str,
        rows: Sequence[int],
        cols: Sequence[int],
        *,
        factory: PinFactory,
        settle_s: float = 0.02,
    ) -> None:
        if len(rows) != 4 or len(cols) not in LAYOUTS:
            raise HardwareError(f"keypad of reader {reader}: 4 rows and 3 or 4 columns")
        self.reader = reader
        self.layout = LAYOUTS[len(cols)]
        self.settle_s = settle_s
        self._factory = factory
        self._numbers = [*rows, *cols]
        self._pin = KeyedPin(reader)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._scanning = False
        self._thread: threading.Thread | None = None
        self._closed = False
        try:
            factory.reserve_pins(self, *self._numbers)
            self._rows = [self._output(factory.pin(n)) for n in rows]
            self._cols = [self._input(factory.pin(n)) for n in cols]
        except Exception as exc:  # gpiozero's errors, without importing gpiozero
            factory.release_all(self)
            raise HardwareError(
                f"keypad of reader {reader} on GPIO {list(self._numbers)}: {exc}. Check that "
                "no other program (or another line of the configuration) uses these pins"
            ) from None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<MatrixKeypad reader={self.reader} {len(self.layout[0])}x4 "
            f"gpio={self._numbers} {state}>"
        )

    def _conflicts_with(self, other: object) -> bool:
        """Share no pin with any other device (the pin factory asks when reserving)."""
        return True

    @staticmethod
    def _output(pin: Any) -> Any:
        pin.function = "output"
        pin.state = 0
        return pin

    def _input(self, pin: Any) -> Any:
        pin.function = "input"
        pin.pull = "up"
        pin.edges = "both"
        pin.when_changed = self._changed
        return pin

    def _wake_to_stop(self) -> None:  # the scan thread sleeps on the column edges
        self._stopping.set()
        self._wake.set()

    def _release(self) -> None:
        for pin in self._cols:
            pin.when_changed = None
        for pin in [*self._rows, *self._cols]:
            pin.close()
        self._factory.release_all(self)

    def _changed(self, ticks: object = None, state: object = None) -> None:
        if not self._scanning:
            self._wake.set()

    def _run(self) -> None:
        held: str | None = None
        while True:
            self._wake.wait()
            if self._stopping.wait(self.settle_s):  # contacts bounce for a few ms
                return
            self._wake.clear()
            key = self._scan()
            if key is not None and key != held:
                self._pin.key(key)
            held = key

    def _scan(self) -> str | None:
        """Return the one key held down, or None (two at once are ignored: ghosting)."""
        self._scanning = True
        try:
            for row in self._rows:
                row.state = 1
            found = []
            for r, row in enumerate(self._rows):
                row.state = 0
                found += [self.layout[r][c] for c, col in enumerate(self._cols) if not col.state]
                row.state = 1
            return found[0] if len(found) == 1 else None
        finally:
            for row in self._rows:
                row.state = 0
            self._scanning = False
