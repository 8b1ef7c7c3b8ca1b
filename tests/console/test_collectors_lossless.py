"""Several collectors on the same sites lose nothing: one killed mid-stream, mosquitto
restarted mid-stream, a collector back after a crash. Real `edge-console collect` processes
(SIGKILL is a real crash: no goodbye, its last batch unacknowledged), a real mosquitto with
persistence, the log on SQLite and on PostgreSQL."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from console.collector import Collector
from console.log import CentralLog, open_log
from console.mqtt import ConsoleClient, Message
from console.sites import site_dirs
from simulator.postgres import PostgresCluster
from simulator.readiness import keep_draining, wait_for_output
from tests.broker import Broker
from tests.console.test_collectors_sites import event_topic, site_at
from tests.console.test_log import event as event_body
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)

ROOT = Path(__file__).resolve().parents[2]
DEVICES = {"site-a": ("gate-a1", "gate-a2"), "site-b": ("gate-b1", "gate-b2")}
PER_DEVICE = 750  # 3,000 events in all


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the log is: a SQLite file, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "log.db")
    return str(request.getfixturevalue("pg_database"))


@pytest.fixture
def sites_dir(tmp_path: Path) -> Path:
    for site, devices in DEVICES.items():
        site_at(tmp_path / "sites", site, gates=devices)
    return tmp_path / "sites"


class CollectorProcess:
    """`edge-console collect` in a process of its own, its output copied to a file."""

    def __init__(self, target: str, sites_dir: Path, port: int, user: str, out: Path) -> None:
        self.out = out
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "console.cli", "collect"),
                *("--log", target, "--sites-dir", str(sites_dir)),
                *("--host", "127.0.0.1", "--port", str(port), "--user", user, "--no-anchor"),
            ],
            stderr=subprocess.PIPE,
            cwd=ROOT,
        )
        assert self.process.stderr is not None
        self._copy = out.open("ab")
        ready = wait_for_output(self.process.stderr, b"collecting edge/", 30, self._copy)
        self._drain = keep_draining(self.process.stderr, self._copy)
        assert ready, f"{user} never started: {self.stop()[-2000:]}"

    def kill(self) -> None:
        """Crash: SIGKILL, no DISCONNECT, whatever it held unacknowledged stays so."""
        self.process.kill()
        self.process.wait(10)

    def stop(self) -> str:
        """Stop it as systemd does (SIGTERM) and return its output."""
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self._drain.join(10)
        self._copy.close()
        return self.out.read_text(errors="replace")


@pytest.fixture
def processes(tmp_path: Path, broker: Broker, sites_dir: Path) -> Iterator[list[CollectorProcess]]:
    """A list the test starts collectors into (`start`); every one is stopped at the end."""
    made: list[CollectorProcess] = []
    yield made
    for collector in made:
        collector.stop()


def start(
    made: list[CollectorProcess], target: str, tmp_path: Path, broker: Broker, user: str
) -> CollectorProcess:
    collector = CollectorProcess(
        target, tmp_path / "sites", broker.port, user, tmp_path / f"{user}.out"
    )
    made.append(collector)
    return collector


class Device:
    """A device's link as the agent's outbox drives it: each event sent again until the
    broker's PUBACK (so the broker may get one twice), through broker restarts."""

    def __init__(self, port: int, site: str, device: str) -> None:
        self.site, self.device = site, device
        self.connected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"{site}.{device}", protocol=mqtt.MQTTv5
        )
        self.client.on_connect = lambda *_: self.connected.set()
        self.client.on_disconnect = lambda *_: self.connected.clear()
        self.client.reconnect_delay_set(0.05, 0.2)  # type: ignore[arg-type]  # floats work
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def send(self, seq: int) -> None:
        payload = json.dumps(event_body(self.device, seq)).encode()
        while True:
            assert self.connected.wait(30), f"{self.device} never got back to the broker"
            info = self.client.publish(event_topic(self.site, self.device), payload, qos=1)
            try:
                info.wait_for_publish(5)
            except RuntimeError:  # the link dropped before PUBACK: send it again
                self.connected.clear()
                continue
            if info.is_published():
                return

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


class Stream:
    """Every device sends `seqs` from its own thread, pausing halfway until `resume()`."""

    def __init__(self, port: int, seqs: range) -> None:
        self.sent = 0
        self._cond = threading.Condition()
        self._resumed = threading.Event()
        self._half = len(seqs) // 2
        self.devices = [Device(port, s, d) for s, devices in DEVICES.items() for d in devices]
        self.threads = [
            threading.Thread(target=self._run, args=(d, seqs), daemon=True) for d in self.devices
        ]
        for thread in self.threads:
            thread.start()

    def _run(self, device: Device, seqs: range) -> None:
        for n, seq in enumerate(seqs):
            if n == self._half:
                self._resumed.wait(60)
            device.send(seq)
            with self._cond:
                self.sent += 1
                self._cond.notify_all()

    def halfway(self) -> None:
        """Wait until every device has sent (and the broker acknowledged) its first half."""
        with self._cond:
            done = self._cond.wait_for(lambda: self.sent >= self._half * len(self.devices), 60)
        assert done, f"only {self.sent} events sent"

    def resume(self) -> None:
        self._resumed.set()

    def wait(self, timeout_s: float = 60) -> None:
        self.resume()
        for thread in self.threads:
            thread.join(timeout_s)
            assert not thread.is_alive(), "the devices never finished sending"
        for device in self.devices:
            device.close()


