"""Every broker account against every other account's topics and client id.

A real mosquitto runs the files `edge-provision broker config` wrote (through the command
line), for two devices of different roles, two console accounts, an operator, the rooms
service and Home Assistant. MQTT 5
makes a refused publish visible (PUBACK 0x87); a refused subscription is granted and
delivers nothing, so reads are judged by what arrives before a last message that every
account may read.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from edge.core.credentials import Credential
from edge.core.policy import AccessPolicy, Rule
from edge.snapshot import build
from provisioning.broker import MAX_PACKET_SIZE
from provisioning.cli import cli
from simulator.broker import free_port
from tests.broker import MOSQUITTO, Broker

pytestmark = pytest.mark.services  # starts mosquitto, pcscd, an emulated card or a building

SITE = "kamakura-city-hall"
BASE = f"edge/{SITE}"
GATE, SENSOR = "gate-1f-east", "sensors-2f-booths"
ROLES = {
    GATE: "device",
    SENSOR: "device",
    "console": "console",
    "console-b": "console",  # a second collector sharing the load has its own account
    "operator": "operator",
    "rooms": "rooms",  # the rooms service; its branch {root}/{site}/rooms/ looks like a device's
    "home-assistant": "homeassistant",
}
DEVICE_ROLES = {GATE: "gate", SENSOR: "sensor-node"}
# Every topic kind of the MQTT contract, under any account's name.
KINDS = {
    "status": "status",
    "events": "events/access",
    "occupancy": "occupancy/staff-area",
    "reply": "reply/r1",
    "cmd": "cmd/ping",
    "credentials": "credentials",
    "credentials-delta": "credentials/delta",
    # The gate's doors join lobby and staff-area (its example configuration); no device's
    # doors lead into the vault.
    "crossings": "crossings/staff-area",
    "crossings-vault": "crossings/vault",
    "positions": "positions/staff-area",
    "positions-vault": "positions/vault",
    "door-events": "events/door",
    "alarm-events": "events/alarm",
    "rooms-view": "view",
    "rooms-ha": "ha/room/meeting-2f-1",
}
HA = "homeassistant/binary_sensor/meeting-2f-1/config"  # Home Assistant discovery
HA_SENSOR = "homeassistant/sensor/meeting-2f-1/config"
HA_OTHER = "homeassistant/lock/front-door/config"  # another integration's component
HA_BIRTH = "homeassistant/status"
HA_READS = {"status", "rooms-ha"}  # availability and the rooms service's states
DEVICE_WRITES = {"status", "events", "occupancy", "reply", "door-events", "alarm-events"}
ROOMS_READS = {"status", "events", "occupancy", "door-events"}  # events: events/access
ROOMS_WRITES = {"status", "rooms-view", "rooms-ha"}
SERVES_STAFF_AREA = {GATE}
NOT_AUTHORIZED = 0x87


def may_write(actor: str, target: str, kind: str) -> bool:
    """What the account model says: the rule each cell is checked against."""
    role = ROLES[actor]
    if role == "device":
        if kind in ("crossings", "positions"):
            return actor == target and actor in SERVES_STAFF_AREA
        return actor == target and kind in DEVICE_WRITES
    if role == "rooms":  # its own status, view and HA states: no device topic, no command
        return target == "rooms" and kind in ROOMS_WRITES
    if role == "console":
        return kind == "cmd"
    if role == "homeassistant":  # nothing under the root: only its own birth message
        return False
    return kind in {"credentials", "credentials-delta"}


def may_read(actor: str, target: str, kind: str) -> bool:
    role = ROLES[actor]
    if role == "device":
        if kind in ("crossings", "positions"):  # every device's, of a zone it serves
            return actor in SERVES_STAFF_AREA
        return actor == target and kind in {"cmd", "credentials", "credentials-delta"}
    if role == "rooms":  # never credentials, crossings, positions, commands or alarms
        return kind in ROOMS_READS
    if role == "console":
        return kind in DEVICE_WRITES or (target == "rooms" and kind == "rooms-view")
    if role == "homeassistant":  # every status; states only from the rooms service's branch
        return kind == "status" or (target == "rooms" and kind in HA_READS)
    return kind == "status"


def topic(target: str, kind: str) -> str:
    return f"{BASE}/{target}/{KINDS[kind]}"


@dataclass(frozen=True)
class Site:
    port: int
    passwords: dict[str, str]
    files: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed; ./check installs it")
    tmp = tmp_path_factory.mktemp("matrix")
    directory = tmp / "site"
    d = ("--dir", str(directory))
    steps: list[tuple[str, ...]] = [("site", "init", "--site", SITE)]
    for account, role in ROLES.items():
        steps.append(("account", "add", account, "--role", role))
        if role == "device":
            steps.append(("device", "add", account, "--role", DEVICE_ROLES[account]))
    files = tmp / "broker-files"
    steps.append(("broker", "config", "--out", str(files), "--port", str(free_port())))
    runner = CliRunner()
    for step in steps:
        done = runner.invoke(cli, [*step, *d])
        assert done.exit_code == 0, done.output
    broker = Broker(tmp / "broker", generated=files / "edge.conf")
    broker.start()
    passwords = {a: (directory / "accounts" / f"{a}.password").read_text().strip() for a in ROLES}
    yield Site(broker.port, passwords, files)
    broker.stop()


class Account:
    """One paho MQTT 5 connection with an account's password; records all it sees."""

    def __init__(
        self,
        site: Site,
        account: str,
        client_id: str | None = None,
        clean_start: bool = True,
        session_s: int = 0,
        cond: threading.Condition | None = None,
    ) -> None:
        self.account = account
        self.cond = cond or threading.Condition()  # shared: wait on several clients at once
        self.got: list[tuple[str, bytes]] = []
        self.acks: dict[int, int] = {}
        self.subacks: dict[int, list[int]] = {}
        self.disconnects: list[int] = []
        self.connack: tuple[bool, int] | None = None
        self._closing = self.connected = False
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or account, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(account, site.passwords[account])
        # A client taken over must stay off, not reconnect and take over in turn.
        self.client.reconnect_delay_set(60, 60)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_publish = self._on_publish
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = session_s
        self.client.connect("127.0.0.1", site.port, clean_start=clean_start, properties=props)
        self.client.loop_start()
        self.wait(lambda: self.connack is not None, f"{account}: no CONNACK")
        assert self.connack is not None
        assert self.connack[1] == 0, f"{account} refused"

    def _on_connect(self, c: object, u: object, flags: object, reason: object, p: object) -> None:
        with self.cond:
            present = bool(flags.session_present)  # type: ignore[attr-defined]
            self.connack = (present, int(reason.value))  # type: ignore[attr-defined]
            self.connected = not reason.is_failure  # type: ignore[attr-defined]
            self.cond.notify_all()

    def _on_disconnect(self, c: object, u: object, f: object, reason: object, p: object) -> None:
        with self.cond:
            self.connected = False
            if not self._closing:
                self.disconnects.append(int(reason.value))  # type: ignore[attr-defined]
            self.cond.notify_all()

    def _on_publish(self, c: object, u: object, mid: int, reason: object, p: object) -> None:
        with self.cond:
            self.acks[mid] = int(reason.value)  # type: ignore[attr-defined]
            self.cond.notify_all()

    def _on_subscribe(self, c: object, u: object, mid: int, codes: list[object], p: object) -> None:
        with self.cond:
            self.subacks[mid] = [int(r.value) for r in codes]  # type: ignore[attr-defined]
            self.cond.notify_all()

    def _on_message(self, c: object, u: object, message: mqtt.MQTTMessage) -> None:
        with self.cond:
            self.got.append((message.topic, bytes(message.payload)))
            self.cond.notify_all()

    def wait(self, predicate: Callable[[], bool], what: str, timeout_s: float = 10) -> None:
        with self.cond:
            assert self.cond.wait_for(predicate, timeout_s), what

    def publish(self, topic: str, payload: bytes) -> int:
        """Publish at QoS 1 and return the PUBACK reason code."""
        info = self.client.publish(topic, payload, qos=1)
        self.wait(lambda: info.mid in self.acks, f"{self.account}: no PUBACK for {topic}")
        return self.acks[info.mid]

    def subscribe(self, *topics: str) -> None:
        result, mid = self.client.subscribe([(t, 1) for t in topics])
        assert result == mqtt.MQTT_ERR_SUCCESS
        self.wait(lambda: mid in self.subacks, f"{self.account}: no SUBACK")

    def has_payload(self, payload: bytes) -> bool:
        with self.cond:
            return any(p == payload for _, p in self.got)

    def payloads(self, topic: str) -> list[bytes]:
        with self.cond:
            return [p for t, p in self.got if t == topic]

    def close(self) -> None:
        with self.cond:
            self._closing = True
            was_connected = self.connected
        self.client.disconnect()
        if was_connected:
            self.wait(lambda: not self.connected, f"{self.account}: no disconnect")
        self.client.loop_stop()


