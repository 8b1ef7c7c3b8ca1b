"""The rooms service's MQTT link: the only rooms module that imports paho.

* MQTT 5, callback API version 2, paho's own reconnect backoff (1 s to 30 s); a clean session:
  everything the service reads is retained (status, occupancy) or only matters live
  (access crossings, door changes).
* The service's availability is retained on `{root}/{site}/rooms/status`: `online` on every
  connect, `offline` as the last will and on a deliberate close.
* Subscribes to every device's status, occupancy, access and door events, and Home
  Assistant's birth topic `{prefix}/status` when discovery is on.
* Callbacks only put on the service's `Inbox`, each item stamped with the service's clock as
  it arrives; a payload over the feed's limit is cut there (only its topic is queued). Every
  callback catches everything (an exception there would silently kill paho's thread) and
  counts it, logging the first.
* `close` never raises: a link already dropped cannot say `offline`, its last will does.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.core.clock import Clock
from edge.errors import EdgeError
from edge.link import topics
from edge.link.mqtt import no_nagle
from rooms.config import ServiceConfig
from rooms.inbox import MAX_PAYLOAD_BYTES, Inbound, Inbox, LinkState

log = logging.getLogger(__name__)

ONLINE: Final = "online"
OFFLINE: Final = "offline"
CLOSE_WAIT_S: Final = 5.0


class RoomsLinkError(EdgeError, ConnectionError):
    """The broker cannot be reached or refused the service's account."""


def subscriptions(config: ServiceConfig) -> list[str]:
    """Return the filters the service reads: the devices' topics and HA's birth message."""
    root, site = config.mqtt.root, config.site
    wanted = [
        topics.status_filter(root, site),
        topics.occupancy_filter(root, site),
        topics.event_filter(root, site, "access"),
        topics.event_filter(root, site, "door"),
    ]
    if config.homeassistant.enabled:
        wanted.append(f"{config.homeassistant.prefix}/status")
    return wanted


class RoomsLink:
    """The service's connection to the site broker, with its own account."""

    def __init__(
        self,
        config: ServiceConfig,
        password: str,
        inbox: Inbox,
        *,
        clock: Clock,
        client_id: str | None = None,
    ) -> None:
        settings = config.mqtt
        self._clock = clock
        self.host, self.port = settings.host, settings.port
        self.client_id = client_id or settings.username
        self._inbox = inbox
        self._keepalive = settings.keepalive_s
        self._status = topics.rooms_status(settings.root, config.site)
        self._filters = subscriptions(config)
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self._subscribe_mid: int | None = None
        self._refused: str | None = None
        self._closed = False
        self.callback_errors = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(settings.username, password)
        self.client.will_set(self._status, OFFLINE, qos=1, retain=True)
        self.client.reconnect_delay_set(1, 30)
        self.client.max_queued_messages_set(0)
        self.client.on_socket_open = no_nagle
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"<RoomsLink {self.client_id} {self.host}:{self.port} {state}>"

    @property
    def connected(self) -> bool:
        """True while the broker connection is up."""
        return self._connected.is_set()

    def start(self, timeout_s: float = 10.0) -> None:
        """Connect; raise RoomsLinkError if the broker is absent or refuses the account."""
        if self._closed:
            raise RoomsLinkError("the rooms link is closed; build a new one")
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0
        try:
            self.client.connect(
                self.host, self.port, keepalive=self._keepalive, clean_start=True, properties=props
            )
        except OSError as exc:
            raise RoomsLinkError(
                f"cannot reach the broker at {self.host}:{self.port}: {exc}; is it running?"
            ) from None
        self.client.loop_start()
        # Connected and subscribed: nothing published after start() returns is missed.
        if not (self._connected.wait(timeout_s) and self._subscribed.wait(timeout_s)):
            self.client.loop_stop()
            raise RoomsLinkError(
                f"broker {self.host}:{self.port} did not accept account {self.client_id}: "
                f"{self._refused or 'no answer'}; check [mqtt] username and password_file"
            )

    def publish(self, topic: str, payload: str, *, retain: bool = True) -> None:
        """Queue a QoS 1 message (paho sends it now or after it reconnects)."""
        self.client.publish(topic, payload, qos=1, retain=retain)

    def close(self) -> None:
        """Say `offline`, disconnect and stop paho's thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._connected.is_set():
                info = self.client.publish(self._status, OFFLINE, qos=1, retain=True)
                info.wait_for_publish(CLOSE_WAIT_S)
        except Exception as error:  # dropped meanwhile: the broker sends the last will
            log.warning("rooms link: could not say offline (%s); the last will says it", error)
        self._connected.clear()
        for step in (self.client.disconnect, self.client.loop_stop):
            try:
                step()
            except Exception as error:
                log.warning("rooms link: closing: %s failed (%s)", step.__name__, error)

    # -- paho callbacks: only enqueue, never raise ----------------------------------------

    def _failed(self, what: str) -> None:
        self.callback_errors += 1
        if self.callback_errors == 1:
            log.exception("rooms link: %s failed (logged once; counted after)", what)

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        try:
            if reason.is_failure:
                self._refused = str(reason)
                return
            self._subscribed.clear()
            self._subscribe_mid = client.subscribe([(topic, 1) for topic in self._filters])[1]
            client.publish(self._status, ONLINE, qos=1, retain=True)
            if not self._connected.is_set():
                log.info("rooms link %s connected to %s:%s", self.client_id, self.host, self.port)
            self._connected.set()
            self._inbox.put(LinkState(up=True, at=self._clock.now().utc))
        except Exception:
            self._failed("on_connect")

    def _on_subscribe(self, client: mqtt.Client, userdata: Any, mid: int, *args: Any) -> None:
        try:
            if mid == self._subscribe_mid:
                self._subscribed.set()
        except Exception:
            self._failed("on_subscribe")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, *args: Any) -> None:
        try:
            if self._connected.is_set():
                log.warning("rooms link %s lost the broker; paho reconnects", self.client_id)
            self._connected.clear()
            self._inbox.put(LinkState(up=False, at=self._clock.now().utc))
        except Exception:
            self._failed("on_disconnect")

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        try:
            at = self._clock.now().utc
            retained = bool(message.retain)
            if len(message.payload) > MAX_PAYLOAD_BYTES:
                self._inbox.put(Inbound(message.topic, b"", retained, oversized=True, at=at))
                return
            self._inbox.put(Inbound(message.topic, bytes(message.payload), retained, at=at))
        except Exception:
            self._failed("on_message")
