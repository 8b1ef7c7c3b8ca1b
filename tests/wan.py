"""Sites bridged to a central broker over a WAN that a test can cut: three real mosquittos.

Each site runs the configuration `edge-provision broker config` and `bridge site` wrote;
the centre runs what `bridge ca` and `bridge central` wrote (TLS on its listener). A site's
bridge reaches the centre through its own `WanLink`, a loopback forwarder (the simulator's
`NetCut`) that `cut()` drops at once and refuses new connections through, until `restore()`.
Each broker also gets a test-only `tap` account that may read and write everything, so a
test can watch what reaches a broker and publish what no provisioned account may.
"""

from __future__ import annotations

import json
import secrets
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from provisioning.broker import password_hash
from simulator.broker import free_port
from simulator.netcut import NetCut
from tests.broker import Broker
from tests.provisioning.commands import provision

ROOT = "edge"
RECONNECT_S = ("1", "1")  # the bridge's backoff in tests: a restored link is used within 1 s


class WanLink(NetCut):
    """A site's WAN link to the centre: cut drops it and refuses new connections."""

    def restore(self) -> None:
        """Let the bridge connect again."""
        self.heal()


def _run(*args: str) -> None:
    result = provision(*args)
    assert result.returncode == 0, f"edge-provision {' '.join(args)}: {result.stderr}"


def _add_tap(out: Path, password: str) -> None:
    """Give a generated broker a test-only account that reads and writes every topic."""
    with (out / "passwd").open("a") as passwd:
        passwd.write(f"tap:{password_hash(password)}\n")
    with (out / "acl").open("a") as acl:
        acl.write("\n# test only\nuser tap\ntopic readwrite #\n")


@dataclass
class Site:
    """One site: its directory, its broker and its WAN link to the centre."""

    slug: str
    directory: Path
    broker: Broker
    link: WanLink

    def password(self, account: str) -> str:
        """Return the password of one of the site's broker accounts."""
        return (self.directory / "accounts" / f"{account}.password").read_text().strip()


@dataclass
class Wan:
    """The centre and its sites, started; `close()` stops everything."""

    central: Broker
    central_dir: Path
    ca: Path
    sites: dict[str, Site]
    tap_password: str
    clients: list[Client] = field(default_factory=list)

    def central_password(self, account: str) -> str:
        """Return the password of a central console or operator account."""
        return (self.central_dir / "accounts" / f"{account}.password").read_text().strip()

    def client(self, port: int, username: str, password: str, **kwargs: object) -> Client:
        """Connect a client (closed with the WAN); TLS when `port` is the centre's."""
        ca = self.ca if port == self.central.port else None
        client = Client(port, username, password, ca, **kwargs)  # type: ignore[arg-type]
        self.clients.append(client)
        return client

    def close_clients(self) -> None:
        """Disconnect every client made so far (one test's), so the next test starts clean."""
        for client in self.clients:
            client.close()
        self.clients.clear()

    def close(self) -> None:
        """Stop the clients, links and brokers."""
        self.close_clients()
        for site in self.sites.values():
            site.link.close()
            site.broker.stop()
        self.central.stop()


def start_wan(workdir: Path, slugs: tuple[str, ...], devices: tuple[str, ...]) -> Wan:
    """Provision the centre and `slugs` (each with device accounts `devices`) and start them."""
    central_dir, sites_dir = workdir / "central", workdir / "sites"
    tap_password = secrets.token_urlsafe(12)
    _run("bridge", "ca", "--dir", str(central_dir), "--host", "127.0.0.1")
    ca = central_dir / "keys" / "ca.crt"
    central_port = free_port()
    links: dict[str, WanLink] = {}
    for slug in slugs:
        directory = sites_dir / slug
        _run("site", "init", "--site", slug, "--dir", str(directory))
        for device in devices:
            _run("account", "add", device, "--role", "device", "--dir", str(directory))
        out = workdir / f"broker-{slug}"
        port = str(free_port())
        _run("broker", "config", "--dir", str(directory), "--out", str(out), "--port", port)
        links[slug] = WanLink(central_port)
        _run(
            "bridge", "site", "--dir", str(directory), "--central-host", "127.0.0.1",
            "--central-port", str(links[slug].port), "--ca-file", str(ca), "--out", str(out),
            "--reconnect-s", *RECONNECT_S,
        )  # fmt: skip
        _add_tap(out, tap_password)
    central_out = workdir / "broker-central"
    _run(
        "bridge", "central", "--sites", str(sites_dir), "--dir", str(central_dir),
        "--out", str(central_out), "--port", str(central_port),
        "--console", "collector", "--operator", "office",
    )  # fmt: skip
    _add_tap(central_out, tap_password)
    central = Broker(workdir / "central-broker", generated=central_out / "edge.conf")
    central.start()
    sites = {}
    for slug in slugs:
        out = workdir / f"broker-{slug}"
        # The site broker runs broker config's edge.conf and the bridge in the order
        # Debian's `include_dir /etc/mosquitto/conf.d` reads them: sorted by name.
        conf = out / "site.conf"
        conf.write_text(
            "".join((out / n).read_text() for n in sorted(["edge.conf", "bridge.conf"]))
        )
        broker = Broker(workdir / f"site-broker-{slug}", generated=conf)
        broker.start()
        sites[slug] = Site(slug, sites_dir / slug, broker, links[slug])
    return Wan(central, central_dir, ca, sites, tap_password)


