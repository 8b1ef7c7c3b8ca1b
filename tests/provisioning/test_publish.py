"""From the registry to the door: rules and HR's CSV published to a running agent over a
mosquitto configured by edge-provision, and as files for a standalone device."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.signing import load_public_key
from edge.snapshot import parse
from tests.broker import Broker
from tests.edge.agent_fixtures import SimDevice, sim_config
from tests.edge.sim_process import AgentProcess
from tests.provisioning.commands import provision

pytestmark = pytest.mark.services  # starts mosquitto, pcscd, an emulated card or a building

CSV = (
    "staff_no,name,department,card_tech,card_id,groups,valid_from,valid_until\n"
    "S001,佐藤 花子,総務課,felica,0114A1B2C3D4E5F6,staff,,\n"
    "S002,鈴木 太郎,警備,felica,0114A1B2C3D4E5F7,security,,\n"
    "S003,高橋 健太,来庁者,felica,0114A1B2C3D4E5F8,visitors,,\n"
)


def set_up_site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    steps = [
        ("site", "init", "--site", "kamakura-city-hall"),
        ("account", "add", "gate-1f-east", "--role", "device"),
        ("account", "add", "operator", "--role", "operator"),
        ("device", "add", "gate-1f-east", "--role", "gate"),
        (
            "rules",
            "schedule",
            "office",
            "--days",
            "all",
            "--hours",
            "00:00-24:00",
            "--holidays",
            "00:00-24:00",
        ),
        ("rules", "add", "staff", "--doors", "gate-east", "--schedule", "office"),
        ("rules", "add", "security", "--doors", "gate-east,stair-b-2f"),
        ("rules", "override", "security"),
    ]
    for step in steps:
        result = provision(*step, "--dir", str(site))
        assert result.returncode == 0, (step, result.stderr)
    csv = tmp_path / "staff.csv"
    csv.write_text(CSV, encoding="utf-8")
    assert provision("cards", "import", str(csv), "--dir", str(site)).returncode == 0
    return site


def agent_for(site: Path, tmp_path: Path, broker_port: int) -> Path:
    agent_dir = tmp_path / "device"
    agent_dir.mkdir()
    device = sim_config(agent_dir, broker_port=broker_port)
    for name in ("card-key", "credentials.pub", "commands.pub"):
        shutil.copy(site / "keys" / name, agent_dir / name)
    (agent_dir / "card-key").chmod(0o600)
    password = site / "accounts" / "gate-1f-east.password"
    device.config.write_text(
        device.config.read_text() + f'username = "gate-1f-east"\npassword_file = "{password}"\n'
    )
    return agent_dir


def site_broker(site: Path, tmp_path: Path) -> Broker:
    """Start mosquitto on the password and ACL files edge-provision generated for the site."""
    files = tmp_path / "broker-files"
    assert provision("broker", "config", "--dir", str(site), "--out", str(files)).returncode == 0
    workdir = tmp_path / "broker"
    workdir.mkdir()
    broker = Broker(workdir, acl=(files / "acl").read_text(), passwords=files / "passwd")
    broker.start()
    return broker


def test_publish_reaches_the_device_and_the_door_decides_by_it(tmp_path: Path) -> None:
    site = set_up_site(tmp_path)
    broker = site_broker(site, tmp_path)
    agent_dir = agent_for(site, tmp_path, broker.port)
    agent = AgentProcess(SimDevice(agent_dir / "agent.toml", agent_dir / "agent.db"), agent_dir)
    try:
        result = provision(
            "publish", "--dir", str(site), "--port", str(broker.port), "--wait", "30"
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "gate-1f-east: applied" in result.stdout
        assert "gate-1f-east: 2 cards" in result.stderr  # staff and security; not the visitor

        def tap(n: int) -> dict[str, object]:
            card = f"0114A1B2C3D4E5F{n}"
            return agent.request(op="tap", reader="gate-east-in", technology="felica", id=card)

        assert tap(6)["decision"] == "granted"
        assert tap(8)["reason"] == "unknown_card"  # visitors have no rule at this door
        status = provision("device", "status", "--dir", str(site), "--port", str(broker.port))
        assert status.returncode == 0, status.stdout + status.stderr
        assert "gate-1f-east" in status.stdout
        assert "online" in status.stdout
        assert "credentials v1 (0.0 h old)" in status.stdout
        assert "clock synced" in status.stdout
        listed = provision("device", "list", "--dir", str(site)).stdout
        assert "v1 (2 cards)" in listed
    finally:
        agent.terminate()
    after = provision("device", "status", "--dir", str(site), "--port", str(broker.port))
    broker.stop()
    assert after.returncode == 1  # the agent stopped: its status says offline
    assert "offline" in after.stdout


def test_publish_to_files_for_a_standalone_device(tmp_path: Path) -> None:
    site = set_up_site(tmp_path)
    out = tmp_path / "snapshots"
    result = provision("publish", "--dir", str(site), "--out", str(out))
    assert result.returncode == 0, result.stderr
    snapshot = out / "gate-1f-east.v1.json"
    agent_dir = agent_for(site, tmp_path, 9)
    loaded = subprocess.run(
        [
            sys.executable,
            "-m",
            "edge.cli",
            "credentials",
            "load",
            str(snapshot),
            "--config",
            str(agent_dir / "agent.toml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert "applied credential set v1: 2 cards" in loaded.stdout
    again = provision("publish", "--dir", str(site), "--out", str(out))
    assert "(v2)" in again.stdout  # versions only go up


def test_a_lost_card_is_denied_with_an_alarm_after_the_next_publish(tmp_path: Path) -> None:
    site = set_up_site(tmp_path)
    out = tmp_path / "snapshots"
    lost = provision("cards", "lost", "S001", "--dir", str(site))
    assert lost.returncode == 0, lost.stderr
    assert "1 card(s) of S001 now lost" in lost.stdout
    listing = provision("cards", "list", "--dir", str(site)).stdout
    assert "S001" in listing
    assert "lost" in listing
    assert "0114A1B2C3D4E5F6" not in listing
    assert provision("publish", "--dir", str(site), "--out", str(out)).returncode == 0
    agent_dir = agent_for(site, tmp_path, 9)
    load = [
        sys.executable,
        "-m",
        "edge.cli",
        "credentials",
        "load",
        str(out / "gate-1f-east.v1.json"),
    ]
    assert (
        subprocess.run([*load, "--config", str(agent_dir / "agent.toml")], check=False).returncode
        == 0
    )
    agent = AgentProcess(SimDevice(agent_dir / "agent.toml", agent_dir / "agent.db"), agent_dir)
    try:
        reply = agent.request(
            op="tap", reader="gate-east-in", technology="felica", id="0114A1B2C3D4E5F6"
        )
        assert reply["reason"] == "revoked"
    finally:
        agent.terminate()
    with sqlite3.connect(agent_dir / "agent.db") as conn:
        types = [json.loads(p)["type"] for (p,) in conn.execute("SELECT payload FROM outbox")]
    assert "lost_card_used" in types
    unknown = provision("cards", "revoke", "S999", "--dir", str(site))
    assert unknown.returncode == 2
    assert "no staff" in unknown.stderr


def test_unknown_groups_are_pointed_out(tmp_path: Path) -> None:
    site = set_up_site(tmp_path)
    csv = tmp_path / "typo.csv"
    csv.write_text(CSV.splitlines()[0] + "\nS050,森 花子,総務課,felica,0114A1B2C3D4E5FE,stafff,,\n")
    result = provision("cards", "import", str(csv), "--dir", str(site))
    assert result.returncode == 0
    assert "no rule uses the groups stafff (a typo?)" in result.stderr


def test_an_operators_publish_revokes_a_card_at_the_next_tap(tmp_path: Path) -> None:
    site = set_up_site(tmp_path)
    broker = site_broker(site, tmp_path)
    agent_dir = agent_for(site, tmp_path, broker.port)
    agent = AgentProcess(SimDevice(agent_dir / "agent.toml", agent_dir / "agent.db"), agent_dir)
    try:
        assert provision("publish", "--dir", str(site), "--port", str(broker.port)).returncode == 0
        card = "0114A1B2C3D4E5F6"
        assert (
            agent.request(op="tap", reader="gate-east-in", technology="felica", id=card)["decision"]
            == "granted"
        )
        assert provision("cards", "revoke", "S001", "--dir", str(site)).returncode == 0
        published = provision("publish", "--dir", str(site), "--port", str(broker.port))
        assert published.returncode == 0, published.stderr
        reply = agent.request(op="tap", reader="gate-east-out", technology="felica", id=card)
        assert reply["reason"] == "revoked"  # publish waited for the device to apply v2
    finally:
        agent.terminate()
        broker.stop()


def test_closure_days_and_anti_passback_from_the_registry_reach_the_door(tmp_path: Path) -> None:
    site = set_up_site(tmp_path)
    for step in (
        ("rules", "closure", "12-29", "01-03"),
        ("rules", "antipassback", "staff-area", "--mode", "off"),
    ):
        result = provision(*step, "--dir", str(site))
        assert result.returncode == 0, (step, result.stderr)
    out = tmp_path / "snapshots"
    assert provision("publish", "--dir", str(site), "--out", str(out)).returncode == 0
    data = (out / "gate-1f-east.v1.json").read_bytes()
    snapshot = parse(
        data,
        load_public_key(site / "keys" / "credentials.pub"),
        site="kamakura-city-hall",
        device="gate-1f-east",
    )
    assert snapshot.policy.closure_days == ("01-03", "12-29")
    assert snapshot.policy.anti_passback == {"staff-area": ("off", None)}

    agent_dir = agent_for(site, tmp_path, 9)
    config = agent_dir / "agent.toml"
    config.write_text(config.read_text().replace('kind = "sim"', 'kind = "sim"\ndebounce_s = 0.0'))
    load = [
        sys.executable,
        "-m",
        "edge.cli",
        "credentials",
        "load",
        str(out / "gate-1f-east.v1.json"),
    ]
    assert subprocess.run([*load, "--config", str(config)], check=False).returncode == 0
    agent = AgentProcess(SimDevice(config, agent_dir / "agent.db"), agent_dir)
    try:

        def enter() -> object:
            reply = agent.request(
                op="tap", reader="gate-east-in", technology="felica", id="0114A1B2C3D4E5F6"
            )
            agent.request(op="pin", pin=27, high=True)  # through the door...
            agent.request(op="pin", pin=27, high=False)
            return reply["reason"]

        assert enter() == "granted"
        # The device's configuration says hard anti-passback here; the registry says off.
        assert enter() == "granted"
    finally:
        agent.terminate()
    bad = provision("rules", "closure", "13-45", "--dir", str(site))
    assert bad.returncode == 2
    assert "MM-DD" in bad.stderr


def test_a_hostile_status_is_shown_unreadable_and_the_tool_goes_on(tmp_path: Path) -> None:
    """A device's retained status nested past Python's recursion limit once raised on paho's
    thread, which stopped the client silently; the operator now sees it named."""

    site = set_up_site(tmp_path)
    broker = site_broker(site, tmp_path)
    try:
        gate = mqtt.Client(CallbackAPIVersion.VERSION2, "gate-1f-east", protocol=mqtt.MQTTv5)
        gate.username_pw_set(
            "gate-1f-east", (site / "accounts" / "gate-1f-east.password").read_text().strip()
        )
        gate.connect("127.0.0.1", broker.port)
        gate.loop_start()
        sent = gate.publish(
            "edge/kamakura-city-hall/gate-1f-east/status", b"[" * 100_000, qos=1, retain=True
        )
        sent.wait_for_publish(10)
        gate.disconnect()
        gate.loop_stop()
        status = provision("device", "status", "--dir", str(site), "--port", str(broker.port))
    finally:
        broker.stop()
    assert status.returncode == 1, status.stdout + status.stderr
    assert "gate-1f-east" in status.stdout
    assert "unreadable" in status.stdout
    assert "Traceback" not in status.stdout + status.stderr
