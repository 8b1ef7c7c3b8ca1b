"""GPIO through gpiozero, with the pin factory passed in: lgpio on a Pi, MockFactory elsewhere.

This is the only module that imports gpiozero. gpiozero calls our callbacks on its own
threads (synchronously on the driving thread with MockFactory): they only emit events.

Relay wiring: the agent energises the relay to *hold* a fail-safe lock (maglock) and to
*release* a fail-secure strike, so a de-energised relay — agent stopped, Pi dead, power
cut — always leaves the lock in its own fail state. `close()` de-energises.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Literal, TypeVar

from gpiozero import LED as Led
from gpiozero import Buzzer, Device, DigitalInputDevice, GPIOZeroError, OutputDevice
from gpiozero.pins import Factory

from edge.core.events import (
    ContactChanged,
    Event,
    ExitPressed,
    FireInputChanged,
    PresenceChanged,
    RoomDoorChanged,
)
from edge.core.outputs import Signal
from edge.core.spec import FailMode
from edge.errors import ClosedError, EdgeError
from edge.ports import Emit

log = logging.getLogger(__name__)
T = TypeVar("T")


PinFactory = Factory
"""gpiozero's pin factory type, for the composition root (which must not import gpiozero)."""


class HardwareError(EdgeError, OSError):
    """A pin cannot be claimed: in use by another program, or not on this board."""


def _claim(what: str, pin: int | None, build: Callable[[], T]) -> T:
    try:
        return build()
    except GPIOZeroError as exc:
        raise HardwareError(
            f"{what} on GPIO {pin}: {exc}. Check that no other program (or another line of "
            "the configuration) uses this pin, and that the wiring matches the file"
        ) from exc


class UnavailableRelay:
    """Stands in for a relay whose pin could not be claimed: the door stays as it is."""

    def __init__(self, door: str, reason: str) -> None:
        self.door = door
        self.reason = reason
        self.requests: list[str] = []

    def __repr__(self) -> str:
        return f"<UnavailableRelay door={self.door}: {self.reason}>"

    @property
    def is_unlocked(self) -> bool:
        """Unknown hardware state; reported as locked."""
        return False

    def unlock(self) -> None:
        """Log and remember a request that cannot be carried out."""
        self._refuse("unlock")

    def lock(self) -> None:
        """Log and remember a request that cannot be carried out."""
        self._refuse("lock")

    def close(self) -> None:
        """Nothing to release."""

    def _refuse(self, action: str) -> None:
        self.requests.append(action)
        log.error(
            "door %s: cannot %s, its relay is unavailable (%s)", self.door, action, self.reason
        )


Level = Literal["high", "low"]
Pull = Literal["up", "down", "none"]
InputKind = Literal["contact", "exit_button", "fire_input", "presence", "room_door"]


class GpioRelay:
    """The lock relay of one door."""

    def __init__(
        self, door: str, pin: int, *, active_high: bool, fail: FailMode, factory: Factory
    ) -> None:
        self.door = door
        self.fail = fail
        # Start locked: a fail-safe lock is held by energising the relay.
        self._device = _claim(
            f"door {door}: lock relay",
            pin,
            lambda: OutputDevice(
                pin,
                active_high=active_high,
                initial_value=fail is FailMode.SAFE,
                pin_factory=factory,
            ),
        )
        self._closed = False

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("unlocked" if self.is_unlocked else "locked")
        return f"<GpioRelay door={self.door} {self.fail}-fail {state} pin={self._device.pin}>"

    @property
    def energised(self) -> bool:
        """True while the relay coil is driven."""
        return bool(self._device.value)

    @property
    def is_unlocked(self) -> bool:
        """True while the lock is released."""
        return self.energised == (self.fail is FailMode.SECURE)

    def unlock(self) -> None:
        """Release the lock."""
        self._drive(self.fail is FailMode.SECURE)

    def lock(self) -> None:
        """Secure the lock."""
        self._drive(self.fail is FailMode.SAFE)

    def close(self) -> None:
        """De-energise (the lock's own fail state) and release the pin; idempotent."""
        if self._closed:
            return
        self._device.off()
        self._device.close()
        self._closed = True

    def _drive(self, energise: bool) -> None:
        if self._closed:
            raise ClosedError(f"relay of door {self.door} is closed")
        if energise:
            self._device.on()
        else:
            self._device.off()


