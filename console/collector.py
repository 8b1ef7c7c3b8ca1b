"""The collector: every device's events, status and occupancy into the central log.

Events arrive on an MQTT 5 shared subscription (`$share/{group}/…`), so several collectors
split the load; each message is acknowledged to the broker only after it is stored or
refused, and the session is persistent, so neither a collector restart nor a broker
outage loses an event. Status and occupancy are retained and idempotent: every collector
takes them all (the broker does not send retained messages to shared subscriptions).

Each message is judged alone: read under limits (`console.intake`), then checked against
what its device was provisioned with (`console.claims`). A message that fails is refused
with its reason, kept aside without its payload (`console.refusals`), acknowledged, and
raises the device's console alarm; it never holds back another message. Only a failure of
the database itself (disk full, locked) leaves a batch unacknowledged, to be delivered again.
Messages wait in one lane per device, drained in turn behind a per-device rate budget
(`console.lanes`), so a device that floods delays nobody else.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from console import refusals, rooms_view
from console.anchor import Anchorer
from console.claims import Registry
from console.intake import Refused, parse
from console.lanes import Lanes
from console.log import CentralLog, LogError, identity
from console.mqtt import ConsoleClient, Message
from console.refusals import BAD_MESSAGES, CLAIM_REFUSED, Refusal
from edge.core.clock import utc_text
from edge.link import topics

log = logging.getLogger(__name__)

BATCH = 500
NEVER = 0xFFFFFFFF  # MQTT 5: a session expiry interval that never ends
BATCH_WAIT_S = 0.02
# Per device: the agent drains its outbox at about 11,200 events/s at most (bench/link.py,
# x86-64 on loopback; a Raspberry Pi is slower), so an honest device never exceeds this.
RATE_PER_S: Final = 15_000.0
BURST: Final = 30_000.0
UNKNOWN: Final = "(unknown)"  # the lane and refusals of every device not provisioned
FUTURE: Final = timedelta(minutes=5)  # a device clock this far ahead is not believed
EPOCH: Final = datetime(2020, 1, 1, tzinfo=UTC)  # nor one before the system existed


class Refuse(Exception):
    """Refuse one message: why, whose it is, and which console alarm it raises."""

    def __init__(self, reason: str, device: str, alarm: str = BAD_MESSAGES) -> None:
        super().__init__(reason)
        self.reason = reason
        self.device = device
        self.alarm = alarm


class Collector:
    """Runs until `close()`: receive, judge and store in batches, then acknowledge."""

    def __init__(
        self,
        log_path: Path,
        *,
        site_dir: Path,
        host: str,
        port: int,
        site: str,
        root: str = "edge",
        username: str | None = None,
        password: str | None = None,
        client_id: str = "console-collector",
        group: str | None = None,
        ca_file: str | None = None,
        rate_per_s: float = RATE_PER_S,
        burst: float = BURST,
        anchorer: Anchorer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.log = CentralLog(log_path)
        self.clock = clock  # the console's time: receive times, and what device times face
        self._anchorer = anchorer  # signs the chains' heads into a file outside, on a schedule
        self.registry = Registry(site_dir, site)
        self.site = site
        self.root = root
        self.received = 0
        self.stored = 0
        self.rejected = 0  # messages refused (their own, over the budget, or by the log)
        self.accepted = 0  # messages judged good (stored, or already stored)
        self.over_budget = 0
        self.lanes: Lanes[Message] = Lanes(rate_per_s, burst)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._listeners: list[Callable[[list[str]], None]] = []
        self._lost_at: datetime | None = self._last_heard()
        self.client = ConsoleClient(
            host,
            port,
            client_id=client_id,
            username=username,
            password=password,
            persistent=True,
            # The session never expires: the broker keeps every event for the console however
            # long it is away (up to the broker's max_queued_messages).
            session_expiry_s=NEVER,
            manual_ack=True,
            ca_file=ca_file,
            on_connect=self._connected,
        )
        # One collector: a plain subscription, which the broker keeps in the persistent
        # session across its own restart. Several: a shared one splits the load, but
        # mosquitto 2.0 does not restore shared subscriptions after a restart (see docs/mqtt.md).
        events = topics.events_filter(root, site)
        self.client.subscribe(
            f"$share/{group}/{events}" if group else events,
            topics.status_filter(root, site),
            topics.occupancy_filter(root, site),
            topics.rooms_view(root, site),  # the rooms service's building view (its status
            handler=self._receive,  # arrives with the devices': `+/status`)
        )
        self._writer = threading.Thread(target=self._write_loop, name="collector", daemon=True)
        log.info(
            "collector %s: %s/%s, claims from %s, budget %.0f/s (burst %.0f) per device",
            client_id,
            root,
            site,
            self.registry.devices_dir,
            rate_per_s,
            burst,
        )

    def __repr__(self) -> str:
        return f"<Collector {self.client.client_id} stored={self.stored} rejected={self.rejected}>"

    def start(self) -> None:
        """Start writing, then connect (messages waiting in the session arrive at once)."""
        self._writer.start()
        self.client.start()

    def close(self) -> None:
        """Stop receiving, store what was received, then close; idempotent."""
        if self._stop.is_set():
            return
        self.client.close()
        self._stop.set()
        if self._writer.is_alive():
            self._writer.join(10)
        self.log.close()

    def on_stored(self, listener: Callable[[list[str]], None]) -> Callable[[], None]:
        """Call `listener` with the ids of each batch's new events once they are committed
        (on the writer's thread; keep it short). Return the way to remove it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def wait_for(self, predicate: Callable[[CentralLog], bool], timeout_s: float) -> bool:
        """Wait until `predicate(log)` holds after some batch; False after `timeout_s`."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.log), timeout_s)

    # -- paho's thread: file the message in its device's lane, nothing more -----------------

    def _receive(self, message: Message) -> None:
        parts = message.topic.split("/", 3)
        device = parts[2] if len(parts) > 3 else UNKNOWN
        if not self.registry.known(device) and device != topics.ROOMS:
            device = UNKNOWN
        if not self.lanes.put(device, message):
            self.client.ack(message)  # over the device's budget: refused, counted, gone

    def _connected(self) -> None:
        now = self.clock()
        if self._lost_at is not None:
            self.lanes.credit((now - self._lost_at).total_seconds())
        self._lost_at = now

    def _last_heard(self) -> datetime | None:
        row = self.log.db.execute("SELECT max(received_at) FROM events").fetchone()
        try:
            return datetime.fromisoformat(row[0]) if row and row[0] else None
        except ValueError:
            return None

    # -- the writer -------------------------------------------------------------------------

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and not len(self.lanes)):
            if self._anchorer is not None:
                self._anchorer.tick(self.log)
            batch = self.lanes.take(BATCH, 0.2, BATCH_WAIT_S)
            over = self.lanes.over_budget()
            if not batch and not over:
                continue
            try:
                stored = self._store(batch, over)
            except Exception:
                # The database itself failed (a bad message is refused alone, never here).
                # Not acknowledged: the broker delivers them again after a reconnect.
                log.exception("storing %d messages failed; they stay unacknowledged", len(batch))
                continue
            for message in batch:
                self.client.ack(message)
            for listener in list(self._listeners):
                listener(stored)
            with self._cond:
                self._cond.notify_all()
            self._lost_at = self.clock()
        if self._anchorer is not None:
            self._anchorer.anchor(self.log)  # the heads as this run leaves them

    def _store(self, batch: list[Message], over: dict[str, int]) -> list[str]:
        now_dt = self.clock()
        now = utc_text(now_dt)
        judged = Judged(now_dt)
        for message in batch:
            self.received += 1
            try:
                self._judge(message, judged)
                self.accepted += 1
            except Refuse as refuse:
                judged.refused.append(
                    Refusal.of(
                        refuse.device, refuse.alarm, refuse.reason, message.topic, message.payload
                    )
                )
        for device, count in over.items():
            self.over_budget += count
            reason = f"{count} messages over the budget of {self.lanes.rate_per_s:.0f}/s"
            judged.refused.append(Refusal(device, BAD_MESSAGES, reason, "", 0, "", count))
        stored = judged.write(self.log, now)
        self.stored += len(stored)
        self.rejected += sum(r.count for r in judged.refused)
        refusals.keep(self.log, judged.refused, now)
        if judged.refused:  # one line a batch, however many: a flood must not flood the log
            first = judged.refused[0]
            log.warning(
                "refused %d messages (from %s: %s%s)",
                sum(r.count for r in judged.refused),
                first.device,
                first.reason,
                ", …" if len(judged.refused) > 1 else "",
            )
        return stored

    def _judge(self, message: Message, judged: Judged) -> None:
        levels = topics.device_levels(message.topic, self.root, self.site)
        if levels is None or len(levels) < 2:
            raise Refuse("not under this site's topics", UNKNOWN)
        device, where, *rest = levels
        if device == topics.ROOMS and not rest:  # never a device's id: the rooms service's
            _rooms(where, message.payload, self.site, judged)
            return
        claims = self.registry.claims(device)
        if claims is None:
            raise Refuse(f"device {device[:40]!r} is not provisioned", UNKNOWN, CLAIM_REFUSED)
        if not message.payload and where in ("status", "occupancy"):
            return  # a retained message cleared: nothing to store
        body = _parse(message.payload, device)
        if not isinstance(body, dict):
            raise Refuse(f"{where} payload is not a JSON object", device)
        if where == "status" and not rest:
            judged.statuses.append((device, message.payload.decode()))
        elif where == "occupancy" and len(rest) == 1:
            _claim(claims.occupancy(rest[0], body), device)
            order = judged.plausible(body.get("ts"))
            ts = str(body["ts"]) if order is None else order
            judged.occupancy.append((device, rest[0], body.get("count") or 0, body, ts))
            if "id" in body:  # an occupancy change is an event of the device's sequence too
                judged.event(body, device)
        elif where == "events" and len(rest) == 1:
            _claim(claims.event(rest[0], body), device)
            judged.event(body, device)
        else:
            raise Refuse("not a status, event or occupancy topic", device)


class Judged:
    """What one batch holds once judged: what to store and what was refused."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self._now_text = utc_text(now)
        self._latest = now + FUTURE
        self.events: list[dict[str, Any]] = []
        self.implausible: dict[str, str] = {}
        self.statuses: list[tuple[str, str]] = []
        self.occupancy: list[tuple[str, str, int, dict[str, Any], str]] = []
        self.rooms: list[tuple[str, str]] = []  # the rooms service's (view | status, body)
        self.refused: list[Refusal] = []

    def event(self, body: dict[str, Any], device: str) -> None:
        """Accept an event for storing, once its id names this device and its seq."""
        try:
            event_id, owner, _ = identity(body)
        except LogError as error:
            raise Refuse(str(error)[:200], device) from None
        if owner != device:
            raise Refuse("event id names another device", device)
        order = self.plausible(body.get("ts"))
        if order is not None:
            self.implausible[event_id] = order
        self.events.append(body)

    def plausible(self, ts: object) -> str | None:
        """Return None if a device's `ts` can order its event, else the time to use instead."""
        now = self._now_text
        if not isinstance(ts, str) or len(ts) > 40:
            return now
        try:
            when = datetime.fromisoformat(ts)
        except ValueError:
            return now
        if when.tzinfo is None or utc_text(when) != ts:
            return now  # not the contract's UTC text: it would sort among the others wrongly
        return now if not EPOCH <= when <= self._latest else None

    def write(self, log: CentralLog, now: str) -> list[str]:
        """Store what was accepted; refuse alone what the database refuses. Return the ids of
        the events stored (duplicates left out)."""
        for device, status in self.statuses:
            self._alone(device, lambda: log.set_status(device, status, now))  # noqa: B023
        for device, zone, count, body, ts in self.occupancy:
            occupied = bool(body.get("occupied"))
            self._alone(device, lambda: log.set_occupancy(device, zone, count, occupied, ts))  # noqa: B023
        for what, kept in self.rooms:
            self._alone(topics.ROOMS, lambda: log.set_rooms(what, kept, now))  # noqa: B023
        events = self.events
        try:
            return log.append(events, now, self.implausible)
        except Exception as error:
            if _database_wide(error):
                raise
        stored: list[str] = []
        for event in events:  # one of them the log refuses: store the others one by one
            try:
                stored += log.append([event], now, self.implausible)
            except Exception as error:
                if _database_wide(error):
                    raise
                self._refused_by_log(str(event.get("id", "")).rsplit(":", 1)[0], error)
        return stored

    def _alone(self, device: str, write: Callable[[], None]) -> None:
        """Write one status or occupancy (called at once); refuse it if the log refuses it."""
        try:
            write()
        except Exception as error:
            if _database_wide(error):
                raise
            self._refused_by_log(device, error)

    def _refused_by_log(self, device: str, error: Exception) -> None:
        reason = f"the log refused it: {type(error).__name__}"
        self.refused.append(Refusal(device, BAD_MESSAGES, reason, "", 0, ""))


def _parse(payload: bytes, device: str) -> Any:
    try:
        return parse(payload)
    except Refused as refused:
        raise Refuse(str(refused), device) from None


def _rooms(where: str, payload: bytes, site: str, judged: Judged) -> None:
    """Keep the rooms service's view or status once judged (console.rooms_view)."""
    if not payload:
        return  # a retained message cleared: the last one kept stays
    try:
        if where == rooms_view.VIEW:
            judged.rooms.append((where, rooms_view.judge_view(payload, site)))
        elif where == rooms_view.STATUS:
            judged.rooms.append((where, rooms_view.judge_status(payload)))
        else:
            raise Refuse("not a rooms service topic the console reads", topics.ROOMS)
    except rooms_view.ViewRefused as refused:
        raise Refuse(str(refused), topics.ROOMS) from None


def _claim(problem: str | None, device: str) -> None:
    if problem is not None:
        raise Refuse(problem, device, CLAIM_REFUSED)


def _database_wide(error: BaseException) -> bool:
    """True for a failure of the database itself (full, locked, corrupt), not of one row."""
    return isinstance(error, sqlite3.OperationalError | MemoryError) or (
        type(error) is sqlite3.DatabaseError
    )