def test_generated_files_start_mosquitto_with_every_limit(site: Site) -> None:
    """mosquitto refuses an unknown option, so a running broker proves each one exists."""
    conf = (site.files / "edge.conf").read_text()
    for option in (
        "use_username_as_clientid true",
        "max_packet_size 16777216",
        "max_queued_messages 1000000",
        "max_queued_bytes 1073741824",
        "max_inflight_messages 1000",
        "set_tcp_nodelay true",  # else a small packet waits ~40 ms for a delayed ACK
    ):
        assert option in conf.splitlines()
    acl = (site.files / "acl").read_text().splitlines()
    assert not [line for line in acl if line.startswith("pattern")]


def test_every_account_against_every_account_s_topics(site: Site) -> None:
    accounts = {a: Account(site, a) for a in ROLES}
    cells = list(itertools.product(ROLES, ROLES, KINDS))
    try:
        for account in accounts.values():
            account.subscribe(*(topic(t, k) for t in ROLES for k in KINDS))
        wrong: list[str] = []
        for actor, target, kind in cells:
            code = accounts[actor].publish(topic(target, kind), f"{actor}>{target}".encode())
            allowed = code < 0x80  # 0x10 "no matching subscribers" is a success too
            if allowed != may_write(actor, target, kind) or (
                not allowed and code != NOT_AUTHORIZED
            ):
                wrong.append(f"{actor} publish {topic(target, kind)}: reason {code:#x}")
        # A last message each account may read: everything before it has been delivered.
        for device in (GATE, SENSOR):
            assert accounts["console"].publish(topic(device, "cmd"), b"end") < 0x80
        assert accounts[GATE].publish(topic(GATE, "status"), b"end") < 0x80
        for name, account in accounts.items():
            account.wait(partial(account.has_payload, b"end"), f"{name}: no end")
            got = {t for t, p in account.got if p != b"end"}
            for target, kind in itertools.product(ROLES, KINDS):
                written = any(may_write(w, target, kind) for w in ROLES)
                expected = written and may_read(name, target, kind)
                if (topic(target, kind) in got) != expected:
                    wrong.append(f"{name} read {topic(target, kind)}: got it = {not expected}")
            assert not account.disconnects, f"{name} was disconnected"
        assert not wrong, "\n".join(wrong)
    finally:
        for account in accounts.values():
            account.close()


