"""The agent's one loop: take an event, run the core, record, then act.

Every other thread (readers, gpiozero callbacks, the MQTT link) only puts events on
the queue. The loop commits each event's records and state in one transaction *before*
driving relays and indicators; if the store fails, the doors are still driven (safety
first) and the failure is logged and retried on the next event.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from edge.core.clock import Clock, Instant
from edge.core.controller import Controller, DeviceState
from edge.core.events import CardPresented, Event, PeersReachable, PinChecked, Tick
from edge.core.outputs import (
    CheckPin,
    EventKind,
    EventRecord,
    Indicate,
    Lock,
    Output,
    Record,
    Unlock,
    record,
)
from edge.credentials_freshness import CredentialRefresh
from edge.inbox import Inbox, Item
from edge.keypad import Keypad
from edge.link.messages import InboundMessage, SnapshotResult
from edge.pin_check import PinChecker
from edge.ports import CardReader, Indicator, Input, Relay
from edge.store import Store, outbox, state
from edge.system import SystemdNotifier

log = logging.getLogger(__name__)
MAX_UNWRITTEN = 100_000  # events kept in memory while the store cannot be written

Processed = Callable[[Item, list[Output]], None]


class Closeable(Protocol):
    """Something with an idempotent close()."""

    def close(self) -> None:
        """Let go of what it holds; idempotent."""


class InboundHandler(Protocol):
    """What the loop hands network messages and snapshot results to (`edge.remote.Remote`)."""

    def handle(self, message: InboundMessage, now: Instant) -> list[Output]:
        """Handle one inbound message; return the outputs to record and perform."""

    def snapshot_done(self, result: SnapshotResult, now: Instant) -> list[Output]:
        """Record the outcome of a credential snapshot applied off the loop."""

    def send_replies(self) -> None:
        """Publish the replies of the commands handled, once their outputs are performed."""

    def close(self) -> None:
        """Stop any work of its own; idempotent."""


class NoRemote:
    """The inbound side of an agent that takes no commands or snapshots: ignores them."""

    def __repr__(self) -> str:
        return "<NoRemote>"

    def handle(self, message: InboundMessage, now: Instant) -> list[Output]:
        """Ignore the message."""
        return []

    def snapshot_done(self, result: SnapshotResult, now: Instant) -> list[Output]:
        """Ignore the result."""
        return []

    def send_replies(self) -> None:
        """Nothing to send."""

    def close(self) -> None:
        """Nothing to stop."""


@dataclass(frozen=True)
class Core:
    """The device's decisions and what they are kept in."""

    controller: Controller
    store: Store
    credentials: CredentialRefresh


@dataclass(frozen=True)
class Hardware:
    """The device's parts: relays by door, indicators by reader, inputs, card readers."""

    relays: Mapping[str, Relay]
    indicators: Mapping[str, Sequence[Indicator]]
    inputs: Sequence[Input] = ()
    readers: Sequence[CardReader] = ()
    # The readers' own way to the keys of proven cards; closed after them.
    card_keys: Closeable | None = None
    keypads: Sequence[Keypad] = ()  # PIN keypads beside the readers


@dataclass(frozen=True)
class Network:
    """The queue every thread puts on, the inbound handler, and the outbox's drainer.

    `link_up`: set while the MQTT link is connected (the way to the zones' peers); None for
    an agent alone, which is never cut off from peers it does not have.
    """

    inbox: Inbox = field(default_factory=Inbox)
    remote: InboundHandler = field(default_factory=NoRemote)
    committed: Callable[[], None] = lambda: None  # new events are in the outbox
    link_up: threading.Event | None = None


@dataclass(frozen=True)
class Pace:
    """The loop's time: the clock, whether it is synchronised, the watchdog, the tick."""

    clock: Clock
    clock_synced: Callable[[], bool] = lambda: True
    notifier: SystemdNotifier = field(default_factory=lambda: SystemdNotifier(""))
    tick_s: float = 0.1
    batch_max: int = 256