class GpioInput:
    """A contact, exit button, fire input, presence sensor or room door on one pin."""

    def __init__(
        self,
        kind: InputKind,
        target: str,
        pin: int,
        *,
        asserted_when: Level,
        pull: Pull,
        bounce_ms: int,
        factory: Factory,
    ) -> None:
        self.kind = kind
        self.target = target
        self._asserted_high = asserted_when == "high"
        pull_up = {"up": True, "down": False, "none": None}[pull]
        # gpiozero's "active" is low with a pull-up, high with a pull-down; floating inputs
        # take our level directly.
        self._gpiozero_active_high = self._asserted_high if pull_up is None else not pull_up
        self._device = _claim(
            f"{kind.replace('_', ' ')} of {target}",
            pin,
            lambda: DigitalInputDevice(
                pin,
                pull_up=pull_up,
                active_state=self._asserted_high if pull_up is None else None,
                bounce_time=bounce_ms / 1000 if bounce_ms else None,
                pin_factory=factory,
            ),
        )
        self._emit: Emit | None = None

    def __repr__(self) -> str:
        return (
            f"<GpioInput {self.kind} {self.target} pin={self._device.pin} asserted={self.asserted}>"
        )

    @property
    def asserted(self) -> bool:
        """True while the input reads as open / pressed / fire / presence."""
        active = bool(self._device.is_active)
        return active if self._gpiozero_active_high == self._asserted_high else not active

    def start(self, emit: Emit) -> None:
        """Emit the current state (buttons excepted), then every change."""
        if self._device.closed:
            raise ClosedError(f"{self.kind} input of {self.target} is closed")
        self._emit = emit
        self._device.when_activated = self._changed
        self._device.when_deactivated = self._changed
        if self.kind != "exit_button":
            event = self._event(self.asserted)
            if event is not None:
                emit(event)

    def close(self) -> None:
        """Release the pin; idempotent."""
        self._emit = None
        self._device.close()

    def _changed(self) -> None:
        emit = self._emit
        if emit is None:
            return
        event = self._event(self.asserted)
        if event is not None:
            emit(event)

    def _event(self, asserted: bool) -> Event | None:
        match self.kind:
            case "contact":
                return ContactChanged(self.target, asserted)
            case "exit_button":
                return ExitPressed(self.target) if asserted else None
            case "fire_input":
                return FireInputChanged(self.target, asserted)
            case "presence":
                return PresenceChanged(self.target, asserted)
            case "room_door":
                return RoomDoorChanged(self.target, asserted)


class GpioIndicator:
    """Green and red LEDs and a buzzer at one reader; any of them may be absent."""

    def __init__(
        self,
        reader: str,
        *,
        green: int | None,
        red: int | None,
        buzzer: int | None,
        active_high: bool,
        factory: Factory,
    ) -> None:
        self.reader = reader

        def part(kind: type[Led] | type[Buzzer], name: str, pin: int | None) -> Led | None:
            if pin is None:
                return None
            return _claim(
                f"{name} of reader {reader}",
                pin,
                lambda: kind(pin, active_high=active_high, pin_factory=factory),
            )

        self.green = part(Led, "green LED", green)
        self.red = part(Led, "red LED", red)
        self.buzzer = part(Buzzer, "buzzer", buzzer)
        self.signal = Signal.QUIET
        self.background = Signal.QUIET  # the door's alarm state, which brief signals keep

    def __repr__(self) -> str:
        return f"<GpioIndicator reader={self.reader} {self.signal}>"

    def show(self, signal: Signal) -> None:
        """Show a signal; gpiozero's background blinking times the patterns.

        Grant, deny and the PIN prompt are brief and shown on the LEDs; while a door alarm or
        pre-alarm is on, they leave the buzzer and the alarm's red light alone, so a tap never
        silences an alarm.
        """
        g, r, b = self.green, self.red, self.buzzer
        brief = signal in (Signal.GRANT, Signal.DENY, Signal.PIN_WANTED)
        alarming = self.background in (Signal.ALARM, Signal.PRE_ALARM)
        self.signal = signal
        if not brief:
            self.background = signal
        for part in (g, r, b):
            if part is not None and not (brief and alarming and part in (b, r)):
                part.off()
        match signal:
            case Signal.GRANT:
                if g:
                    g.blink(on_time=1.5, off_time=0, n=1)
                if b and not alarming:
                    b.beep(on_time=0.1, off_time=0, n=1)
            case Signal.DENY:
                if r and not alarming:
                    r.blink(on_time=1.5, off_time=0, n=1)
                if b and not alarming:
                    b.beep(on_time=0.1, off_time=0.1, n=2)
            case Signal.PIN_WANTED:  # green flickers while the keypad waits (10 s by default)
                if g:
                    g.blink(on_time=0.25, off_time=0.25, n=20)
                if b and not alarming:
                    b.beep(on_time=0.05, off_time=0, n=1)
            case Signal.PRE_ALARM:
                if b:
                    b.beep(on_time=0.2, off_time=0.8)
            case Signal.ALARM:
                if r:
                    r.blink(on_time=0.25, off_time=0.25)
                if b:
                    b.on()
            case Signal.QUIET:
                pass

    def close(self) -> None:
        """Turn everything off and release the pins; idempotent."""
        for part in (self.green, self.red, self.buzzer):
            if part is not None:
                part.close()


def default_pin_factory() -> Factory:
    """Return lgpio's pin factory on a Pi, or gpiozero's choice from GPIOZERO_PIN_FACTORY."""

    if os.environ.get("GPIOZERO_PIN_FACTORY"):
        Device.ensure_pin_factory()
        return Device.pin_factory
    from gpiozero.pins.lgpio import LGPIOFactory  # noqa: PLC0415 -- lgpio (the pi extra) exists only on a Raspberry Pi

    return LGPIOFactory()