def sample(owner: str, intruder: str) -> tuple[str, str]:
    """Return (publisher, topic): a message the owner may read, sent by a third account."""
    if ROLES[owner] == "device":
        publisher = next(a for a in ("console", "console-b") if a != intruder)
        return publisher, topic(owner, "cmd")
    publisher = next(a for a in (GATE, SENSOR) if a != intruder)
    return publisher, topic(publisher, "status")


@pytest.mark.parametrize(
    ("owner", "intruder"), [(o, i) for o, i in itertools.permutations(ROLES, 2)]
)
def test_no_account_takes_another_s_client_id_or_session(
    site: Site, owner: str, intruder: str
) -> None:
    """The intruder connects with the owner's client id while the owner is on, then away."""
    publisher, wanted = sample(owner, intruder)
    echo_from, echo = sample(intruder, owner)  # a message the intruder itself may read
    senders = {a: Account(site, a) for a in {publisher, echo_from}}
    me = Account(site, owner, clean_start=True, session_s=3600)
    me.subscribe(wanted)
    # Connected: an intruder with the owner's client id must not kick it off.
    taker = Account(site, intruder, client_id=owner, clean_start=True)
    assert senders[publisher].publish(wanted, b"live") < 0x80
    me.wait(lambda: b"live" in me.payloads(wanted), f"{owner} lost its connection")
    assert not me.disconnects, f"{intruder} with {owner}'s client id kicked {owner} off"
    taker.close()
    me.close()
    # Away: resuming the owner's session would hand its queued message to the intruder,
    # before the intruder's own message (one session's messages arrive in order).
    assert senders[publisher].publish(wanted, b"queued-1") < 0x80
    stealer = Account(site, intruder, client_id=owner, clean_start=False)
    stealer.subscribe(echo)
    assert senders[echo_from].publish(echo, b"echo") < 0x80
    stealer.wait(lambda: b"echo" in stealer.payloads(echo), f"{intruder}: no echo")
    assert b"queued-1" not in stealer.payloads(wanted), f"{intruder} took {owner}'s message"
    stealer.close()
    # Away: a clean start with the owner's client id would wipe its session.
    assert senders[publisher].publish(wanted, b"queued-2") < 0x80
    Account(site, intruder, client_id=owner, clean_start=True).close()
    back = Account(site, owner, clean_start=False, session_s=3600)
    back.wait(
        lambda: {b"queued-1", b"queued-2"} <= set(back.payloads(wanted)),
        f"{owner}'s queued messages were lost to {intruder} using its client id",
    )
    assert back.connack == (True, 0), f"{owner}'s session was wiped by {intruder}"
    for client in (back, *senders.values()):
        client.close()
    Account(site, owner, clean_start=True).close()  # ends the session for the next intruder


