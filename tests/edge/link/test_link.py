"""The agent and a real mosquitto: events with every field, status and last will, occupancy,
lossless delivery through broker restarts and agent kills."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge.core.outputs import EventKind, EventRecord
from edge.link.payloads import EventPayload, OccupancyPayload, StatusPayload
from edge.store import Store, outbox
from tests.broker import Broker, Subscriber
from tests.edge.agent_fixtures import SimDevice, enrol, felica, sim_config
from tests.edge.sim_process import AgentProcess

PREFIX = "edge/kamakura-city-hall/gate-1f-east"


@pytest.fixture
def device(tmp_path: Path, broker: Broker) -> SimDevice:
    d = sim_config(tmp_path, broker_port=broker.port)
    enrol(d.store, range(20), ["gate-east"])
    return d


def seqs_seen(sub: Subscriber) -> set[int]:
    return sub.seqs


def test_a_tap_reaches_a_subscriber_with_every_contract_field(
    tmp_path: Path, broker: Broker, device: SimDevice
) -> None:
    sub = Subscriber(broker.port, f"{PREFIX}/#")
    agent = AgentProcess(device, tmp_path)
    try:
        assert (
            agent.request(op="tap", reader="gate-east-in", technology="felica", id=felica(1))[
                "decision"
            ]
            == "granted"
        )
        agent.request(op="pin", pin=27, high=True)
        agent.request(op="pin", pin=27, high=False)
        sub.wait_for(
            lambda ms: any(
                m.topic.endswith("events/access") and b"crossing" in m.payload for m in ms
            ),
            what="the crossing",
        )
        access = [EventPayload.model_validate(p) for p in sub.payloads("events/access")]
        granted = next(a for a in access if a.type == "granted")
        assert granted.id == f"gate-1f-east:{granted.seq}"
        assert granted.card_ref is not None
        assert len(granted.card_ref) == 64
        assert granted.ts.endswith("Z")
        assert felica(1) not in json.dumps(sub.payloads())
        sub.wait_for(
            lambda ms: any(m.topic == f"{PREFIX}/occupancy/staff-area" for m in ms),
            what="occupancy",
        )
        occupancy = [m for m in sub.messages if m.topic == f"{PREFIX}/occupancy/staff-area"][-1]
        assert OccupancyPayload.model_validate(json.loads(occupancy.payload)).count == 1
        status = StatusPayload.model_validate(sub.payloads("/status")[-1])
        assert status.state == "online"
        assert status.credentials is not None
        assert status.credentials.version == 1
    finally:
        agent.terminate()
        sub.close()
    late = Subscriber(broker.port, f"{PREFIX}/+/staff-area", client_id="late")
    late.wait_for(lambda ms: len(ms) >= 1, what="the retained occupancy")
    assert late.messages[0].retain
    late.close()


def test_last_will_says_offline_when_the_agent_dies(
    tmp_path: Path, broker: Broker, device: SimDevice
) -> None:
    sub = Subscriber(broker.port, f"{PREFIX}/status")
    agent = AgentProcess(device, tmp_path)
    sub.wait_for(
        lambda ms: any(json.loads(m.payload)["state"] == "online" for m in ms), what="online"
    )
    agent.kill()
    sub.wait_for(
        lambda ms: json.loads(ms[-1].payload)["state"] == "offline",
        timeout_s=10,
        what="the last will",
    )
    sub.close()


def fill_outbox(store_path: Path, n: int) -> None:
    records = [
        EventRecord(EventKind.SYSTEM, "test_burst", datetime.now(UTC), {"n": i}) for i in range(n)
    ]
    with Store(store_path) as store, store.transaction() as db:
        outbox.append(db, "gate-1f-east", records, True)


def test_a_burst_survives_two_broker_restarts_without_loss_or_gap(
    tmp_path: Path, broker: Broker, device: SimDevice
) -> None:
    fill_outbox(device.store, 10_000)
    sub = Subscriber(broker.port, f"{PREFIX}/events/#", client_id="collector", persistent=True)
    agent = AgentProcess(device, tmp_path)
    try:
        for threshold in (2_000, 5_000):
            sub.wait_for(
                lambda ms, t=threshold: len(ms) >= t, timeout_s=60, what=f"{threshold} events"
            )
            broker.stop()  # SIGTERM: mosquitto saves its persistent sessions
            broker.start()
        sub.wait_for(lambda ms: len(seqs_seen(sub)) >= 10_001, timeout_s=120, what="every event")
    finally:
        agent.terminate()
        sub.close()
    seen = seqs_seen(sub)
    assert seen == set(range(1, max(seen) + 1)), "a gap in seq"
    ids = [p["id"] for p in sub.payloads()]
    assert len(set(ids)) == len(seen)  # duplicates are allowed on the wire, de-duplicated by id
    with Store(device.store) as store:
        assert outbox.backlog(store.db) == 0


def test_agent_killed_mid_drain_resumes_without_loss(
    tmp_path: Path, broker: Broker, device: SimDevice
) -> None:
    fill_outbox(device.store, 10_000)
    sub = Subscriber(broker.port, f"{PREFIX}/events/#", client_id="collector", persistent=True)
    agent = AgentProcess(device, tmp_path)
    sub.wait_for(lambda ms: len(ms) >= 3_000, timeout_s=60, what="3000 events")
    agent.kill()
    agent = AgentProcess(device, tmp_path)
    try:
        sub.wait_for(lambda ms: len(seqs_seen(sub)) >= 10_002, timeout_s=120, what="every event")
    finally:
        agent.terminate()
        sub.close()
    seen = seqs_seen(sub)
    assert seen == set(range(1, max(seen) + 1))


def test_the_drain_survives_a_store_locked_longer_than_its_timeout(
    tmp_path: Path, broker: Broker, device: SimDevice
) -> None:
    fill_outbox(device.store, 3_000)
    sub = Subscriber(broker.port, f"{PREFIX}/events/#", client_id="collector")
    blocker = sqlite3.connect(device.store, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock for 6 s (> 5 s timeout)
    agent = AgentProcess(device, tmp_path)
    try:
        sub.wait_for(lambda ms: len(ms) >= 100, timeout_s=30, what="the first window of events")
        assert agent.request(op="wait_log", text="MQTT drain failed", timeout=15)["ok"], agent.log()
        blocker.execute("ROLLBACK")
        sub.wait_for(lambda ms: len(seqs_seen(sub)) >= 3_001, timeout_s=60, what="every event")
    finally:
        blocker.close()
        agent.terminate()
        sub.close()
    assert "MQTT drain works again" in agent.log()
    with Store(device.store) as store:
        assert outbox.backlog(store.db) == 0
