"""The agent's one loop: take an event, run the core, record, then act.

Every other thread (readers, gpiozero callbacks, the MQTT link) only puts events on
the queue. The loop commits each event's records and state in one transaction *before*
driving relays and indicators; if the store fails, the doors are still driven (safety
first) and the failure is logged and retried on the next event.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from edge.core.clock import Clock, Instant
from edge.core.controller import Controller, DeviceState
from edge.core.events import CardPresented, Event, Tick
from edge.core.outputs import (
    EventKind,
    EventRecord,
    Indicate,
    Lock,
    Output,
    Record,
    Unlock,
    record,
)
from edge.link.messages import InboundMessage, SnapshotResult
from edge.ports import CardReader, Indicator, Input, Relay
from edge.store import Store, outbox, state
from edge.store.credentials import SqliteCredentials
from edge.system import SystemdNotifier

if TYPE_CHECKING:
    from edge.remote import Remote

log = logging.getLogger(__name__)
MAX_UNWRITTEN = 100_000  # events kept in memory while the store cannot be written
MAX_INBOUND = 200  # network messages waiting for the loop before more are dropped

Processed = Callable[[Event | InboundMessage | SnapshotResult, list[Output]], None]


class Agent:
    """One device: its core, its store and its hardware, driven by one loop."""

    def __init__(
        self,
        controller: Controller,
        store: Store,
        clock: Clock,
        *,
        relays: Mapping[str, Relay],
        indicators: Mapping[str, Iterable[Indicator]],
        inputs: Iterable[Input] = (),
        readers: Iterable[CardReader] = (),
        credentials: SqliteCredentials | None = None,
        stale_after_s: float = 26 * 3600,
        clock_synced: Callable[[], bool] = lambda: True,
        notifier: SystemdNotifier | None = None,
        tick_s: float = 0.1,
        batch_max: int = 256,
    ) -> None:
        self.controller = controller
        self.store = store
        self.clock = clock
        self.relays = dict(relays)
        self.indicators = {door: list(parts) for door, parts in indicators.items()}
        self.inputs = list(inputs)
        self.readers = list(readers)
        self.credentials = credentials
        self.stale_after_s = stale_after_s
        self.stale_alarm = False
        self._next_check = 0.0
        self.clock_synced = clock_synced
        self.notifier = notifier or SystemdNotifier("")
        self.tick_s = tick_s
        self.batch_max = batch_max
        self.events: queue.Queue[Event | InboundMessage | SnapshotResult] = queue.Queue()
        self.remote: Remote | None = None
        self.on_committed: list[Callable[[], None]] = []
        self.on_status_change: list[Callable[[], None]] = []
        self._inbound_lock = threading.Lock()
        self._inbound_waiting = 0
        self.inbound_dropped = 0
        self.stopping = threading.Event()
        self.on_processed: list[Processed] = []
        self._started = False
        self._store_failing = False
        self._saved_modes: DeviceState | None = None
        self._unwritten: list[EventRecord] = []

    def __repr__(self) -> str:
        return (
            f"<Agent {self.controller.spec.id} relays={sorted(self.relays)} "
            f"readers={len(self.readers)} queued={self.events.qsize()}>"
        )

    def emit(self, event: Event | InboundMessage | SnapshotResult) -> None:
        """Queue an event (or an inbound MQTT message) from any thread.

        Network messages are bounded: a flood of them (even from a valid account) is dropped
        beyond MAX_INBOUND waiting, so door, reader and fire events never queue behind it.
        """
        if isinstance(event, InboundMessage):
            with self._inbound_lock:
                if self._inbound_waiting >= MAX_INBOUND:
                    self.inbound_dropped += 1
                    if self.inbound_dropped == 1 or self.inbound_dropped % 1000 == 0:
                        log.warning(
                            "dropped %d network messages: too many waiting", self.inbound_dropped
                        )
                    return
                self._inbound_waiting += 1
        self.events.put_nowait(event)

    def handle(self, event: Event) -> list[Output]:
        """Run one event through the core, record it, then act on it (the loop's thread only)."""
        return self.handle_batch([event])[0]

    def handle_batch(
        self, events: list[Event | InboundMessage | SnapshotResult]
    ) -> list[list[Output]]:
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
            for callback in self.on_processed:
                callback(event, outputs)
        return results

    def _run(self, event: Event | InboundMessage | SnapshotResult, now: Instant) -> list[Output]:
        if isinstance(event, SnapshotResult):
            return self.remote.snapshot_done(event, now) if self.remote is not None else []
        if isinstance(event, InboundMessage):
            with self._inbound_lock:
                self._inbound_waiting -= 1
            return self.remote.handle(event, now) if self.remote is not None else []
        if isinstance(event, CardPresented):
            # One read snapshot: the policy and the credentials come from the same commit,
            # so a tap during a credential swap sees the old set or the new, never a mix.
            with self.store.snapshot():
                return self.check_credentials(now, stale=False) + self.controller.handle(event, now)
        outputs = self.controller.handle(event, now)
        if isinstance(event, Tick) and now.mono >= self._next_check:
            self._next_check = now.mono + 1.0
            outputs += self.check_credentials(now)
        return outputs

    def check_credentials(self, now: Instant, stale: bool = True) -> list[Output]:
        """Pick up a newer credential set; with `stale`, raise or clear credentials_stale.

        A tap checks only the version (one indexed row); the age is judged on the ticks.
        """
        if self.credentials is None:
            return []
        out: list[Output] = []
        version = self.credentials.version()
        if version != self.controller.policy.version:
            self.controller.policy = self.credentials.policy()
            meta = self.credentials.meta()
            out.append(
                record(
                    EventKind.SYSTEM,
                    "credentials_applied",
                    now.utc,
                    version=version,
                    cards=meta.get("cards"),
                    issued_at=meta.get("issued_at"),
                )
            )
            for callback in self.on_status_change:
                callback()
        if not stale:
            return out
        issued = self.credentials.meta().get("issued_at")
        age_s = (now.utc - datetime.fromisoformat(issued)).total_seconds() if issued else None
        is_stale = age_s is None or age_s > self.stale_after_s
        if is_stale != self.stale_alarm:
            self.stale_alarm = is_stale
            for callback in self.on_status_change:
                callback()
            out.append(
                record(
                    EventKind.ALARM,
                    "credentials_stale",
                    now.utc,
                    state="raised" if is_stale else "cleared",
                    version=version,
                    age_h=None if age_s is None else round(age_s / 3600, 2),
                )
            )
        return out

    def start(self, startup: Iterable[Output] = ()) -> None:
        """Commit start-up records, drive the doors, then start the inputs and readers."""
        outputs = [*startup, *self.check_credentials(self.clock.now())]
        self._commit([o.event for o in outputs if isinstance(o, Record)])
        for door, relay in self.relays.items():
            if self.controller.doors[door].unlocked:
                relay.unlock()
        self._perform(outputs)
        for part in [*self.inputs, *self.readers]:
            part.start(self.emit)
        self._started = True
        self.notifier.notify("READY=1")

    def run(self) -> None:
        """Loop until `stop()`: events as they come, a tick every `tick_s`."""
        next_tick = self.clock.now().mono
        while not self.stopping.is_set():
            timeout = max(0.0, next_tick - self.clock.now().mono)
            batch: list[Event | InboundMessage | SnapshotResult] = []
            try:
                batch.append(self.events.get(timeout=timeout))
                while len(batch) < self.batch_max:
                    batch.append(self.events.get_nowait())
            except queue.Empty:
                pass
            if batch:
                self.handle_batch(batch)
            now = self.clock.now().mono
            if now >= next_tick:
                self.handle(Tick())
                next_tick = now + self.tick_s
            self.notifier.ping(now)

    def stop(self) -> None:
        """Ask the loop to finish the current event and return (signal-handler safe)."""
        self.stopping.set()

    def close(self) -> None:
        """Stop readers and inputs, de-energise relays, close the store; idempotent."""
        self.notifier.notify("STOPPING=1")
        for part in [*self.readers, *self.inputs]:
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
            for callback in self.on_committed:
                callback()

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
