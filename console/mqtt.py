"""The console's MQTT client: the only console module that imports paho.

* MQTT 5, callback API version 2, paho's own reconnect; a persistent session (clean start
  off, session expiry) so messages published while the console is away wait for it.
* Manual acknowledgement: a QoS 1 message is acknowledged only when the handler says it is
  safely stored (`ack`), so a console killed mid-batch gets it again from the broker.
* Every callback catches everything: an exception there would silently kill paho's thread;
  a message that cannot even be handed over is acknowledged, never left holding the window.
* Command replies are kept only for a request that waits for them (bounded in number and
  size); any other message on the reply topics is dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.errors import EdgeError
from edge.link.mqtt import no_nagle

log = logging.getLogger(__name__)


class ConsoleLinkError(EdgeError, ConnectionError):
    """The broker cannot be reached or refused us; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Message:
    """One received message; `ack()` it once it is safely stored."""

    topic: str
    payload: bytes
    retained: bool
    mid: int
    qos: int
    correlation: bytes | None = None
    connection: int = 0  # which connection delivered it (its `mid` means nothing in another)


Handler = Callable[[Message], None]

MAX_WAITING: Final = 256  # requests waiting for a reply at once
MAX_REPLY: Final = 64 * 1024  # bytes kept of one reply
MAX_CORRELATION: Final = 64  # bytes of correlation data we ever send or match


