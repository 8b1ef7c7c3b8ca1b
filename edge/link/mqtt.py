"""The MQTT link: the only module that imports paho. It drains the outbox and takes commands.

* One paho client (MQTT 5, callback API version 2), paho's own reconnect with backoff, a
  retained birth `status` on every connect and a retained last will `offline`.
* A drain thread publishes the outbox in seq order with QoS 1, at most `window` in flight,
  and deletes an event only after its PUBACK (a refused PUBACK, e.g. 0x87 not authorised,
  keeps it). After a reconnect or a restart it starts again from the oldest unacknowledged
  event: consumers de-duplicate by `id`.
* A crossing event also goes out on `crossings/{zone}` for the zones of its door (see
  `edge.link.crossings`); it is deleted once every one of its publishes is acknowledged.
  The link subscribes to the crossings of the zones it serves, without its own (no local).
* The drain thread also keeps this device's positions digests retained on `positions/{zone}`
  (`edge.link.positions`), and the link subscribes to every device's digest of those zones.
* Inbound commands, credential snapshots and peers' crossings are handed to the agent's loop
  untouched, their MQTT 5 properties validated first. Every paho callback catches
  everything: an exception there would silently kill paho's network thread.

It runs past 500 lines because it is the one module that may import paho: the operators'
`publish_and_watch` lives here beside the agent's link.
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlite_utils import Database

from edge.core.clock import utc_text
from edge.errors import ClosedError, EdgeError
from edge.link import topics
from edge.link.crossings import MAX_CROSSING_BYTES, outgoing
from edge.link.inflight import Inflight
from edge.link.messages import InboundMessage, safe_correlation, safe_response_topic
from edge.link.payloads import MAX_COMMAND_BYTES
from edge.link.positions import HELLO, MAX_DIGEST_BYTES, Digests
from edge.store import outbox
from edge.store.connection import connect, write_transaction
from firmware_config.model import MqttConfig

log = logging.getLogger(__name__)
MAX_INBOUND_BYTES = 1_048_576 * 64  # a credential snapshot; a command is cut at its own limit

Status = Callable[[Database, str], dict[str, Any]]


def no_nagle(client: mqtt.Client, userdata: Any, sock: Any) -> None:
    """Send each packet at once (paho's `on_socket_open`): set TCP_NODELAY on the socket.

    Without it a small publish waits for the broker's delayed ACK of the one before (about
    40 ms on Linux), once per hop: a sensor's change took 88 ms to reach the floor view
    instead of 5 (bench/rooms_view.py).
    """
    with contextlib.suppress(OSError, AttributeError):  # not a TCP socket: nothing to tune
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class LinkError(EdgeError, OSError):
    """The link cannot be set up (a TLS or password file is missing or unreadable)."""


class MqttLink:
    """One device's connection to the broker."""

    def __init__(
        self,
        config: MqttConfig,
        *,
        site: str,
        device: str,
        store_path: Path,
        status: Status,
        on_message: Callable[[InboundMessage], None],
        window: int = 100,
        status_every_s: float = 30.0,
        crossing_zones: frozenset[str] = frozenset(),
    ) -> None:
        self.config = config
        self.site, self.device = site, device
        self.prefix = topics.device_prefix(config.root, site, device)
        self._cmd_prefix = topics.command_prefix(config.root, site, device)
        self._reply_prefix = topics.reply_prefix(config.root, site, device)
        self.store_path = store_path
        self.status = status
        self.on_message = on_message
        self.window = window
        self.status_every_s = status_every_s
        self.crossing_zones = crossing_zones
        self.digests = Digests(config.root, site, device, crossing_zones)
        self.connected = threading.Event()
        self.published = 0
        self.acknowledged = 0
        self._acks: queue.SimpleQueue[tuple[int, bool, str]] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._reset = threading.Event()
        self._status_due = threading.Event()
        # Drain-thread state: acknowledged seqs not yet deleted, mid -> seq in flight, the
        # last seq handed to paho, when the next status is due.
        self._done: list[int] = []
        self._inflight = Inflight()
        self._cursor = 0
        self._next_status = 0.0
        self._closing = threading.Event()
        self._closed = False
        self._was_up: bool | None = None
        self._thread: threading.Thread | None = None
        self.client = self._client()

    def __repr__(self) -> str:
        state = "up" if self.connected.is_set() else "down"
        return (
            f"<MqttLink {self.prefix} {state} {self.config.host}:{self.config.port} "
            f"published={self.published} acked={self.acknowledged}>"
        )

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Connect in the background and start draining the outbox."""
        if self._closed:
            raise ClosedError(f"MQTT link of {self.device} is closed")
        self.client.connect_async(
            self.config.host, self.config.port, keepalive=self.config.keepalive_s, clean_start=True
        )
        self.client.loop_start()
        self._thread = threading.Thread(target=self._drain, name=f"link-{self.device}", daemon=True)
        self._thread.start()

    def request_status(self) -> None:
        """Publish a fresh retained status soon (any thread)."""
        self._status_due.set()
        self._wake.set()

    def wake(self) -> None:
        """Tell the drain thread that new events are in the outbox (any thread)."""
        self._wake.set()

    def close(self, timeout_s: float = 5.0) -> None:
        """Publish `offline`, disconnect, stop the threads; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._closing.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
        if self.connected.is_set():
            info = self.client.publish(
                topics.status(self.config.root, self.site, self.device),
                self._offline(),
                qos=1,
                retain=True,
            )
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(timeout_s)
        self.client.disconnect()
        self.client.loop_stop()

    def reply(self, topic: str, correlation: bytes | None, payload: bytes) -> None:
        """Publish a command reply to a validated response topic (any thread)."""
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if correlation is not None:
            props.CorrelationData = correlation
        self.client.publish(topic, payload, qos=1, properties=props)

    def resubscribe_credentials(self) -> None:
        """Ask the broker for the retained credential snapshot and its delta again."""
        full = topics.credentials(self.config.root, self.site, self.device)
        delta = topics.credentials_delta(self.config.root, self.site, self.device)
        self.client.unsubscribe([full, delta])
        # The snapshot first: the delta is built on it.
        self.client.subscribe([(full, 1), (delta, 1)])

    # -- paho ------------------------------------------------------------------------------

    def _client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.device, protocol=mqtt.MQTTv5
        )
        if self.config.username:
            password = None
            if self.config.password_file is not None:
                try:
                    password = self.config.password_file.read_text().strip()
                except OSError as exc:
                    raise LinkError(
                        f"MQTT password file {self.config.password_file}: {exc}"
                    ) from None
            client.username_pw_set(self.config.username, password)
        if self.config.tls is not None:
            tls = self.config.tls
            try:
                client.tls_set(
                    ca_certs=str(tls.ca_file),
                    certfile=str(tls.cert_file) if tls.cert_file else None,
                    keyfile=str(tls.key_file) if tls.key_file else None,
                    tls_version=ssl.PROTOCOL_TLS_CLIENT,
                )
            except (OSError, ssl.SSLError) as exc:
                raise LinkError(f"MQTT TLS files: {exc}") from None
        client.will_set(
            topics.status(self.config.root, self.site, self.device),
            self._offline(),
            qos=1,
            retain=True,
        )
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        client.max_inflight_messages_set(self.window)
        client.max_queued_messages_set(0)
        client.on_socket_open = no_nagle
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        return client

    def _offline(self) -> bytes:
        return json.dumps(
            {"v": 1, "device": self.device, "site": self.site, "state": "offline"}
        ).encode()

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        try:
            if reason.is_failure:
                self._log_state(False, f"broker refused the connection: {reason}")
                return
            # Retain-as-published: MQTT 5 clears the retain flag of a message that reaches an
            # existing subscription, so without it a command published retained while the
            # agent is connected would look live. With it the verifier sees every retained one.
            client.subscribe(
                topics.commands_filter(self.config.root, self.site, self.device),
                options=SubscribeOptions(qos=1, retainAsPublished=True),
            )
            # One SUBSCRIBE, the snapshot first: its retained message comes before the delta's.
            client.subscribe(
                [
                    (topics.credentials(self.config.root, self.site, self.device), 1),
                    (topics.credentials_delta(self.config.root, self.site, self.device), 1),
                ]
            )
            # No local: our own crossings and live digests do not come back. mosquitto still
            # hands a new subscription our own retained digest, which a device that lost its
            # store learns from; it arrives before the digest the drain thread sends next.
            for zone in sorted(self.crossing_zones):
                for shared in (topics.crossings_filter, topics.positions_filter):
                    client.subscribe(
                        shared(self.config.root, self.site, zone),
                        options=SubscribeOptions(qos=1, noLocal=True),
                    )
            self.connected.set()
            self._reset.set()
            self._wake.set()
            self._log_state(True, f"connected to {self.config.host}:{self.config.port}")
        except Exception:
            log.exception("MQTT on_connect failed")

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        try:
            self.connected.clear()
            if not self._closing.is_set():
                self._log_state(False, f"lost the broker ({reason}); events wait in the outbox")
        except Exception:
            log.exception("MQTT on_disconnect failed")

    def _on_publish(
        self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, props: Any
    ) -> None:
        # Runs under paho's message lock: only hand the result over, never wait here.
        try:
            self._acks.put((mid, not reason.is_failure, str(reason)))
            self._wake.set()
        except Exception:
            log.exception("MQTT on_publish failed")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = "?"
        try:
            # paho decodes the topic on each access and raises on invalid UTF-8.
            topic = bytes(message._topic).decode("utf-8", "replace")
            props = getattr(message, "properties", None)
            # Only the first bytes past a command's limit are kept: the verifier refuses it
            # as too large, and a queue of them holds no memory to speak of.
            if topic.startswith(self._cmd_prefix):
                limit = MAX_COMMAND_BYTES + 1
            elif "/crossings/" in topic:
                limit = MAX_CROSSING_BYTES + 1
            elif "/positions/" in topic:
                limit = MAX_DIGEST_BYTES + 1
                if not message.retain and HELLO in (getattr(props, "UserProperty", None) or ()):
                    # A peer is back on the broker: what it missed of ours goes out early.
                    self.digests.soon()
                    self._wake.set()
            else:
                limit = MAX_INBOUND_BYTES
            self.on_message(
                InboundMessage(
                    topic=topic,
                    payload=bytes(message.payload[:limit]),
                    retained=bool(message.retain),
                    response_topic=safe_response_topic(
                        getattr(props, "ResponseTopic", None), self._reply_prefix
                    ),
                    correlation=safe_correlation(getattr(props, "CorrelationData", None)),
                )
            )
        except Exception:
            log.exception("MQTT message on %r could not be queued", topic[:200])

    def _log_state(self, up: bool, detail: str) -> None:
        if self._was_up is None or self._was_up != up:
            (log.info if up else log.warning)("MQTT link %s: %s", "up" if up else "down", detail)
        self._was_up = up

    # -- the drain thread ------------------------------------------------------------------

    def _drain(self) -> None:
        db: Database | None = None
        failing = False
        while not self._closing.is_set():
            try:
                if db is None:
                    db = self._open_store()
                self._drain_step(db)
                if failing:
                    log.warning("MQTT drain works again")
                failing = False
            except Exception:
                # Never give up: a locked or full store, a broken status builder. Events stay
                # in the outbox; try again in a second with a fresh connection.
                if not failing:
                    log.exception("MQTT drain failed; events stay in the outbox, retrying")
                failing = True
                self._inflight.clear()
                self._cursor = 0
                if db is not None:
                    db.close()
                    db = None
                self._closing.wait(1.0)
        if db is not None:
            with contextlib.suppress(Exception):
                self._take_acks(db, self._inflight, flush=True)
            db.close()

    def _open_store(self) -> Database:
        # Deleting delivered events need not survive a power cut: a lost delete only means
        # the event is sent again, and consumers de-duplicate by id. No fsync per ack batch.
        return connect(self.store_path, synchronous="NORMAL")

    def _drain_step(self, db: Database) -> None:
        """Publish what the window allows and take the acknowledgements (drain thread)."""
        inflight = self._inflight
        # Clear first, then look: a wake-up that arrives while we work is not lost.
        self._wake.clear()
        if self._reset.is_set():
            self._reset.clear()
            inflight.clear()
            self._cursor = 0
            self._next_status = 0.0
            self.digests.reset()
        self._take_acks(db, inflight)
        if not self.connected.is_set():
            self._wake.wait(0.5)
            return
        now = time.monotonic()
        if now >= self._next_status or self._status_due.is_set():
            self._status_due.clear()
            self._publish_status(db)
            self._next_status = now + self.status_every_s
        hello = self.digests.greeting
        for zone, topic, body in self.digests.due(db, now, utc_text(datetime.now(UTC))):
            self.digests.greeting = False
            props = _hello() if hello else None
            info = self.client.publish(topic, body, qos=1, retain=True, properties=props)
            self.digests.sent(zone, info.mid, info.rc == mqtt.MQTT_ERR_SUCCESS)
        free = self.window - len(inflight)
        events = outbox.pending(db, limit=free, after=self._cursor) if free > 0 else []
        for event in events:
            infos = self._publish_event(event)
            for info in infos:
                if info.rc == mqtt.MQTT_ERR_SUCCESS:
                    inflight.add(info.mid, event.seq)
            if any(info.rc != mqtt.MQTT_ERR_SUCCESS for info in infos):
                inflight.refuse(event.seq)
                break  # not connected any more: start again from the oldest on reconnect
            self._cursor = event.seq
            self.published += 1
        if not events:
            self._take_acks(db, inflight, flush=free > 0)  # idle: delete what is done
            self._wake.wait(0.2)

    def _publish_event(self, event: outbox.OutboxEvent) -> list[mqtt.MQTTMessageInfo]:
        root = self.config.root
        if event.kind == "occupancy":
            topic = topics.occupancy(root, self.site, self.device, event.payload["zone"])
            return [self.client.publish(topic, event.text, qos=1, retain=True)]
        topic = topics.event(root, self.site, self.device, event.kind)
        first = self.client.publish(topic, event.text, qos=1)
        shared = outgoing(event, root, self.site, self.device, self.crossing_zones)
        return [first, *(self.client.publish(t, body, qos=1) for t, body in shared)]

    def _take_acks(self, db: Database, inflight: Inflight, flush: bool = False) -> None:
        done = self._done
        while True:
            try:
                mid, ok, reason = self._acks.get_nowait()
            except queue.Empty:
                break
            if self.digests.acked(mid, ok, reason):
                continue
            done_event = inflight.ack(mid, ok)
            if done_event is None:
                continue  # a status, a reply, one from before a reconnect, or a part of an event
            seq, ok = done_event
            if ok:
                done.append(seq)
            else:
                log.error("broker refused event seq %d (%s); it stays in the outbox", seq, reason)
        # Delete in batches: one transaction per quarter window, or when the link goes idle.
        if done and (flush or len(done) >= max(1, self.window // 4)):
            with write_transaction(db):
                outbox.acknowledge(db, done)
            self.acknowledged += len(done)
            done.clear()

    def _publish_status(self, db: Database) -> None:
        body = self.status(db, "online")
        self.client.publish(
            topics.status(self.config.root, self.site, self.device),
            json.dumps(body),
            qos=1,
            retain=True,
        )


def _hello() -> Properties:
    """Return the properties of a device's first digests after a connect."""
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.UserProperty = [HELLO]
    return props


PUBLISH_WAIT_S = 30.0
"""How long publish_and_watch waits for the broker's login answer and each acknowledgement."""


PUBLISH_WINDOW = 100
"""Messages publish_and_watch keeps in flight: a site's publish is not one round trip per
device, and its payloads are not all copied into paho's queue at once."""


def _publish_acknowledged(client: mqtt.Client, messages: list[tuple[str, bytes]]) -> None:
    """Publish retained at QoS 1, in order, and wait for the broker to acknowledge each, or
    raise."""
    pending: deque[tuple[str, mqtt.MQTTMessageInfo]] = deque()
    for topic, payload in messages:
        if len(pending) >= PUBLISH_WINDOW:
            _acknowledged(*pending.popleft())
        pending.append((topic, client.publish(topic, payload, qos=1, retain=True)))
    while pending:
        _acknowledged(*pending.popleft())


def _acknowledged(topic: str, info: mqtt.MQTTMessageInfo) -> None:
    try:
        info.wait_for_publish(PUBLISH_WAIT_S)
    except (RuntimeError, ValueError) as error:  # paho's: not queued, or failed
        raise LinkError(f"could not publish to {topic}: {error}") from None
    if info.rc != mqtt.MQTT_ERR_SUCCESS or not info.is_published():
        raise LinkError(
            f"could not publish to {topic}: the broker did not acknowledge it within "
            f"{PUBLISH_WAIT_S:g} s ({mqtt.error_string(info.rc)})"
        )


def publish_and_watch(
    config: MqttConfig,
    client_id: str,
    messages: list[tuple[str, bytes]],
    watch: str,
    done: Callable[[dict[str, dict[str, Any]]], bool],
    timeout_s: float,
) -> dict[str, dict[str, Any]]:
    """Publish retained QoS 1 messages, then collect JSON on `watch` until `done` or timeout.

    For operators' tools (provisioning): they meet the broker only through this module.
    Returns the last payload seen per topic.
    """
    seen: dict[str, dict[str, Any]] = {}
    lock = threading.Condition()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if config.username:
        password = config.password_file.read_text().strip() if config.password_file else None
        client.username_pw_set(config.username, password)
    if config.tls is not None:
        client.tls_set(ca_certs=str(config.tls.ca_file))

    def on_message(c: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        # What a device sends is not trusted: anything but a JSON object is seen as
        # "unreadable" here, on paho's thread, where an exception would silently stop it.
        try:
            body = json.loads(message.payload)
        except (ValueError, RecursionError):  # RecursionError: nested past Python's limit
            body = None
        if not isinstance(body, dict):
            body = {"state": "unreadable"}
        with lock:
            seen[message.topic] = body
            lock.notify_all()

    connack: list[bool] = []  # whether the broker accepted the connection, once it answers

    def on_connect(c: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        with lock:
            connack.append(not reason.is_failure)
            lock.notify_all()

    client.max_inflight_messages_set(PUBLISH_WINDOW)
    client.on_socket_open = no_nagle
    client.on_message = on_message
    client.on_connect = on_connect
    client.connect(config.host, config.port, keepalive=config.keepalive_s)
    client.loop_start()
    try:
        # A refused login (a wrong password, an account the broker does not know) is named
        # at once, not found out as a publish that never completes.
        with lock:
            if not lock.wait_for(lambda: bool(connack), PUBLISH_WAIT_S) or not connack[0]:
                answered = "refused the login" if connack else "did not answer"
                raise LinkError(
                    f"the broker at {config.host}:{config.port} {answered} as "
                    f"{config.username or '(no user)'}; check the account and its password"
                )
        client.subscribe(watch, qos=1)
        _publish_acknowledged(client, messages)
        deadline = time.monotonic() + timeout_s
        with lock:
            while not done(seen):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not lock.wait(remaining):
                    break
        return dict(seen)
    finally:
        client.loop_stop()
        client.disconnect()