def test_a_full_snapshot_passes_and_a_larger_packet_is_refused(site: Site) -> None:
    """The packet limit admits 100,000 cards' credentials and stops anything bigger."""
    key = Ed25519PrivateKey.generate()
    rng = random.Random(1)
    groups = [f"group-{g:02d}" for g in range(50)]
    credentials = [
        Credential(
            hashlib.sha256(str(i).encode()).hexdigest(),
            frozenset(rng.sample(groups, rng.randint(1, 3))),
            None,
            datetime(2030, 3, 31, tzinfo=UTC),
        )
        for i in range(100_000)
    ]
    policy = AccessPolicy(version=1, rules=tuple(Rule(g, frozenset({"gate-east"})) for g in groups))
    snapshot = build(
        key, site=SITE, device=GATE, version=1, policy=policy, credentials=credentials, deny={}
    )
    assert len(snapshot) > 5_000_000
    gate, console, operator = (Account(site, a) for a in (GATE, "console", "operator"))
    try:
        gate.subscribe(topic(GATE, "credentials"))
        console.subscribe(topic(GATE, "events"))
        assert operator.publish(topic(GATE, "credentials"), snapshot) < 0x80
        gate.wait(lambda: snapshot in gate.payloads(topic(GATE, "credentials")), "no snapshot")
        gate.client.publish(topic(GATE, "events"), b"x" * (MAX_PACKET_SIZE + 1), qos=1)
        gate.wait(lambda: bool(gate.disconnects), "a packet over the limit was accepted")
        gate.close()
        gate = Account(site, GATE)
        assert gate.publish(topic(GATE, "events"), b"small") < 0x80
        console.wait(lambda: b"small" in console.payloads(topic(GATE, "events")), "no event")
        assert console.payloads(topic(GATE, "events")) == [b"small"]  # the big one never came
    finally:
        for client in (gate, console, operator):
            client.close()


def test_collectors_sharing_the_load_each_on_its_own_account(site: Site) -> None:
    """Each collector has its own account and persistent session with plain subscriptions:
    both connected at once, each gets every event (the log de-duplicates), none kicks the
    other, and one away finds on return what came meanwhile, without subscribing again."""
    events = f"{BASE}/+/events/#"
    both = threading.Condition()
    accounts = ("console", "console-b")
    collectors = [Account(site, a, session_s=3600, cond=both) for a in accounts]
    gate = Account(site, GATE)
    back: Account | None = None
    try:
        for collector in collectors:
            collector.subscribe(events)
        sent = [str(i).encode() for i in range(40)]
        for payload in sent:
            assert gate.publish(topic(GATE, "events"), payload) < 0x80

        def complete(collector: Account, expected: list[bytes]) -> bool:
            return sorted(collector.payloads(topic(GATE, "events"))) == sorted(expected)

        for collector in collectors:
            collector.wait(partial(complete, collector, sent), f"{collector.account}: missing")
        assert not any(c.disconnects for c in collectors)  # neither took the other's place
        collectors[1].close()  # away: its session and subscription stay on the broker
        meanwhile = [f"away-{i}".encode() for i in range(10)]
        for payload in meanwhile:
            assert gate.publish(topic(GATE, "events"), payload) < 0x80
        back = Account(site, "console-b", clean_start=False, session_s=3600)
        assert back.connack == (True, 0)  # its session, with its plain subscription
        back.wait(partial(complete, back, meanwhile), "console-b: the queued events missing")
        first = collectors[0]
        first.wait(partial(complete, first, sent + meanwhile), "console: events missing")
        assert not first.disconnects
    finally:
        for client in (collectors[0], gate, *([back] if back else [])):
            client.close()
        for account in accounts:  # a clean start with no expiry ends the session
            Account(site, account).close()