def wait_stored(target: str, total: int, timeout_s: float = 60) -> CentralLog:
    """Return the log once it holds `total` events (read the way the console reads it)."""
    log = open_log(target)
    deadline = time.monotonic() + timeout_s
    idle = threading.Event()  # never set: the collectors are other processes, look again
    while (count := log.count()) < total:
        if time.monotonic() > deadline:
            log.close()
            pytest.fail(f"the log holds {count} of {total} events")
        idle.wait(0.05)
    return log


def until(predicate: Callable[[], bool], timeout_s: float = 30) -> bool:
    """Wait until `predicate()` holds (another thread's state, looked at every 50 ms)."""
    deadline = time.monotonic() + timeout_s
    idle = threading.Event()  # never set
    while not predicate():
        if time.monotonic() > deadline:
            return False
        idle.wait(0.05)
    return True


def assert_exactly_once(log: CentralLog, per_device: int) -> None:
    """Every device's every seq once, no gap, every chain intact."""
    total = per_device * sum(len(d) for d in DEVICES.values())
    assert log.count() == total
    ids = [row[0] for row in log.db.execute("SELECT id FROM events")]
    assert len(ids) == len(set(ids)) == total
    assert log.gaps() == {}
    for site, devices in DEVICES.items():
        for device in devices:
            assert log.devices(site=site)[device]["contiguous"] == per_device, device
    assert log.verify() == []


def test_one_of_two_collectors_killed_mid_stream_loses_nothing_and_stores_each_once(
    tmp_path: Path, broker: Broker, target: str, processes: list[CollectorProcess]
) -> None:
    a = start(processes, target, tmp_path, broker, "collector-a")
    b = start(processes, target, tmp_path, broker, "collector-b")
    stream = Stream(broker.port, range(1, PER_DEVICE + 1))
    stream.halfway()
    wait_stored(target, 1).close()  # both are storing now
    a.kill()  # mid-stream: half the events not sent yet, some of the rest not yet stored
    stream.wait()

    log = wait_stored(target, 4 * PER_DEVICE)
    try:
        assert_exactly_once(log, PER_DEVICE)
    finally:
        log.close()
    assert "Traceback" not in b.stop()


def test_mosquitto_restarted_mid_stream_loses_nothing_for_two_collectors(
    tmp_path: Path, broker: Broker, target: str, processes: list[CollectorProcess]
) -> None:
    start(processes, target, tmp_path, broker, "collector-a")
    start(processes, target, tmp_path, broker, "collector-b")
    stream = Stream(broker.port, range(1, PER_DEVICE + 1))
    stream.halfway()
    wait_stored(target, 1).close()  # both are storing now
    broker.stop()  # SIGTERM: mosquitto saves its sessions (the collectors' subscriptions)
    broker.start()  # same port: the devices are back within 0.2 s, the collectors in 1-5 s
    stream.wait()  # the second half, much of it while the collectors are still away

    log = wait_stored(target, 4 * PER_DEVICE)
    try:
        assert_exactly_once(log, PER_DEVICE)
    finally:
        log.close()


def test_a_collector_back_after_a_crash_gets_what_arrived_meanwhile_from_its_session(
    tmp_path: Path, broker: Broker, target: str, processes: list[CollectorProcess]
) -> None:
    first = start(processes, target, tmp_path, broker, "collector-a")
    first.kill()  # its session (subscriptions, nothing pending) stays on the broker
    Stream(broker.port, range(1, 101)).wait()  # 400 events while no collector runs

    log = open_log(target)
    try:
        assert log.count() == 0
    finally:
        log.close()
    start(processes, target, tmp_path, broker, "collector-a")
    log = wait_stored(target, 400)
    try:
        assert_exactly_once(log, 100)
    finally:
        log.close()


