"""A private mosquitto on a free loopback port, started and stopped by the tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
INSTALL = "./check installs it (apt-get install mosquitto)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    """mosquitto with persistence and queues large enough that it never drops QoS 1."""

    def __init__(
        self,
        workdir: Path,
        acl: str | None = None,
        passwords: Path | None = None,
        listener_options: tuple[str, ...] = (),
    ) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.conf = workdir / "mosquitto.conf"
        self.log = workdir / "mosquitto.log"
        lines = [
            # Started as root, mosquitto would drop to user `mosquitto`, which cannot reach
            # pytest's private temporary directory (persistence, log, password and ACL files).
            "user root",
            f"listener {self.port} 127.0.0.1",
            *listener_options,
            "persistence true",
            f"persistence_location {workdir}/",
            # Defaults drop QoS 1 messages beyond 1000 queued per client (TEST-STACK.md).
            "max_queued_messages 1000000",
            "max_inflight_messages 1000",
            "autosave_interval 1",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if passwords is not None:
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        if acl is not None:
            acl_file = workdir / "acl"
            acl_file.write_text(acl)
            lines.append(f"acl_file {acl_file}")
        self.conf.write_text("\n".join(lines) + "\n")
        self.process: subprocess.Popen[bytes] | None = None

    def __repr__(self) -> str:
        return f"<Broker 127.0.0.1:{self.port} {'running' if self.running else 'stopped'}>"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout_s: float = 10.0) -> None:
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                if not self.running or time.monotonic() > deadline:
                    pytest.fail(
                        "mosquitto did not start: "
                        + (self.log.read_text() if self.log.exists() else "(no log)")
                    )
                time.sleep(0.02)  # polling for the port with a deadline

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if kill:
            self.process.kill()
        else:
            self.process.terminate()
        self.process.wait(10)
        self.process = None


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
        import threading

        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

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
        self.client.on_connect = lambda c, u, f, rc, p: (
            c.subscribe(topic, qos=1),
            self.connected.set(),
        )
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
        import json

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
        import json

        with self.cond:
            return [
                json.loads(m.payload)
                for m in self.messages
                if m.topic.endswith(suffix) and m.payload
            ]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
