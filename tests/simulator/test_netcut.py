"""NetCut: a client through the cut loses its broker at once and gets it back after heal."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from simulator.netcut import NetCut, NetCutError
from tests.broker import Broker, Subscriber, start_broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    broker = start_broker(tmp_path / "broker")
    yield broker
    broker.stop()


class Watched:
    """A paho MQTT 5 client through a NetCut that counts its connects and disconnects."""

    def __init__(
        self, port: int, client_id: str, will_topic: str | None = None, keepalive: int = 60
    ) -> None:
        self.cond = threading.Condition()
        self.connects = 0
        self.disconnects = 0
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5
        )
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.reconnect_delay_set(0.05, 0.2)
        if will_topic:
            self.client.will_set(will_topic, b"gone", qos=1)
        self.client.connect("127.0.0.1", port, keepalive=keepalive)
        self.client.loop_start()

    def _on_connect(self, *args: object) -> None:
        with self.cond:
            self.connects += 1
            self.cond.notify_all()

    def _on_disconnect(self, *args: object) -> None:
        with self.cond:
            self.disconnects += 1
            self.cond.notify_all()

    def wait(self, what: str, count: int, timeout_s: float = 10.0) -> None:
        with self.cond:
            if not self.cond.wait_for(lambda: getattr(self, what) >= count, timeout_s):
                pytest.fail(f"{what} stayed at {getattr(self, what)}, expected {count}")

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_a_client_through_the_cut_loses_the_broker_and_reconnects_after_heal(
    broker: Broker,
) -> None:
    watcher = Subscriber(broker.port, "gate/#", client_id="watcher")
    with NetCut(broker.port) as cut:
        client = Watched(cut.port, "gate-1", will_topic="gate/will")
        try:
            client.wait("connects", 1)
            client.client.publish("gate/hello", b"1", qos=1).wait_for_publish(10)
            watcher.wait_for(lambda ms: any(m.topic == "gate/hello" for m in ms))
            assert cut.connections == 1
            assert cut.open_connections == 1
            assert cut.bytes_up > 0
            assert cut.bytes_down > 0

            cut.cut()
            client.wait("disconnects", 1)
            # The broker lost the client too: its last will goes out.
            watcher.wait_for(lambda ms: any(m.topic == "gate/will" for m in ms), what="the will")
            # Reconnect attempts are turned away while cut; none gets through.
            goal = cut.refused + 3
            assert cut.wait_for(lambda c: c.refused >= goal), cut
            assert client.connects == 1
            assert "cut" in repr(cut)

            cut.heal()
            client.wait("connects", 2)
            client.client.publish("gate/again", b"2", qos=1).wait_for_publish(10)
            watcher.wait_for(lambda ms: any(m.topic == "gate/again" for m in ms))
            assert cut.connections == 2
            assert cut.cuts == 1
        finally:
            client.close()
            watcher.close()


def test_a_silent_cut_is_found_only_by_keepalive_then_heals(broker: Broker) -> None:
    watcher = Subscriber(broker.port, "gate/#", client_id="watcher")
    with NetCut(broker.port) as cut:
        client = Watched(cut.port, "gate-2", will_topic="gate/will", keepalive=1)
        try:
            client.wait("connects", 1)
            cut.cut(silent=True)
            assert "silently cut" in repr(cut)
            # Nothing is reset: the client finds out by its keepalive, the broker by the
            # pings it misses (and sends the will).
            client.wait("disconnects", 1)
            watcher.wait_for(lambda ms: any(m.topic == "gate/will" for m in ms), what="the will")
            assert cut.bytes_dropped > 0
            # The client's closed socket was not passed on: its old connection is still held.
            assert cut.wait_for(lambda c: c.ends_closed >= 1), cut
            assert cut.open_connections == 1
            goal = cut.refused + 1  # a reconnect is accepted and held, never answered
            assert cut.wait_for(lambda c: c.refused >= goal), cut
            assert client.connects == 1
            cut.heal()
            client.wait("connects", 2, timeout_s=20)
            client.client.publish("gate/again", b"2", qos=1).wait_for_publish(10)
            watcher.wait_for(lambda ms: any(m.topic == "gate/again" for m in ms))
        finally:
            client.close()
            watcher.close()


def test_a_raw_connection_is_forwarded_counted_and_dropped() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server, NetCut(server.getsockname()[1]) as cut:
        client = socket.create_connection(("127.0.0.1", cut.port), timeout=5)
        upstream, _ = server.accept()
        upstream.settimeout(5)
        client.sendall(b"ping")
        assert upstream.recv(16) == b"ping"
        upstream.sendall(b"pong!")
        assert client.recv(16) == b"pong!"
        cut.cut()
        # Both ends see the drop: EOF or a reset, never a hang.
        for sock in (client, upstream):
            with contextlib.suppress(ConnectionResetError):
                assert sock.recv(16) == b""
        assert (cut.bytes_up, cut.bytes_down) == (4, 5)
        client.close()
        upstream.close()


def test_an_end_that_closes_during_a_silent_cut_is_kept_from_the_other() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server, NetCut(server.getsockname()[1]) as cut:
        client = socket.create_connection(("127.0.0.1", cut.port), timeout=5)
        upstream, _ = server.accept()
        assert cut.wait_for(lambda c: c.connections == 1), cut  # forwarded, not cut meanwhile
        cut.cut(silent=True)
        client.close()  # the gate gives up on its side
        assert cut.wait_for(lambda c: c.ends_closed >= 1), cut
        # The broker's side hears nothing: what it sends is still taken (and swallowed)...
        upstream.sendall(b"late")
        assert cut.wait_for(lambda c: c.bytes_dropped >= 4), cut
        # ...and no EOF or reset reaches it.
        upstream.setblocking(False)
        with pytest.raises(BlockingIOError):
            upstream.recv(16)
        assert cut.open_connections == 1
        cut.heal()
        upstream.settimeout(5)
        with contextlib.suppress(ConnectionResetError):  # the reset heal() sends
            assert upstream.recv(16) == b""
        assert cut.open_connections == 0
        upstream.close()


def test_closed_is_idempotent_and_refuses_use() -> None:
    cut = NetCut(1)
    cut.close()
    cut.close()
    assert "closed" in repr(cut)
    with pytest.raises(NetCutError, match="closed"):
        cut.cut()
    with pytest.raises(NetCutError, match="closed"):
        cut.heal()