class Agent:
    """One device: its core, its store and its hardware, driven by one loop."""

    def __init__(self, core: Core, hardware: Hardware, network: Network, pace: Pace) -> None:
        self.controller = core.controller
        self.store = core.store
        self.credentials = core.credentials
        self.relays = dict(hardware.relays)
        self.indicators = {reader: list(parts) for reader, parts in hardware.indicators.items()}
        self.inputs = list(hardware.inputs)
        self.readers = list(hardware.readers)
        self._card_keys = hardware.card_keys
        self.keypads = list(hardware.keypads)
        self.inbox = network.inbox
        self.events = network.inbox.events
        self.remote = network.remote
        self._committed = network.committed
        self._link_up = network.link_up
        self._peers_up: bool | None = None  # the link as the core last heard of it
        self._cut_off = False  # as last logged
        self._pins = PinChecker(network.inbox.put)
        self.clock = pace.clock
        self.clock_synced = pace.clock_synced
        self.notifier = pace.notifier
        self.tick_s = pace.tick_s
        self.batch_max = pace.batch_max
        self.stopping = threading.Event()
        self._next_check = 0.0
        self._processed: list[Processed] = []
        self._started = False
        self._store_failing = False
        self._saved_modes: DeviceState | None = None
        self._unwritten: list[EventRecord] = []

    @property
    def inbound_dropped(self) -> int:
        """How many network messages were dropped because too many were waiting."""
        return self.inbox.inbound_dropped

    @property
    def link_up(self) -> threading.Event | None:
        """Set while the MQTT link is connected; None for an agent without one."""
        return self._link_up

    def when_processed(self, callback: Processed) -> Callable[[], None]:
        """Call `callback(event, outputs)` on the loop's thread after each event is performed.

        Returns the function that removes it again.
        """
        self._processed.append(callback)
        return lambda: self._processed.remove(callback)

    def __repr__(self) -> str:
        return (
            f"<Agent {self.controller.spec.id} relays={sorted(self.relays)} "
            f"readers={len(self.readers)} queued={self.events.qsize()}>"
        )

    def emit(self, event: Item) -> None:
        """Queue an event (or an inbound MQTT message) from any thread; see `Inbox.put`."""
        self.inbox.put(event)

    def handle(self, event: Event) -> list[Output]:
        """Run one event through the core, record it, then act on it (the loop's thread only)."""
        return self.handle_batch([event])[0]

    def handle_batch(self, events: list[Item]) -> list[list[Output]]:
        """Run events through the core, commit all their records at once, then act.

        Group commit: under a burst, one fsync'd transaction carries many events (each
        still together with its state change), instead of one fsync per event.
        """
        results = []
        for event in events:
            now = self.clock.now()
            try:
                outputs = self._run(event, now)
            except Exception as exc:
                # One bad event (a malformed message, a store hiccup) must never stop the
                # loop: the doors and every other event go on. Record what happened.
                log.exception("handling %s failed; the agent carries on", type(event).__name__)
                outputs = [
                    record(
                        EventKind.SYSTEM,
                        "internal_error",
                        now.utc,
                        event=type(event).__name__,
                        error=f"{type(exc).__name__}: {str(exc)[:200]}",
                    )
                ]
            results.append(outputs)
        self._commit([o.event for outputs in results for o in outputs if isinstance(o, Record)])
        for event, outputs in zip(events, results, strict=True):
            try:
                self._perform(outputs)
            except Exception:
                log.exception("performing the outputs of %s failed", type(event).__name__)
            for callback in tuple(self._processed):
                callback(event, outputs)
        self.remote.send_replies()  # after the events are stored and the doors driven
        return results

    def _run(self, event: Item, now: Instant) -> list[Output]:
        if isinstance(event, SnapshotResult):
            return self.remote.snapshot_done(event, now)
        if isinstance(event, InboundMessage):
            return self.remote.handle(event, now)
        if isinstance(event, CardPresented | PinChecked):
            # One read snapshot: the policy and the credentials come from the same commit,
            # so a tap during a credential swap sees the old set or the new, never a mix.
            with self.store.snapshot():
                return self.credentials.check(now, stale=False) + self.controller.handle(event, now)
        outputs = self.controller.handle(event, now)
        if isinstance(event, Tick) and now.mono >= self._next_check:
            self._next_check = now.mono + 1.0
            outputs += self.credentials.check(now)
        return outputs

    def start(self, startup: Iterable[Output] = ()) -> None:
        """Commit start-up records, drive the doors, then start the inputs and readers."""
        outputs = [*startup, *self.credentials.check(self.clock.now())]
        self._commit([o.event for o in outputs if isinstance(o, Record)])
        for door, relay in self.relays.items():
            if self.controller.doors[door].unlocked:
                relay.unlock()
        self._perform(outputs)
        self.check_link()
        for part in [*self.inputs, *self.readers, *self.keypads]:
            part.start(self.emit)
        self._started = True
        self.notifier.notify("READY=1")

    def run(self) -> None:
        """Loop until `stop()`: events as they come, a tick every `tick_s`."""
        next_tick = self.clock.now().mono
        while not self.stopping.is_set():
            timeout = max(0.0, next_tick - self.clock.now().mono)
            batch = self.inbox.take(timeout, self.batch_max)
            if batch:
                self.handle_batch(batch)
            now = self.clock.now().mono
            if now >= next_tick:
                self.handle(Tick())
                next_tick = now + self.tick_s
            self.check_link()
            self.notifier.ping(now)

    def check_link(self) -> None:
        """Tell the core when the link to its peers has come up or gone down (loop's thread).

        One flag read per loop turn; the core decides when a link down is a cut-off, and the
        agent logs once when it begins and once when it ends.
        """
        if self._link_up is None:
            return
        up = self._link_up.is_set()
        if up != self._peers_up:
            self._peers_up = up
            self.handle(PeersReachable(up))
        cut_off = self.controller.peers.cut_off(self.clock.now())
        if cut_off == self._cut_off:
            return
        self._cut_off = cut_off
        if cut_off:
            soft = self.controller.passback.soft_fallback_zones()
            log.warning(
                "cut off from its peers (no broker for %g s): anti-passback decides on this "
                "device's positions alone%s",
                self.controller.peers.lost_after_s,
                f"; soft fallback in {', '.join(soft)}" if soft else "",
            )
        else:
            log.warning("hears its peers again")

    def stop(self) -> None:
        """Ask the loop to finish the current event and return (signal-handler safe)."""
        self.stopping.set()

    def close(self) -> None:
        """Stop the remote side, PIN checks, readers, keypads and inputs, de-energise relays,
        close the store.

        Idempotent.
        """
        self.notifier.notify("STOPPING=1")
        try:
            self.remote.close()
        except Exception:  # a stuck snapshot worker must not keep the relays energised
            log.exception("closing %r failed", self.remote)
        self._pins.close()
        parts = [*self.readers, *self.keypads, *self.inputs, *filter(None, [self._card_keys])]
        for part in parts:
            try:
                part.close()
            except Exception:  # one broken part must not keep the relays energised
                log.exception("closing %r failed", part)
        for indicators in self.indicators.values():
            for indicator in indicators:
                try:
                    indicator.close()
                except Exception:
                    log.exception("closing %r failed", indicator)
        for relay in self.relays.values():
            try:
                relay.close()
            except Exception:
                log.exception("de-energising %r failed", relay)
        self.store.close()

    def _commit(self, records: list[EventRecord]) -> None:
        if not records and not self._unwritten:
            return
        records = [*self._unwritten, *records]
        try:
            with self.store.transaction() as db:
                outbox.append(db, self.controller.spec.id, records, self.clock_synced())
                modes = self.controller.snapshot()
                state.apply(db, records, modes, self._saved_modes)
                self._saved_modes = modes
        except Exception:
            # Safety first: the doors are still driven. The records wait in memory and go
            # in with the next commit that succeeds (a full disk, a failing card); only a
            # power cut during the spell, or more than MAX_UNWRITTEN of them, loses any.
            if not self._store_failing:
                log.exception("store write failed; doors keep working, events wait in memory")
            self._store_failing = True
            self._unwritten = records[-MAX_UNWRITTEN:]
            if len(records) > MAX_UNWRITTEN:
                log.error(
                    "dropped %d events that could not be stored", len(records) - MAX_UNWRITTEN
                )
        else:
            if self._store_failing:
                log.warning(
                    "store writes work again; %d waiting events stored", len(self._unwritten)
                )
            self._store_failing = False
            self._unwritten = []
            self._committed()

    def _perform(self, outputs: Iterable[Output]) -> None:
        for output in outputs:
            try:
                self._perform_one(output)
            except Exception:
                log.exception("could not perform %r", output)

    def _perform_one(self, output: Output) -> None:
        match output:
            case Unlock(door=door):
                self.relays[door].unlock()
            case Lock(door=door):
                self.relays[door].lock()
            case Indicate(door=door, signal=signal, reader=reader):
                for indicator in self._indicators_for(door, reader):
                    indicator.show(signal)
            case CheckPin():
                self._pins.submit(output)
            case Record():
                pass

    def _indicators_for(self, door: str, reader: str | None) -> list[Indicator]:
        if reader is not None:
            return self.indicators.get(reader, [])
        return [
            i
            for r in self.controller.spec.readers
            if r.door == door
            for i in self.indicators.get(r.id, [])
        ]
