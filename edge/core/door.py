"""The door state machine: one leaf, its lock, its contact and its alarms.

Lock released when any of these holds, otherwise locked:
  fire release (fail-safe doors only) > momentary unlock (grant, exit button, command)
  > held unlocked (schedule or command), which lockdown suppresses.
A momentary unlock ends when the door closes after opening, or after `unlock_s` unopened.
The door opening during an exit-button unlock is one person leaving its inside zone (once
per unlock, however often the leaf moves in it), unless a granted card is crossing.
A supervised door (not held or fire-released) that stays open warns `pre_alarm_s` before
`held_open_s` and then raises the held-open alarm; opening while locked is a forced door.
Alarms clear when the door closes; both edges are recorded.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from edge.core.clock import Instant
from edge.core.outputs import EventKind, Indicate, Lock, Output, Signal, Unlock, record
from edge.core.spec import Direction, DoorSpec, FailMode


class DoorMode(StrEnum):
    """What governs the lock right now, strongest first."""

    FIRE_RELEASE = "fire_release"
    LOCKDOWN = "lockdown"
    HELD_OPEN = "held_open"
    NORMAL = "normal"


@dataclass(frozen=True, slots=True)
class Passage:
    """A granted card expected to cross the door."""

    card_ref: str
    reader: str
    direction: Direction
    from_zone: str
    to_zone: str


@dataclass(frozen=True, slots=True)
class ButtonExit:
    """Someone left by the exit button: from the door's inside zone to its outside zone."""

    door: str
    from_zone: str
    to_zone: str


