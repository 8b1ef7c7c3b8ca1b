"""The core of one device: an event and the time in, outputs out, nothing performed.

It routes each event to the access decision, the PIN gate, the door machines, presence and
occupancy, and holds the device-wide modes: lockdown, and the fire release that beats it.
It runs past 500 lines as the one place where every event meets those modes; each part it
routes to (decision, door, pin, presence, occupancy, antipassback) is a module of its own.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from edge.core.antipassback import AntiPassbackTracker, Position
from edge.core.clock import Instant, utc_text
from edge.core.credentials import CredentialStore
from edge.core.cutoff import PeerCutoff
from edge.core.decision import Decision, Reason, Request, decide
from edge.core.door import ButtonExit, DoorMachine, Passage
from edge.core.events import (
    CardPresented,
    ContactChanged,
    Event,
    ExitPressed,
    FireInputChanged,
    ForgivePosition,
    PeersReachable,
    PinChecked,
    PinEntered,
    PinOutcome,
    PresenceChanged,
    PresenceSensorStatus,
    ReaderStatusChanged,
    ResetAlarms,
    ResetFire,
    ResetOccupancy,
    RoomDoorChanged,
    SetHoldOpen,
    SetLockdown,
    Tick,
    UnlockOnce,
)
from edge.core.occupancy import OccupancyCounter
from edge.core.outputs import EventKind, Indicate, Output, Signal, record
from edge.core.pin import PinGate, wants_pin
from edge.core.policy import AccessPolicy
from edge.core.schedule import AnyOf, ClosureDays, HolidayCalendar
from edge.core.spec import DeviceSpec, Direction
from edge.core.zone_presence import Changes, ZonePresence


@dataclass(frozen=True, slots=True)
class DeviceState:
    """Device-wide modes that outlive the process."""

    lockdown: bool = False
    fire_latched: bool = False
    held_by_command: tuple[str, ...] = ()
    forgiven_on: tuple[tuple[str, str], ...] = ()  # (zone, local ISO date) of the last forgiveness
    occupied_sensors: tuple[str, ...] = ()  # presence sensors occupied: they hold again at start
    latched_rooms: tuple[str, ...] = ()  # rooms shut with someone inside (room_latch)


class Controller:
    """Everything one device decides. Not thread-safe: one loop calls `handle`."""

    def __init__(
        self,
        spec: DeviceSpec,
        policy: AccessPolicy,
        credentials: CredentialStore,
        calendar: HolidayCalendar,
    ) -> None:
        self.spec = spec
        self.credentials = credentials
        self._base_calendar = calendar
        self._calendar: HolidayCalendar = calendar
        self._tz = ZoneInfo(spec.timezone)
        self.doors = {d.id: DoorMachine(d) for d in spec.doors}
        self._readers = {r.id: r for r in spec.readers}
        self._zones = {z.id: z for z in spec.zones}
        self.presence = ZonePresence(spec)
        self.counts = OccupancyCounter(
            z for d in spec.doors for z in (d.outside_zone, d.inside_zone)
        )
        self.passback = AntiPassbackTracker(spec.zones, self._tz)
        self.peers = PeerCutoff()
        self.policy = policy
        self.lockdown = False
        self.fire_inputs: set[str] = set()
        self.fire_latched = False
        self.offline_readers: set[str] = set()
        self.pins = PinGate()

    def __repr__(self) -> str:
        return (
            f"<Controller {self.spec.id} doors={len(self.doors)} readers={len(self._readers)} "
            f"lockdown={self.lockdown} fire={self.fire_release}>"
        )

    @property
    def policy(self) -> AccessPolicy:
        """The access policy in force."""
        return self._policy

    @policy.setter
    def policy(self, policy: AccessPolicy) -> None:
        self._policy = policy
        self.passback.apply_overrides(policy.anti_passback, policy.anti_passback_offline)
        self._refresh_calendar()

    @property
    def calendar(self) -> HolidayCalendar:
        """The device's holidays and closure days, plus the policy's closure days."""
        return self._calendar

    @calendar.setter
    def calendar(self, calendar: HolidayCalendar) -> None:
        self._base_calendar = calendar
        self._refresh_calendar()

    def _refresh_calendar(self) -> None:
        closures = self._policy.closure_days
        if closures:
            self._calendar = AnyOf((self._base_calendar, ClosureDays.parse(closures)))
        else:
            self._calendar = self._base_calendar

    @property
    def fire_release(self) -> bool:
        """True while a fire input is active or a fire release awaits its reset."""
        return bool(self.fire_inputs) or self.fire_latched

    def handle(self, event: Event, at: Instant) -> list[Output]:
        """Process one event at one instant; return the outputs in the order to perform them."""
        match event:
            case CardPresented():
                self.pins.drop(event.reader)
                return self._degraded(at) + self._card(event, at)
            case PinEntered():
                check = self.pins.entered(event, self.credentials)
                return [] if check is None else [check]
            case PinChecked():
                return self._degraded(at) + self._pin_checked(event, at)
            case PeersReachable(up=up):
                self.peers.link(up, at)
                return self._degraded(at)
            case ContactChanged(door=door_id, is_open=is_open):
                if door_id not in self.doors:
                    return [self._unknown("door", door_id, at)]
                out, crossing = self.doors[door_id].contact(at, is_open)
                if isinstance(crossing, ButtonExit):
                    return out + self._button_exit(crossing, at)
                return out + self._crossed(crossing, at)
            case ExitPressed(door=door_id):
                if door_id not in self.doors:
                    return [self._unknown("door", door_id, at)]
                out = [record(EventKind.DOOR, "exit_pressed", at.utc, door=door_id)]
                return out + self.doors[door_id].exit_pressed(at)
            case FireInputChanged():
                return self._fire_input(event, at)
            case ReaderStatusChanged():
                return self._reader_status(event, at)
            case PresenceChanged():
                return self._presence_changes(self.presence.presence(event, at), at)
            case PresenceSensorStatus():
                return self._presence_changes(self.presence.sensor_status(event, at), at)
            case RoomDoorChanged():
                return self._presence_changes(self.presence.room_door(event, at), at)
            case Tick():
                return self._tick(at)
            case _:
                return self._command(event, at)

    # -- cards ----------------------------------------------------------------------------

    def _card(
        self, event: CardPresented, at: Instant, pin: PinOutcome | None = None
    ) -> list[Output]:
        """Decide a tap; `pin` is the outcome of its PIN once one was keyed."""
        reader = self._readers.get(event.reader)
        if reader is None or reader.door not in self.doors:
            return [self._unknown("reader", event.reader, at)]
        door = self.doors[reader.door]
        if reader.direction is Direction.IN:
            from_zone, to_zone = door.spec.outside_zone, door.spec.inside_zone
        else:
            from_zone, to_zone = door.spec.inside_zone, door.spec.outside_zone
        request = Request(
            card_ref=event.card_ref,
            door=door.spec.id,
            authenticated=event.authenticated,
            security=reader.security,
            destination=to_zone,
            position=self.passback.position(event.card_ref),
            anti_passback=self.passback.setting(from_zone, to_zone, cut_off=self.peers.cut_off(at)),
        )
        decision = decide(
            request,
            utc=at.utc,
            local=at.utc.astimezone(self._tz),
            credentials=self.credentials,
            policy=self.policy,
            calendar=self.calendar,
            lockdown=self.lockdown,
        )
        flags = [
            (decision.lost_card, "lost_card_used"),
            (decision.clone_suspected, "clone_suspected"),
            (decision.passback_violation, "anti_passback_violation"),
        ]
        if decision.granted:
            credential = self.credentials.find(event.card_ref)
            asks = wants_pin(reader, credential, self.policy)
            if asks and self.pins.locked_out(event.card_ref, at):
                # Checked after the PIN too: it may have been keyed at one reader while the
                # lockout began at another.
                decision, flags = Decision(False, Reason.PIN_LOCKED_OUT), []
            elif asks and pin is None:
                if credential is None or credential.pin is None:
                    decision, flags = Decision(False, Reason.NO_PIN), []
                else:
                    self.pins.wait(event, reader, at)
                    return [Indicate(door.spec.id, Signal.PIN_WANTED, reader.id)]
        out: list[Output] = [
            self._access_record(event, reader.door, reader.direction, decision, at)
        ]
        if pin is PinOutcome.DURESS:
            # Silent: the reader shows what it shows for the right PIN.
            flags.append((True, "duress"))
        out += [self._card_alarm(name, event, at) for flagged, name in flags if flagged]
        if not decision.granted:
            out.append(Indicate(door.spec.id, Signal.DENY, reader.id))
            return out
        out.append(Indicate(door.spec.id, Signal.GRANT, reader.id))
        passage = Passage(event.card_ref, reader.id, reader.direction, from_zone, to_zone)
        door_out, crossing = door.grant(at, passage)
        return out + door_out + self._crossed(crossing, at)

    def _pin_checked(self, event: PinChecked, at: Instant) -> list[Output]:
        card = self.pins.checked(event)
        reader = self._readers.get(event.reader)
        if card is None or reader is None:
            return []
        if event.outcome is not PinOutcome.WRONG:
            self.pins.right(card.card_ref)
            # Decided again: a lockdown or a revocation may have come while the PIN was keyed.
            return self._card(card, at, event.outcome)
        out = [self._pin_denied(card, Reason.WRONG_PIN, at)]
        if self.pins.wrong(card.card_ref, reader.pin_attempts):
            self.pins.lock_out(card.card_ref, at, reader.pin_lockout_s)
            out.append(
                self._card_alarm(
                    "pin_attempts_exceeded",
                    card,
                    at,
                    attempts=reader.pin_attempts,
                    lockout_s=reader.pin_lockout_s,
                )
            )
        return [*out, Indicate(reader.door, Signal.DENY, reader.id)]

    def _card_alarm(self, name: str, card: CardPresented, at: Instant, **extra: object) -> Output:
        door = self._readers[card.reader].door
        return record(
            EventKind.ALARM,
            name,
            at.utc,
            door=door,
            reader=card.reader,
            card_ref=card.card_ref,
            state="raised",
            **extra,
        )

    def _pin_denied(self, card: CardPresented, reason: Reason, at: Instant) -> Output:
        reader = self._readers[card.reader]
        return self._access_record(card, reader.door, reader.direction, Decision(False, reason), at)

    def _access_record(
        self, event: CardPresented, door: str, direction: Direction, decision: Decision, at: Instant
    ) -> Output:
        extra: dict[str, object] = {}
        if decision.override:
            extra["override"] = True
        if decision.passback_violation:
            extra["anti_passback_violation"] = True
        return record(
            EventKind.ACCESS,
            "granted" if decision.granted else "denied",
            at.utc,
            door=door,
            reader=event.reader,
            direction=str(direction),
            card_ref=event.card_ref,
            authenticated=event.authenticated,
            reason=str(decision.reason),
            **extra,
        )

    def _degraded(self, at: Instant) -> list[Output]:
        return self.peers.settle(at, self.passback.soft_fallback_zones())

    def _crossed(self, crossing: Passage | None, at: Instant) -> list[Output]:
        if crossing is None:
            return []
        # Stamped causally: after the card's last crossing as this device knows it.
        ts = self.passback.causal(crossing.card_ref, at.utc)
        self.passback.crossed(crossing.card_ref, crossing.to_zone, (utc_text(ts), self.spec.id, 0))
        out: list[Output] = [
            record(
                EventKind.ACCESS,
                "crossing",
                ts,
                door=self._readers[crossing.reader].door,
                reader=crossing.reader,
                direction=str(crossing.direction),
                card_ref=crossing.card_ref,
                from_zone=crossing.from_zone,
                to_zone=crossing.to_zone,
            )
        ]
        for zone in self.counts.cross(crossing.from_zone, crossing.to_zone):
            out.append(self._occupancy(zone, at))
        return out

    def _button_exit(self, crossing: ButtonExit, at: Instant) -> list[Output]:
        """Count one person leaving by the exit button (no card: nothing for anti-passback)."""
        out: list[Output] = [
            record(
                EventKind.ACCESS,
                "button_exit",
                at.utc,
                door=crossing.door,
                from_zone=crossing.from_zone,
                to_zone=crossing.to_zone,
            )
        ]
        for zone in self.counts.cross(crossing.from_zone, crossing.to_zone):
            out.append(self._occupancy(zone, at))
        return out

    def _reader_status(self, event: ReaderStatusChanged, at: Instant) -> list[Output]:
        reader = self._readers.get(event.reader)
        if reader is None:
            return [self._unknown("reader", event.reader, at)]
        if event.online == (event.reader not in self.offline_readers):
            return []
        if event.online:
            self.offline_readers.discard(event.reader)
        else:
            self.offline_readers.add(event.reader)
        state = "cleared" if event.online else "raised"
        return [
            record(
                EventKind.ALARM,
                "reader_offline",
                at.utc,
                door=reader.door,
                reader=reader.id,
                state=state,
                detail=event.detail,
            )
        ]

    # -- fire, commands -------------------------------------------------------------------

    def _fire_input(self, event: FireInputChanged, at: Instant) -> list[Output]:
        was_active = bool(self.fire_inputs)
        if event.active:
            self.fire_inputs.add(event.door)
        else:
            self.fire_inputs.discard(event.door)
        active = bool(self.fire_inputs)
        if active == was_active:
            return []
        if active:
            self.fire_latched = self.spec.fire_reset_manual
            out = [record(EventKind.ALARM, "fire", at.utc, state="raised", input=event.door)]
        else:
            out = [
                record(
                    EventKind.ALARM,
                    "fire",
                    at.utc,
                    state="cleared",
                    input=event.door,
                    reset_required=self.fire_latched,
                )
            ]
        return out + self._all_doors(at, "fire", fire=self.fire_release)

    def _command(self, event: Event, at: Instant) -> list[Output]:
        match event:
            case SetLockdown(on=on, by=by):
                changed = on != self.lockdown
                self.lockdown = on
                out = [record(EventKind.SYSTEM, "lockdown", at.utc, on=on, by=by, changed=changed)]
                return out + self._all_doors(at, f"lockdown:{by}", lockdown=on)
            case ResetFire(by=by):
                if self.fire_inputs:
                    return [
                        record(
                            EventKind.SYSTEM,
                            "fire_reset_refused",
                            at.utc,
                            by=by,
                            reason="fire_input_active",
                            inputs=sorted(self.fire_inputs),
                        )
                    ]
                was = self.fire_latched
                self.fire_latched = False
                out = [record(EventKind.SYSTEM, "fire_reset", at.utc, by=by, changed=was)]
                return out + self._all_doors(at, f"fire_reset:{by}", fire=False)
            case ResetOccupancy(zone=zone, count=count, by=by):
                if not self.counts.reset(zone, count):
                    return [self._unknown("zone", zone, at)]
                return [
                    record(
                        EventKind.SYSTEM, "occupancy_reset", at.utc, zone=zone, count=count, by=by
                    ),
                    self._occupancy(zone, at),
                ]
            case ForgivePosition(card_ref=card_ref, zone=zone, by=by):
                ts = self.passback.causal(card_ref, at.utc)  # after what it forgives
                stamp = (utc_text(ts), self.spec.id, 0)
                changed, held = self.passback.forgive(card_ref, zone, stamp)
                return [
                    record(
                        EventKind.SYSTEM,
                        "anti_passback_card_forgiven",
                        ts,
                        card_ref=card_ref,
                        zone=zone,
                        by=by,
                        was_in=held,
                        changed=changed,
                    )
                ]
            case UnlockOnce(door=door_id, by=by) if door_id in self.doors:
                return self.doors[door_id].unlock_once(at, by)
            case SetHoldOpen(door=door_id, on=on, by=by) if door_id in self.doors:
                return self.doors[door_id].hold(at, on, by_schedule=False, cause=f"command:{by}")
            case ResetAlarms(door=door_id, by=by) if door_id in self.doors:
                return self.doors[door_id].reset_alarms(at, by)
            case UnlockOnce(door=door_id) | SetHoldOpen(door=door_id) | ResetAlarms(door=door_id):
                return [self._unknown("door", door_id, at)]
        raise TypeError(f"not an event the core knows: {event!r}")

    def _all_doors(self, at: Instant, cause: str, **modes: bool) -> list[Output]:
        return [o for door in self.doors.values() for o in door.set_modes(at, cause, **modes)]

    # -- presence, timers -----------------------------------------------------------------

    def _presence_changes(self, changes: Changes, at: Instant) -> list[Output]:
        out, zones = changes
        return out + [self._occupancy(zone, at) for zone in zones]

    def next_deadline(self) -> float | None:
        """Return the earliest monotonic time a tick may produce something, or None.

        Door, presence and PIN timers and the peers' grace period only: schedules and the
        anti-passback forgiveness are read from the wall clock, so whoever skips time (the
        simulator) also ticks every minute.
        """
        times = [d.next_deadline() for d in self.doors.values()]
        times.append(self.presence.next_deadline())
        times += [self.pins.next_deadline(), self.peers.next_deadline()]
        return min((t for t in times if t is not None), default=None)

    def _tick(self, at: Instant) -> list[Output]:
        out: list[Output] = []
        for card in self.pins.expired(at):
            reader = self._readers[card.reader]
            out += [
                self._pin_denied(card, Reason.PIN_TIMEOUT, at),
                Indicate(reader.door, Signal.DENY, reader.id),
            ]
        out += self._degraded(at)
        local = at.utc.astimezone(self._tz)
        for door in self.doors.values():
            schedule = self.policy.unlock_schedule(door.spec.id)
            held = schedule is not None and schedule.is_open(local, self.calendar)
            if held != door.held_by_schedule:
                out += door.hold(at, held, by_schedule=True, cause="schedule")
            out += door.tick(at)
        out += self._presence_changes(self.presence.tick(at), at)
        for zone in self.passback.forgive_due(local):
            out.append(
                record(
                    EventKind.SYSTEM,
                    "anti_passback_forgiven",
                    at.utc,
                    zone=zone,
                    local_date=local.date().isoformat(),
                    forgiven_at=self.passback.forgiven_at(zone),
                )
            )
        return out

    # -- records --------------------------------------------------------------------------

    def _occupancy(self, zone: str, at: Instant) -> Output:
        count = self.counts.count(zone)
        spec = self._zones.get(zone)
        occupied = bool(count) or self.presence.occupied(zone)
        return record(
            EventKind.OCCUPANCY,
            "zone",
            at.utc,
            zone=zone,
            count=count,
            occupied=occupied,
            capacity=spec.capacity if spec else None,
            sensor_ok=self.presence.sensor_ok(zone),
        )

    def _unknown(self, what: str, name: str, at: Instant) -> Output:
        return record(EventKind.SYSTEM, "unknown_input", at.utc, what=what, name=name)

    # -- what survives a restart ----------------------------------------------------------

    def snapshot(self) -> DeviceState:
        """Return the modes that must survive a restart (positions and counts go by record)."""
        sensors, rooms = self.presence.snapshot()
        return DeviceState(
            lockdown=self.lockdown,
            fire_latched=self.fire_latched,
            held_by_command=tuple(
                sorted(d.spec.id for d in self.doors.values() if d.held_by_command)
            ),
            forgiven_on=self.passback.forgiven_dates(),
            occupied_sensors=sensors,
            latched_rooms=rooms,
        )

    def restore(
        self,
        at: Instant,
        state: DeviceState,
        positions: Iterable[Position] = (),
        counts: Iterable[tuple[str, int]] = (),
    ) -> list[Output]:
        """Resume after a restart: modes, anti-passback positions, head counts."""
        self.passback.restore(positions)
        for zone, count in counts:
            self.counts.reset(zone, count)
        self.lockdown = state.lockdown
        self.fire_latched = state.fire_latched
        self.passback.restore_forgiven(state.forgiven_on)
        # A restart must not show an occupied booth vacant: its sensors hold again from now,
        # and a room shut with someone inside stays latched until its door opens.
        self.presence.restore(at, state.occupied_sensors, state.latched_rooms)
        # Sent again: the retained occupancy may still say what held before the restart.
        out = [self._occupancy(zone, at) for zone in self.presence.zones()]
        local = at.utc.astimezone(self._tz)
        for door in self.doors.values():
            door.held_by_command = door.spec.id in state.held_by_command
            # Holds by schedule apply before the first input arrives: a door held open by
            # its schedule and standing open at start is not "forced".
            schedule = self.policy.unlock_schedule(door.spec.id)
            door.held_by_schedule = schedule is not None and schedule.is_open(local, self.calendar)
            out += door.set_modes(at, "restart", fire=self.fire_release, lockdown=self.lockdown)
        return out

    def iter_doors(self) -> Iterator[DoorMachine]:
        """Yield the door machines in configuration order."""
        yield from self.doors.values()
