"""A private mosquitto on a free loopback port, started and stopped by the tests."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from simulator.broker import MOSQUITTO, BrokerError
from simulator.broker import Broker as _Broker

INSTALL = "./check installs it (apt-get install mosquitto)"


class Broker(_Broker):
    """The simulator's private mosquitto; a failed start fails the test."""

    def start(self, timeout_s: float = 10.0) -> None:
        try:
            super().start(timeout_s)
        except BrokerError as error:
            pytest.fail(str(error))


def start_broker(workdir: Path, **kwargs: object) -> Broker:
    if not Path(MOSQUITTO).exists():
        pytest.skip(f"mosquitto is not installed; {INSTALL}")
    broker = Broker(workdir, **kwargs)  # type: ignore[arg-type]
    broker.start()
    return broker


class Subscriber:
    """A paho MQTT 5 client that keeps every message it receives (thread-safe)."""

    def __init__(
        self,
        port: int,
        topic: str,
        client_id: str = "test-subscriber",
        persistent: bool = False,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        self.seqs: set[int] = set()  # every event seq seen, duplicates folded
        self.arrivals: list[float] = []  # perf_counter() when each message arrived
        self.cond = threading.Condition()
        self.topic = topic
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        if username:
            self.client.username_pw_set(username, password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        # Ready once the broker has the subscription, not merely the connection.
        self.client.on_subscribe = lambda *a: self.connected.set()
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.reconnect_delay_set(0.1, 1)
        props = Properties(PacketTypes.CONNECT)
        if persistent:
            props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=not persistent, properties=props)
        self.client.loop_start()
        if not self.connected.wait(10):
            pytest.fail("test subscriber could not connect")

    def _on_message(self, client: object, userdata: object, message: object) -> None:
        try:
            seq = json.loads(message.payload).get("seq")  # type: ignore[attr-defined]
        except (ValueError, AttributeError):
            seq = None
        with self.cond:
            self.messages.append(message)  # type: ignore[arg-type]
            self.arrivals.append(time.perf_counter())
            if isinstance(seq, int):
                self.seqs.add(seq)
            self.cond.notify_all()

    def wait_for(self, predicate: object, timeout_s: float = 10.0, what: str = "messages") -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.messages), timeout_s):  # type: ignore[operator]
                pytest.fail(
                    f"timed out after {timeout_s} s waiting for {what}; "
                    f"got {len(self.messages)} messages"
                )

    def payloads(self, suffix: str = "") -> list[dict[str, object]]:
        with self.cond:
            return [
                json.loads(m.payload)
                for m in self.messages
                if m.topic.endswith(suffix) and m.payload
            ]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