class DoorMachine:
    """One door's state; every method returns the outputs it calls for and performs none."""

    def __init__(self, spec: DoorSpec) -> None:
        self.spec = spec
        self.is_open = False
        self.unlocked = False  # the lock as last commanded
        self.fire_release = False
        self.lockdown = False
        self.held_by_command = False
        self.held_by_schedule = False
        self.momentary_until: float | None = None
        self.momentary_cause = ""
        self._exit_counted = False  # this exit-button unlock's opening was counted
        self.opened_while_unlocked = False
        self.pending: Passage | None = None
        self.supervised_since: float | None = None
        self.pre_alarm = False
        self.held_alarm = False
        self.forced_alarm = False
        self.mode = DoorMode.NORMAL
        self._sounding = False  # a pre-alarm or alarm signal is on at the readers
        self._open_at_unlock = False  # the leaf was open when the momentary unlock began

    def __repr__(self) -> str:
        lock = "unlocked" if self.unlocked else "locked"
        leaf = "open" if self.is_open else "closed"
        return f"<DoorMachine {self.spec.id} {self.mode} {lock} {leaf} alarms={self.alarms}>"

    @property
    def alarms(self) -> tuple[str, ...]:
        """Return the door's active alarms."""
        return tuple(
            name
            for name, on in (
                ("door_forced", self.forced_alarm),
                ("door_held_open", self.held_alarm),
            )
            if on
        )

    @property
    def free(self) -> bool:
        """True if the door is released on purpose and an open leaf is no alarm."""
        fire = self.fire_release and self.spec.fail is FailMode.SAFE
        return fire or ((self.held_by_command or self.held_by_schedule) and not self.lockdown)

    def _mode(self) -> DoorMode:
        if self.fire_release and self.spec.fail is FailMode.SAFE:
            return DoorMode.FIRE_RELEASE
        if self.lockdown:
            return DoorMode.LOCKDOWN
        if self.held_by_command or self.held_by_schedule:
            return DoorMode.HELD_OPEN
        return DoorMode.NORMAL

    def _should_unlock(self) -> bool:
        return self.free or self.momentary_until is not None

    # -- inputs ---------------------------------------------------------------------------

    def grant(self, at: Instant, passage: Passage) -> tuple[list[Output], Passage | None]:
        """Unlock for a granted card; return the crossing at once if it is already certain."""
        if self.is_open or not self.spec.has_contact:
            # Nothing will tell us the leaf moved: the card is taken to have crossed.
            return self._momentary(at, "card"), passage
        self.pending = passage
        return self._momentary(at, "card"), None

    def exit_pressed(self, at: Instant) -> list[Output]:
        """Unlock for someone leaving; egress is never refused, not even in lockdown."""
        return self._momentary(at, "exit_button")

    def unlock_once(self, at: Instant, by: str) -> list[Output]:
        """Unlock momentarily on an operator's command."""
        return self._momentary(at, f"command:{by}")

    def set_modes(
        self, at: Instant, cause: str, *, fire: bool | None = None, lockdown: bool | None = None
    ) -> list[Output]:
        """Apply the device-wide fire release and lockdown."""
        if fire is not None:
            self.fire_release = fire
        if lockdown is not None:
            if lockdown and not self.is_open:
                self._end_momentary()  # a lockdown locks a door that was about to be used
            self.lockdown = lockdown
        return self._settle(at, cause)

    def hold(self, at: Instant, on: bool, *, by_schedule: bool, cause: str) -> list[Output]:
        """Hold the door unlocked (or stop holding) by schedule or by command."""
        if by_schedule:
            self.held_by_schedule = on
        else:
            self.held_by_command = on
        return self._settle(at, cause)

    def contact(
        self, at: Instant, is_open: bool
    ) -> tuple[list[Output], Passage | ButtonExit | None]:
        """The leaf opened or closed; return the confirmed crossing, if any."""
        if is_open == self.is_open:
            return [], None
        self.is_open = is_open
        out: list[Output] = [
            record(EventKind.DOOR, "opened" if is_open else "closed", at.utc, door=self.spec.id)
        ]
        crossing: Passage | ButtonExit | None = None
        if is_open:
            if self.momentary_until is not None:
                self.opened_while_unlocked = True
                crossing, self.pending = self.pending, None
                if (
                    crossing is None
                    and self.momentary_cause == "exit_button"
                    and not self._exit_counted
                ):
                    self._exit_counted = True
                    spec = self.spec
                    crossing = ButtonExit(spec.id, spec.inside_zone, spec.outside_zone)
            elif not self.unlocked:
                self.forced_alarm = True
                out.append(self._alarm(at, "door_forced", "raised"))
                out.append(self._sound(Signal.ALARM))
        else:
            if self.forced_alarm:
                self.forced_alarm = False
                out.append(self._alarm(at, "door_forced", "cleared", cause="closed"))
            if self.opened_while_unlocked:
                self._end_momentary()
        out += self._settle(at, "door_closed" if not is_open else "door_opened")
        return out, crossing

    def tick(self, at: Instant) -> list[Output]:
        """Run the timers: relock an unused unlock, warn and alarm on a door held open."""
        out: list[Output] = []
        cause = self._momentary_over(at)
        if cause is not None:
            self._end_momentary()
            out += self._settle(at, cause)
        if self.supervised_since is not None:
            open_for = at.mono - self.supervised_since
            warn_at = self.spec.held_open_s - self.spec.pre_alarm_s
            if (
                self.spec.pre_alarm_s > 0
                and not self.pre_alarm
                and not self.held_alarm
                and open_for >= warn_at
            ):
                self.pre_alarm = True
                out.append(
                    self._alarm(at, "door_held_open", "pre_alarm", open_s=round(open_for, 3))
                )
                out.append(self._sound(Signal.PRE_ALARM))
            if not self.held_alarm and open_for >= self.spec.held_open_s:
                self.held_alarm = True
                out.append(self._alarm(at, "door_held_open", "raised", open_s=round(open_for, 3)))
                out.append(self._sound(Signal.ALARM))
        return out

    def next_deadline(self) -> float | None:
        """Return the earliest monotonic time a tick may change this door (None: no timer).

        A lower bound: a tick at that time may find nothing to do yet (a door still open
        after its unlock time waits for the held-open limit), but no timer fires earlier.
        """
        times: list[float] = []
        if self.momentary_until is not None:
            times.append(self.momentary_until)
        if self.supervised_since is not None and not self.held_alarm:
            warn = self.spec.held_open_s - self.spec.pre_alarm_s
            if self.spec.pre_alarm_s > 0 and not self.pre_alarm:
                times.append(self.supervised_since + warn)
            times.append(self.supervised_since + self.spec.held_open_s)
        return min(times, default=None)

    def reset_alarms(self, at: Instant, by: str) -> list[Output]:
        """Clear alarms by hand; a door still open is supervised afresh from now."""
        out: list[Output] = []
        if self.forced_alarm:
            self.forced_alarm = False
            out.append(self._alarm(at, "door_forced", "cleared", cause=f"reset:{by}"))
        if self.pre_alarm or self.held_alarm:
            out += self._clear_held(at, f"reset:{by}")
        if self.supervised_since is not None:
            self.supervised_since = at.mono
        return out + self._settle(at, f"reset:{by}")

    # -- internals ------------------------------------------------------------------------

    def _momentary(self, at: Instant, cause: str) -> list[Output]:
        self.momentary_until = at.mono + self.spec.unlock_s
        self.momentary_cause = cause
        self._exit_counted = False
        self.opened_while_unlocked = self.is_open
        self._open_at_unlock = self.is_open
        return self._settle(at, cause)

    def _momentary_over(self, at: Instant) -> str | None:
        """Say why a momentary unlock ends now, or None while it still holds.

        Normally it ends when the door closes (see `contact`) or after unlock_s unopened. A
        leaf that reads open for ever (a stuck contact, a propped door) must not keep the
        lock released: it relocks at unlock_s if the door was already open when the unlock
        began, and otherwise held_open_s later.
        """
        if self.momentary_until is None or at.mono < self.momentary_until:
            return None
        if not self.is_open:
            return "not_opened"
        if self._open_at_unlock:
            return "unlock_time_over"
        if at.mono >= self.momentary_until + self.spec.held_open_s:
            return "held_open"
        return None

    def _end_momentary(self) -> None:
        self.momentary_until = None
        self.opened_while_unlocked = False
        self.pending = None

    def _settle(self, at: Instant, cause: str) -> list[Output]:
        """Bring the lock, the mode record and the held-open supervision in line with state."""
        out: list[Output] = []
        mode = self._mode()
        if mode is not self.mode:
            out.append(
                record(
                    EventKind.DOOR,
                    "mode",
                    at.utc,
                    door=self.spec.id,
                    mode=str(mode),
                    previous=str(self.mode),
                    cause=cause,
                )
            )
            self.mode = mode
        want = self._should_unlock()
        if want != self.unlocked:
            self.unlocked = want
            action = Unlock(self.spec.id, cause) if want else Lock(self.spec.id, cause)
            out.append(action)
            out.append(
                record(
                    EventKind.DOOR,
                    "unlocked" if want else "locked",
                    at.utc,
                    door=self.spec.id,
                    cause=cause,
                )
            )
        supervised = self.is_open and not self.free
        if supervised and self.supervised_since is None:
            self.supervised_since = at.mono
        elif not supervised and self.supervised_since is not None:
            self.supervised_since = None
            if self.pre_alarm or self.held_alarm:
                out += self._clear_held(at, cause)
        if self._sounding and not (self.forced_alarm or self.held_alarm or self.pre_alarm):
            self._sounding = False
            out.append(Indicate(self.spec.id, Signal.QUIET))
        return out

    def _sound(self, signal: Signal) -> Output:
        self._sounding = True
        return Indicate(self.spec.id, signal)

    def _clear_held(self, at: Instant, cause: str) -> list[Output]:
        self.pre_alarm = self.held_alarm = False
        return [self._alarm(at, "door_held_open", "cleared", cause=cause)]

    def _alarm(self, at: Instant, type_: str, state: str, **data: object) -> Output:
        return record(EventKind.ALARM, type_, at.utc, door=self.spec.id, state=state, **data)
