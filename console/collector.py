"""The collector: every device's events, status and occupancy into the central log.

Events arrive on an MQTT 5 shared subscription (`$share/{group}/…`), so several collectors
split the load; each message is acknowledged to the broker only after the batch holding it
is committed, and the session is persistent, so neither a collector restart nor a broker
outage loses an event. Status and occupancy are retained and idempotent: every collector
takes them all (the broker does not send retained messages to shared subscriptions).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from console.log import CentralLog, LogError, identity
from console.mqtt import ConsoleClient, Message
from edge.core.clock import utc_text

log = logging.getLogger(__name__)

BATCH = 500
NEVER = 0xFFFFFFFF  # MQTT 5: a session expiry interval that never ends
BATCH_WAIT_S = 0.02


class Collector:
    """Runs until `close()`: receive, store in batches, then acknowledge."""

    def __init__(
        self,
        log_path: Path,
        *,
        host: str,
        port: int,
        site: str,
        root: str = "edge",
        username: str | None = None,
        password: str | None = None,
        client_id: str = "console-collector",
        group: str | None = None,
        ca_file: str | None = None,
    ) -> None:
        self.log = CentralLog(log_path)
        self.site = site
        self.root = root
        self.received = 0
        self.stored = 0
        self.rejected = 0
        self._queue: queue.Queue[Message] = queue.Queue()
        self._cond = threading.Condition()
        self._stop = threading.Event()
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
        )
        base = f"{root}/{site}"
        # One collector: a plain subscription, which the broker keeps in the persistent
        # session across its own restart. Several: a shared one splits the load, but
        # mosquitto 2.0 does not restore shared subscriptions after a restart (see README).
        events = f"{base}/+/events/#"
        self.client.subscribe(
            f"$share/{group}/{events}" if group else events,
            f"{base}/+/status",
            f"{base}/+/occupancy/#",
            handler=self._queue.put,
        )
        self._writer = threading.Thread(target=self._write_loop, name="collector", daemon=True)

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

    def wait_for(self, predicate: Callable[[CentralLog], bool], timeout_s: float) -> bool:
        """Wait until `predicate(log)` holds after some batch; False after `timeout_s`."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.log), timeout_s)

    def _write_loop(self) -> None:
        while not (self._stop.is_set() and self._queue.empty()):
            try:
                first = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            batch = [first]
            deadline = time.monotonic() + BATCH_WAIT_S
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get(timeout=max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    break
            try:
                self._store(batch)
            except Exception:
                # The database itself failed (not one bad message: those are rejected one by
                # one). Not acknowledged: the broker delivers them again after a reconnect.
                log.exception("storing %d messages failed; they stay unacknowledged", len(batch))
                continue
            for message in batch:
                self.client.ack(message)
            with self._cond:
                self._cond.notify_all()

    def _store(self, batch: list[Message]) -> None:
        now = utc_text(datetime.now(UTC))
        events = []
        for message in batch:
            self.received += 1
            parts = message.topic.split("/")
            if len(parts) < 4 or "/".join(parts[:2]) != f"{self.root}/{self.site}":
                self._reject(message, "not under this site's topics")
                continue
            device = parts[2]
            try:
                body = json.loads(message.payload) if message.payload else None
            except ValueError:
                self._reject(message, "not JSON")
                continue
            if parts[3] == "status":
                if body is not None:
                    self.log.set_status(device, message.payload.decode(), now)
            elif parts[3] == "occupancy" and len(parts) == 5 and isinstance(body, dict):
                count = body.get("count") or 0
                if not isinstance(count, int) or isinstance(count, bool):
                    self._reject(message, "occupancy count is not a whole number")
                    continue
                self.log.set_occupancy(
                    device, parts[4], count, bool(body.get("occupied")), str(body.get("ts", ""))
                )
                # An occupancy change is an event of the device's sequence too (retained).
                if str(body.get("id", "")).rsplit(":", 1)[0] == device:
                    events.append(body)
            elif parts[3] == "events" and isinstance(body, dict):
                if str(body.get("id", "")).rsplit(":", 1)[0] != device:
                    self._reject(message, "event id names another device")
                    continue
                events.append(body)
            else:
                self._reject(message, "unexpected topic or payload")
        good = []
        for event in events:
            try:
                identity(event)
                good.append(event)
            except LogError as error:
                self.rejected += 1
                log.warning("rejected an event: %s", error)
        try:
            self.stored += len(self.log.append(good, now))
        except LogError:
            # One event the checks let through but the log refuses: store the rest one by one.
            for event in good:
                try:
                    self.stored += len(self.log.append([event], now))
                except LogError as error:
                    self.rejected += 1
                    log.warning("rejected an event: %s", error)

    def _reject(self, message: Message, why: str) -> None:
        self.rejected += 1
        log.warning("rejected a message on %s: %s", message.topic, why)