class Client:
    """A paho MQTT 5 client that keeps what it receives and what its publishes were told."""

    def __init__(
        self,
        port: int,
        username: str,
        password: str,
        ca: Path | None = None,
        subscribe: tuple[str, ...] = (),
        persistent: bool = False,
        client_id: str | None = None,
    ) -> None:
        self.messages: list[mqtt.MQTTMessage] = []
        # {device prefix: the event ids received from it}, kept as they arrive (benches
        # wait on tens of thousands of events).
        self.event_ids: dict[str, set[str]] = {}
        self.cond = threading.Condition()
        self._subscribed = threading.Event()
        self._connected = threading.Event()
        self.connack: object = None
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or username, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(username, password)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = lambda *a: self._subscribed.set()
        self.client.reconnect_delay_set(0.1, 1)
        self._topics = subscribe
        props = Properties(PacketTypes.CONNECT)
        if persistent:
            props.SessionExpiryInterval = 3600
        self.client.connect("127.0.0.1", port, clean_start=not persistent, properties=props)
        self.client.loop_start()
        ready = self._subscribed if subscribe else self._connected
        if not ready.wait(10):
            pytest.fail(f"{username} could not connect (or subscribe) to port {port}")

    def _on_connect(
        self, client: mqtt.Client, u: object, f: object, reason: object, p: object
    ) -> None:
        self.connack = reason
        if self._topics:
            client.subscribe([(topic, 1) for topic in self._topics])
        self._connected.set()

    def _on_message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        prefix, events, _ = message.topic.partition("/events/")
        try:
            event_id = json.loads(message.payload)["id"] if events else None
        except (ValueError, KeyError, TypeError):
            event_id = None
        with self.cond:
            self.messages.append(message)
            if isinstance(event_id, str):
                self.event_ids.setdefault(prefix, set()).add(event_id)
            self.cond.notify_all()

    def publish(
        self, topic: str, payload: bytes, retain: bool = False, properties: Properties | None = None
    ) -> object:
        """Publish at QoS 1 and return the broker's PUBACK reason code."""
        codes: list[object] = []
        done = threading.Event()

        def on_publish(c: object, u: object, mid: int, reason: object, p: object) -> None:
            codes.append(reason)
            done.set()

        self.client.on_publish = on_publish
        info = self.client.publish(topic, payload, qos=1, retain=retain, properties=properties)
        if not done.wait(10):
            pytest.fail(f"no PUBACK for {topic} (rc {info.rc})")
        return codes[0]

    def wait_for(
        self, predicate: Callable[[list[mqtt.MQTTMessage]], bool], what: str, timeout_s: float = 20
    ) -> None:
        """Wait until `predicate(messages)` holds, or fail naming `what`."""
        with self.cond:
            if not self.cond.wait_for(lambda: predicate(self.messages), timeout_s):
                pytest.fail(f"timed out after {timeout_s} s waiting for {what}")

    def on(self, prefix: str) -> list[mqtt.MQTTMessage]:
        """Return the messages received so far whose topic starts with `prefix`."""
        with self.cond:
            return [m for m in self.messages if m.topic.startswith(prefix)]

    def ids(self, prefix: str) -> dict[str, list[bytes]]:
        """Return {event id: every payload received for it} under `prefix`."""
        found: dict[str, list[bytes]] = {}
        for message in self.on(prefix):
            found.setdefault(json.loads(message.payload)["id"], []).append(message.payload)
        return found

    def close(self) -> None:
        """Disconnect; idempotent."""
        self.client.disconnect()
        self.client.loop_stop()


def events(device: str, first: int, last: int) -> Iterator[tuple[str, bytes]]:
    """Yield (id, payload) of access events `first`..`last` of `device`, as a device sends them."""
    for seq in range(first, last + 1):
        body = {"v": 1, "id": f"{device}:{seq}", "seq": seq, "kind": "access", "type": "granted"}
        yield body["id"], json.dumps(body, separators=(",", ":")).encode()  # type: ignore[misc]
