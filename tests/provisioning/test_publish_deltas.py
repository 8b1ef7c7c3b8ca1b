"""A revocation goes out as a delta of a few hundred bytes per device; a device that missed
many publishes converges. Real parts: mosquitto with edge-provision's accounts and ACL,
agents in their own processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlite_utils import Database

from edge.link.topics import status_filter
from edge.store.credentials import SqliteCredentials
from firmware_config.model import MqttConfig
from provisioning.credential_sets import Built
from provisioning.publish import Outcome, build_all, commit_bases, send
from provisioning.registry import Registry, change_cards
from provisioning.rules import add_rule
from tests.broker import Broker, Subscriber
from tests.edge.agent_fixtures import SimDevice, sim_config
from tests.edge.sim_process import AgentProcess
from tests.provisioning.commands import provision
from tests.provisioning.test_publish import set_up_site, site_broker

pytestmark = pytest.mark.services  # starts mosquitto and agents

SITE = "kamakura-city-hall"
DEVICES = ("gate-1f-east", "gate-1f-west")
SHARE = 1.0  # the test site has three cards: its deltas are a large share of a snapshot


def two_gates(tmp_path: Path) -> Path:
    site = set_up_site(tmp_path)
    for step in [
        ("account", "add", "gate-1f-west", "--role", "device"),
        ("device", "add", "gate-1f-west", "--role", "gate"),
    ]:
        result = provision(*step, "--dir", str(site))
        assert result.returncode == 0, (step, result.stderr)
    return site


def agent(site: Path, tmp_path: Path, port: int, device: str) -> SimDevice:
    folder = tmp_path / device
    folder.mkdir(exist_ok=True)
    sim = sim_config(folder, broker_port=port)
    text = sim.config.read_text().replace('id = "gate-1f-east"', f'id = "{device}"', 1)
    password = site / "accounts" / f"{device}.password"
    sim.config.write_text(text + f'username = "{device}"\npassword_file = "{password}"\n')
    (folder / "credentials.pub").write_bytes((site / "keys" / "credentials.pub").read_bytes())
    (folder / "card-key").write_bytes((site / "keys" / "card-key").read_bytes())
    return sim


def publish(site: Path, port: int, wait_s: float = 30.0) -> tuple[list[Built], Outcome]:
    config = MqttConfig(
        host="127.0.0.1",
        port=port,
        username="operator",
        password_file=site / "accounts" / "operator.password",
    )
    registry = Registry(site / "registry.db")
    try:
        built = build_all(registry, site, delta_share=SHARE)
        outcome = send(config, SITE, built, "operator-test", wait_s)
        commit_bases(registry, built, outcome)
    finally:
        registry.close()
    return built, outcome


def tap(process: AgentProcess, n: int) -> dict[str, object]:
    card = f"0114A1B2C3D4E5F{n}"
    return process.request(op="tap", reader="gate-east-in", technology="felica", id=card)


def statuses(site: Path, port: int) -> Subscriber:
    """Watch every device's status, as the operator who publishes may."""
    password = (site / "accounts" / "operator.password").read_text().strip()
    return Subscriber(
        port,
        status_filter("edge", SITE),
        client_id="operator-watch",
        username="operator",
        password=password,
    )


def reports(watch: Subscriber, device: str, version: int) -> None:
    """Wait until `device`'s status says it holds credentials `version`."""

    def holds(messages: list[Any]) -> bool:
        mine = [m for m in messages if m.topic.split("/")[2] == device and m.payload]
        held = json.loads(mine[-1].payload).get("credentials") if mine else None
        return isinstance(held, dict) and held.get("version") == version

    watch.wait_for(holds, 30, f"{device} to report credentials v{version}")


def stored(sim: SimDevice) -> tuple[int, list[tuple[object, ...]], list[tuple[object, ...]]]:
    db = Database(sim.store)
    try:
        cards = db.execute("SELECT * FROM credentials ORDER BY ref").fetchall()
        deny = db.execute("SELECT * FROM deny ORDER BY ref").fetchall()
        return SqliteCredentials(db).version(), cards, deny
    finally:
        db.close()


def start(sims: dict[str, SimDevice], tmp_path: Path, device: str) -> AgentProcess:
    return AgentProcess(sims[device], tmp_path / device)


def test_a_revocation_reaches_every_gate_as_a_small_delta_and_the_card_is_denied(
    tmp_path: Path,
) -> None:
    site = two_gates(tmp_path)
    broker: Broker = site_broker(site, tmp_path)
    sims = {d: agent(site, tmp_path, broker.port, d) for d in DEVICES}
    agents = {d: start(sims, tmp_path, d) for d in DEVICES}
    try:
        built, outcome = publish(site, broker.port)
        assert outcome.late == []
        assert [b.kind for b in built] == ["full", "full"]
        assert tap(agents["gate-1f-east"], 7)["decision"] == "granted"
        assert provision("cards", "revoke", "S001", "--dir", str(site)).returncode == 0
        built, outcome = publish(site, broker.port)
        assert outcome.late == []
        assert [(b.kind, b.base, b.cards) for b in built] == [("delta", 1, 1)] * 2
        assert all(len(b.data) < 1000 for b in built)
        for device, process in agents.items():
            denied = tap(process, 6)
            assert (denied["decision"], denied["reason"]) == ("denied", "revoked"), device
        assert tap(agents["gate-1f-west"], 7)["decision"] == "granted"  # one tap per card
    finally:
        for process in agents.values():
            process.terminate()
        broker.stop()


def test_a_gate_offline_through_thirty_publishes_converges_to_the_same_set(
    tmp_path: Path,
) -> None:
    site = two_gates(tmp_path)
    broker = site_broker(site, tmp_path)
    sims = {d: agent(site, tmp_path, broker.port, d) for d in DEVICES}
    agents = {d: start(sims, tmp_path, d) for d in DEVICES}
    try:
        assert publish(site, broker.port)[1].late == []
        agents.pop("gate-1f-west").terminate()
        kinds = []
        for n in range(30):
            registry = Registry(site / "registry.db")  # in-process: 30 publishes in seconds
            try:
                status = "revoked" if n % 2 == 0 else "active"
                change_cards(registry, "S002", status, may_unrevoke=True)
                if n == 12:  # a rule changes: every device gets a new base, west is behind it
                    add_rule(registry, "visitors", ["gate-east"], "always")
                if n == 25:
                    change_cards(registry, "S001", "lost")
            finally:
                registry.close()
            built, _ = publish(site, broker.port, wait_s=0.2)
            kinds.append({b.device: b.kind for b in built})
        assert kinds[12] == {"gate-1f-east": "full", "gate-1f-west": "full"}
        assert kinds[29] == {"gate-1f-east": "delta", "gate-1f-west": "delta"}
        east, west = sims["gate-1f-east"], sims["gate-1f-west"]
        watch = statuses(site, broker.port)
        try:
            reports(watch, "gate-1f-east", 31)
            agents["gate-1f-west"] = start(sims, tmp_path, "gate-1f-west")
            reports(watch, "gate-1f-west", 31)
        finally:
            watch.close()
        assert stored(west) == stored(east)
        for process in agents.values():
            assert tap(process, 6)["decision"] == "denied"  # lost on the 26th
            assert tap(process, 7)["decision"] == "granted"  # reinstated on the 30th
            assert tap(process, 8)["decision"] == "granted"  # visitors since the 13th
    finally:
        for process in agents.values():
            process.terminate()
        broker.stop()