def test_only_the_rooms_service_speaks_home_assistant_discovery(site: Site) -> None:
    """The rooms account publishes its discovery and hears HA's birth; no other account may."""
    accounts = {a: Account(site, a) for a in ROLES}
    try:
        accounts["rooms"].subscribe(HA_BIRTH)
        accounts["home-assistant"].subscribe("homeassistant/#")
        refused = {
            name: account.publish(HA, f"{name}-config".encode())
            for name, account in accounts.items()
        }
        assert refused.pop("rooms") < 0x80
        assert set(refused.values()) == {NOT_AUTHORIZED}, refused
        assert accounts["rooms"].publish(HA_SENSOR, b"rooms-sensor") < 0x80
        assert accounts["home-assistant"].publish(HA_BIRTH, b"online") < 0x80
        rooms, home = accounts["rooms"], accounts["home-assistant"]
        rooms.wait(lambda: b"online" in rooms.payloads(HA_BIRTH), "rooms: no HA birth")
        for what in (b"rooms-config", b"rooms-sensor"):
            home.wait(partial(home.has_payload, what), f"Home Assistant: no {what!r}")
    finally:
        for account in accounts.values():
            account.close()


def test_the_rooms_account_cannot_touch_other_integrations_or_fake_home_assistant(
    site: Site,
) -> None:
    """Another component's discovery and HA's own status are refused to the rooms service."""
    rooms, home = Account(site, "rooms"), Account(site, "home-assistant")
    try:
        home.subscribe("homeassistant/#")
        assert rooms.publish(HA_OTHER, b"rooms-lock") == NOT_AUTHORIZED
        assert rooms.publish(HA_BIRTH, b"offline") == NOT_AUTHORIZED
        assert rooms.publish(f"homeassistant/binary_sensor/{HA_OTHER}", b"x") == NOT_AUTHORIZED
        assert rooms.publish(HA, b"rooms-config") < 0x80
        home.wait(partial(home.has_payload, b"rooms-config"), "Home Assistant: no config")
        assert not home.has_payload(b"rooms-lock")
        assert not home.has_payload(b"offline")
    finally:
        rooms.close()
        home.close()


def test_home_assistant_reads_status_and_states_and_nothing_of_the_security_line(
    site: Site,
) -> None:
    """Availability and the rooms service's states arrive; events, commands, cards do not."""
    home = Account(site, "home-assistant")
    senders = {a: Account(site, a) for a in (GATE, "console", "operator", "rooms")}
    refused = {
        (GATE, "events"): b"access-event",
        (GATE, "alarm-events"): b"alarm-event",
        (GATE, "occupancy"): b"occupancy",
        (GATE, "crossings"): b"crossing",
        (GATE, "positions"): b"positions",
        ("console", "cmd"): b"command",
        ("operator", "credentials"): b"credentials",
        ("rooms", "rooms-view"): b"view",
    }
    try:
        home.subscribe(f"{BASE}/#")
        for (sender, kind), payload in refused.items():
            target = "rooms" if sender == "rooms" else GATE
            assert senders[sender].publish(topic(target, kind), payload) < 0x80, kind
        assert senders["rooms"].publish(topic("rooms", "rooms-ha"), b"ON") < 0x80
        assert senders["rooms"].publish(topic("rooms", "status"), b"online") < 0x80
        assert senders[GATE].publish(topic(GATE, "status"), b'{"state":"online"}') < 0x80
        home.wait(
            lambda: b'{"state":"online"}' in home.payloads(topic(GATE, "status")), "no status"
        )
        assert home.payloads(topic("rooms", "rooms-ha")) == [b"ON"]
        assert home.payloads(topic("rooms", "status")) == [b"online"]
        got = {p for _, p in home.got}
        assert not got & set(refused.values()), got & set(refused.values())
        for kind in ("events", "cmd", "credentials", "crossings", "occupancy", "status"):
            assert home.publish(topic(GATE, kind), b"home") == NOT_AUTHORIZED, kind
        assert home.publish(HA, b"home-config") == NOT_AUTHORIZED
    finally:
        for client in (home, *senders.values()):
            client.close()