class ConsoleClient:
    """A console (or simulator) connection to the broker."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        client_id: str,
        username: str | None = None,
        password: str | None = None,
        persistent: bool = True,
        session_expiry_s: int = 7 * 24 * 3600,
        manual_ack: bool = False,
        ca_file: str | None = None,
        on_connect: Callable[[], None] | None = None,
    ) -> None:
        self.host = host
        self._on_connected = on_connect
        self.port = port
        self.client_id = client_id
        self._subscriptions: list[str] = []
        self._handler: Handler | None = None
        self._connected = threading.Event()
        self._refused: str | None = None
        self._replies: dict[bytes, bytes] = {}
        self._awaited: set[bytes] = set()
        self._reply_cond = threading.Condition()
        self._reply_filter: str | None = None
        self._persistent = persistent
        self._manual_ack = manual_ack
        self._session_expiry_s = session_expiry_s
        self._connection = 0  # counts successful connections; messages carry theirs
        # Held while an acknowledgement checks its connection and is queued, and while a new
        # connection is counted: an ack meant for the last connection never goes on the next.
        self._ack_lock = threading.Lock()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5,
            manual_ack=manual_ack,
        )
        if username:
            self.client.username_pw_set(username, password)
        if ca_file:  # TLS to the broker, trusting the site's CA (edge-provision site init --ca)
            self.client.tls_set(ca_certs=ca_file)
        self.client.on_socket_open = no_nagle
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self._pending_subs: set[int] = set()
        self._subscribed = threading.Event()
        self.client.reconnect_delay_set(1, 5)
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)

    def __repr__(self) -> str:
        state = "connected" if self._connected.is_set() else "disconnected"
        return f"<ConsoleClient {self.client_id} {self.host}:{self.port} {state}>"

    @property
    def connected(self) -> bool:
        """True while the broker connection is up."""
        return self._connected.is_set()

    def subscribe(self, *topics: str, handler: Handler) -> None:
        """Receive `topics` (QoS 1; `$share/group/…` splits them between consoles)."""
        self._subscriptions += topics
        self._handler = handler

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect and subscribe; raise ConsoleLinkError if the broker refuses or is absent."""
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        if self._persistent:
            props.SessionExpiryInterval = self._session_expiry_s
        try:
            self.client.connect(
                self.host,
                self.port,
                keepalive=10,
                clean_start=not self._persistent,
                properties=props,
            )
        except OSError as exc:
            raise ConsoleLinkError(
                f"cannot reach the broker at {self.host}:{self.port}: {exc}; is it running?"
            ) from None
        self.client.loop_start()
        # Connected *and* subscribed: a close() right after start() must not cut a SUBSCRIBE
        # off, or the persistent session would lack that subscription.
        if not (self._connected.wait(timeout_s) and self._subscribed.wait(timeout_s)):
            self.client.loop_stop()
            raise ConsoleLinkError(
                f"broker {self.host}:{self.port} did not accept {self.client_id}: "
                f"{self._refused or 'no answer'}; check the account and its password"
            )

    def ack(self, message: Message) -> None:
        """Tell the broker a QoS 1 message is safely stored (manual acknowledgement).

        Not if a later connection has begun: the broker sends every message left
        unacknowledged again on it, under the same packet id, and may already have reused
        that id for another message once the copy was acknowledged.
        """
        if not (self._manual_ack and message.qos):
            return
        with self._ack_lock:  # paho's ack only queues the packet: held for no network wait
            if message.connection == self._connection:
                self.client.ack(message.mid, message.qos)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> None:
        """Publish and wait (up to 10 s) for the broker's acknowledgement."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise ConsoleLinkError(f"could not publish to {topic}: {mqtt.error_string(info.rc)}")

    def listen_for_replies(self, topic_filter: str) -> None:
        """Receive command replies on `topic_filter` (e.g. edge/site/+/reply/console)."""
        self._reply_filter = topic_filter
        if self.connected:
            self.client.subscribe(topic_filter, qos=1)

    def request(
        self, topic: str, payload: bytes, response_topic: str, correlation: bytes, timeout_s: float
    ) -> bytes | None:
        """Publish with an MQTT 5 response topic; return the reply, or None on timeout."""
        if len(correlation) > MAX_CORRELATION:
            raise ValueError(f"correlation data longer than {MAX_CORRELATION} bytes")
        with self._reply_cond:
            if len(self._awaited) >= MAX_WAITING:
                raise ConsoleLinkError(
                    f"{MAX_WAITING} requests already wait for replies; try again shortly"
                )
            self._awaited.add(correlation)
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.ResponseTopic = response_topic
        props.CorrelationData = correlation
        try:
            info = self.client.publish(topic, payload, qos=1, properties=props)
            info.wait_for_publish(10)
            deadline = time.monotonic() + timeout_s
            with self._reply_cond:
                while correlation not in self._replies:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return None
                    self._reply_cond.wait(remaining)
                return self._replies.pop(correlation)
        finally:
            with self._reply_cond:
                self._awaited.discard(correlation)
                self._replies.pop(correlation, None)

    def close(self) -> None:
        """Disconnect (the persistent session stays on the broker); idempotent."""
        self._connected.clear()  # a deliberate goodbye, not a lost broker
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho callbacks: never raise ------------------------------------------------------

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        try:
            if reason.is_failure:
                self._refused = str(reason)
                return
            with self._ack_lock:
                self._connection += 1
            topics = [*self._subscriptions, *([self._reply_filter] if self._reply_filter else [])]
            self._subscribed.clear()
            mids = (client.subscribe(topic, qos=1)[1] for topic in topics)
            self._pending_subs = {mid for mid in mids if mid is not None}
            if not self._pending_subs:
                self._subscribed.set()
            log.info("console %s connected to %s:%s", self.client_id, self.host, self.port)
            self._connected.set()
            if self._on_connected is not None:
                self._on_connected()
        except Exception:
            log.exception("on_connect failed")

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, *args: Any) -> None:
        try:
            self._pending_subs.discard(mid)
            if not self._pending_subs:
                self._subscribed.set()
        except Exception:
            log.exception("on_subscribe failed")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, *args: Any) -> None:
        try:
            if self._connected.is_set():
                log.warning("console %s lost the broker; paho reconnects", self.client_id)
            self._connected.clear()
        except Exception:
            log.exception("on_disconnect failed")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            props = getattr(message, "properties", None)
            correlation = getattr(props, "CorrelationData", None) if props else None
            if self._reply_filter and mqtt.topic_matches_sub(self._reply_filter, message.topic):
                key = bytes(correlation) if isinstance(correlation, bytes | bytearray) else None
                if key is not None and len(message.payload) <= MAX_REPLY:
                    with self._reply_cond:
                        if key in self._awaited:  # nobody waits for the others
                            self._replies[key] = bytes(message.payload)
                            self._reply_cond.notify_all()
                if self._manual_ack and message.qos:
                    client.ack(message.mid, message.qos)
                return
            if self._handler is not None:
                self._handler(
                    Message(
                        message.topic,
                        bytes(message.payload),
                        bool(message.retain),
                        message.mid,
                        message.qos,
                        None if correlation is None else bytes(correlation),
                        self._connection,
                    )
                )
        except Exception:
            log.exception("handling a message failed; acknowledged and dropped")
            if self._manual_ack and message.qos:
                try:
                    client.ack(message.mid, message.qos)
                except Exception:
                    log.exception("acknowledging a dropped message failed")