def test_a_database_outage_mid_stream_holds_the_batch_until_postgresql_is_back(
    tmp_path: Path,
    broker: Broker,
    sites_dir: Path,
    postgres: PostgresCluster,  # noqa: F811 (the fixture)
    pg_database: str,  # noqa: F811 (the fixture)
) -> None:
    name = pg_database.rsplit("/", 1)[1]
    collector = Collector(
        pg_database,
        sites=site_dirs(sites_dir, []),
        host="127.0.0.1",
        port=broker.port,
        client_id="collector-a",
    )
    collector.start()
    try:
        stream = Stream(broker.port, range(1, 51))
        stream.halfway()
        wait_stored(pg_database, 100).close()
        with psycopg.connect(postgres.url, autocommit=True) as admin:  # the database goes away
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                [name],
            )
        stream.wait()  # the second half reaches the broker while the log cannot take it
        assert until(lambda: collector.log_failing_since is not None), "it never noticed"
        assert collector.stored == 100  # the rest waits, unacknowledged
        with psycopg.connect(postgres.url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        log = wait_stored(pg_database, 200)
        try:
            assert_exactly_once(log, 50)
        finally:
            log.close()
        assert until(lambda: collector.log_failing_since is None), "it never said it was back"
    finally:
        collector.close()


def test_a_message_from_an_earlier_connection_is_never_acknowledged_on_a_later_one(
    broker: Broker,
) -> None:
    """Its packet id belongs to the connection that delivered it: the broker sends it again
    on the next one under the same id, and may reuse that id once the copy is acknowledged."""
    got: list[Message] = []
    cond = threading.Condition()

    def keep(message: Message) -> None:
        with cond:
            got.append(message)
            cond.notify_all()

    client = ConsoleClient(
        "127.0.0.1", broker.port, client_id="collector-a", session_expiry_s=3600, manual_ack=True
    )
    client.subscribe(event_topic("site-a", "gate-a1"), handler=keep)
    client.start()
    device = Device(broker.port, "site-a", "gate-a1")
    try:
        device.send(1)
        for copies in (2, 3):
            with cond:
                assert cond.wait_for(lambda: len(got) >= copies - 1, 30)  # noqa: B023
            broker.stop()
            broker.start()
            with cond:  # unacknowledged: the broker sends it again on the new connection
                assert cond.wait_for(lambda: len(got) >= copies, 30), len(got)  # noqa: B023
            client.ack(got[0])  # delivered on the first connection: not acknowledged now
        assert {m.mid for m in got} == {got[0].mid}
        assert [m.connection for m in got] == [1, 2, 3]
        client.ack(got[-1])  # on its own connection: acknowledged, never sent again
        # A fence: the broker answers packets in order, so once this publish is acknowledged
        # the PUBACK queued before it has been taken (stopping earlier could lose it).
        client.publish("test/fence", b"", qos=1)
        broker.stop()
        broker.start()
        device.send(2)
        with cond:
            assert cond.wait_for(lambda: len(got) >= 4, 30)
        assert json.loads(got[-1].payload)["seq"] == 2
    finally:
        device.close()
        client.close()


def test_the_only_collector_killed_holding_uncommitted_messages_loses_none_of_them(
    tmp_path: Path,
    broker: Broker,
    sites_dir: Path,
    pg_database: str,  # noqa: F811 (the fixture)
    processes: list[CollectorProcess],
) -> None:
    """Its batch commit is held back by the test holding the sites' chain heads (FOR UPDATE):
    whatever it received then is neither stored nor acknowledged when it is SIGKILLed, so the
    broker gives all of it to the same collector (its client id) when it is back."""
    name = pg_database.rsplit("/", 1)[1]
    only = start(processes, pg_database, tmp_path, broker, "collector-a")
    devices = [Device(broker.port, s, d) for s, names in DEVICES.items() for d in names]
    try:
        for device in devices:
            device.send(1)  # every site's chain has its head row now
        wait_stored(pg_database, len(devices)).close()
        with psycopg.connect(pg_database) as holder:  # one transaction until the block ends
            heads = holder.execute(
                "SELECT chain FROM chain_heads WHERE chain LIKE 'events/%' FOR UPDATE"
            ).fetchall()
            assert len(heads) == len(DEVICES)
            for seq in range(2, 51):
                for device in devices:
                    device.send(seq)  # the broker has it (PUBACK); the collector takes it

            def waiting_on_the_heads() -> bool:
                with psycopg.connect(pg_database, autocommit=True) as look:
                    found = look.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                        "AND wait_event_type = 'Lock' AND query ILIKE %s",
                        [name, "%chain_heads%FOR UPDATE%"],
                    ).fetchone()
                return bool(found and found[0])

            assert until(waiting_on_the_heads), "the collector never tried to commit a batch"
            only.kill()  # received, judged, uncommitted, unacknowledged
            holder.rollback()  # its blocked statement's client is gone: nothing commits
        log = open_log(pg_database)
        try:
            assert log.count() == len(devices)  # the killed run stored none of them
        finally:
            log.close()
        start(processes, pg_database, tmp_path, broker, "collector-a")  # the same session
        log = wait_stored(pg_database, 50 * len(devices))
        try:
            assert_exactly_once(log, 50)
        finally:
            log.close()
    finally:
        for device in devices:
            device.close()
