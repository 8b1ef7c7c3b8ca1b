"""edge-provision site init, account add and broker config, against a real mosquitto."""

from __future__ import annotations

import ssl
import stat
import subprocess
import sys
import tarfile
import threading
from pathlib import Path

import click
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.signing import load_public_key
from provisioning.cli import cli
from provisioning.keys import SiteKeys
from provisioning.registry import Registry
from simulator.broker import free_port
from tests.broker import MOSQUITTO, Broker, Subscriber
from tests.provisioning.commands import provision

pytestmark = pytest.mark.services  # starts mosquitto, pcscd, an emulated card or a building

SITE = "edge/kamakura-city-hall"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_site_init_writes_private_keys_0600_and_never_prints_them(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = provision("site", "init", "--site", "kamakura-city-hall", "--dir", str(site))
    assert result.returncode == 0, result.stderr
    keys = SiteKeys(site / "keys")
    for path in (keys.card_key, keys.private("commands"), keys.private("credentials")):
        assert mode(path) == 0o600
        assert path.read_text().strip()[:16] not in result.stdout
    assert keys.load_private("commands").public_key() is not None
    load_public_key(keys.public("credentials"))  # devices can read the public half
    again = provision("site", "init", "--site", "kamakura-city-hall", "--dir", str(site))
    assert again.returncode == 2
    assert "lock every device out" in again.stderr
    registry = Registry(site / "registry.db")
    assert registry.site() == {"slug": "kamakura-city-hall", "timezone": "Asia/Tokyo"}
    assert [a["action"] for a in registry.audit()] == ["site init"]


def test_bad_site_id_and_time_zone_are_refused(tmp_path: Path) -> None:
    bad = provision("site", "init", "--site", "Kamakura City", "--dir", str(tmp_path / "a"))
    assert bad.returncode == 2
    assert "site init refused" in bad.stderr
    tz = provision(
        "site", "init", "--site", "kamakura", "--timezone", "Tokyo", "--dir", str(tmp_path / "b")
    )
    assert tz.returncode == 2


def test_generated_accounts_and_acl_work_in_mosquitto(tmp_path: Path) -> None:
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed; ./check installs it")
    site = tmp_path / "site"
    assert (
        provision("site", "init", "--site", "kamakura-city-hall", "--dir", str(site)).returncode
        == 0
    )
    for user, role in (
        ("gate-1f-east", "device"),
        ("stair-b-2f", "device"),
        ("console", "console"),
    ):
        added = provision("account", "add", user, "--role", role, "--dir", str(site))
        assert added.returncode == 0, added.stderr
        password = (site / "accounts" / f"{user}.password").read_text().strip()
        assert password not in added.stdout
        assert mode(site / "accounts" / f"{user}.password") == 0o600
    out = tmp_path / "broker-files"
    port = str(free_port())
    config = provision("broker", "config", "--dir", str(site), "--out", str(out), "--port", port)
    assert config.returncode == 0, config.stderr
    assert "max_queued_messages 1000000" in (out / "edge.conf").read_text()
    for user in ("gate-1f-east", "console"):
        assert (site / "accounts" / f"{user}.password").read_text().strip() not in (
            out / "passwd"
        ).read_text()

    broker = Broker(tmp_path / "broker", generated=out / "edge.conf")
    broker.start()
    try:

        def connect(user: str, password: str) -> tuple[mqtt.Client, object]:
            result: dict[str, object] = {}
            done = threading.Event()
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=f"t-{user}", protocol=mqtt.MQTTv5
            )
            if user:  # no username at all: an anonymous client
                client.username_pw_set(user, password)

            def on_connect(c: object, u: object, f: object, reason: object, p: object) -> None:
                result["reason"] = reason
                done.set()

            client.on_connect = on_connect
            client.connect("127.0.0.1", broker.port)
            client.loop_start()
            assert done.wait(10)
            return client, result["reason"]

        gate_password = (site / "accounts" / "gate-1f-east.password").read_text().strip()
        client, reason = connect("gate-1f-east", gate_password)
        assert not reason.is_failure  # type: ignore[attr-defined]
        acks: dict[int, int] = {}
        got = threading.Event()

        def on_publish(c: object, u: object, mid: int, reason: object, p: object) -> None:
            acks[mid] = reason.value  # type: ignore[attr-defined]
            got.set()

        client.on_publish = on_publish
        # The console listens to every device; it must never see the forged event.
        console_password = (site / "accounts" / "console.password").read_text().strip()
        watcher = Subscriber(
            broker.port,
            f"{SITE}/+/events/#",
            client_id="watcher",
            username="console",
            password=console_password,
        )
        info = client.publish(f"{SITE}/stair-b-2f/events/access", b'{"forged": true}', qos=1)
        assert got.wait(10)
        assert acks[info.mid] == 0x87  # another device's branch: not authorised
        got.clear()
        own = client.publish(f"{SITE}/gate-1f-east/events/access", b'{"own": true}', qos=1)
        assert got.wait(10)
        assert acks[own.mid] < 0x80
        watcher.wait_for(
            lambda ms: any(b"own" in m.payload for m in ms), what="the device's own event"
        )
        assert not any(b"forged" in m.payload for m in watcher.messages)  # after its own: never
        watcher.close()
        client.loop_stop()
        client.disconnect()
        wrong, reason = connect("gate-1f-east", "not-the-password")
        assert reason.is_failure  # type: ignore[attr-defined]
        wrong.loop_stop()
        anonymous, reason = connect("", "")
        assert reason.is_failure  # type: ignore[attr-defined]  # anonymous is refused
        anonymous.loop_stop()
        console_password = (site / "accounts" / "console.password").read_text().strip()
        console, reason = connect("console", console_password)
        assert not reason.is_failure  # type: ignore[attr-defined]
        console_acks: dict[int, int] = {}
        console_got = threading.Event()

        def on_console_publish(c: object, u: object, mid: int, reason: object, p: object) -> None:
            console_acks[mid] = reason.value  # type: ignore[attr-defined]
            console_got.set()

        console.on_publish = on_console_publish
        info = console.publish(f"{SITE}/gate-1f-east/credentials", b"{}", qos=1)
        assert console_got.wait(10)
        assert console_acks[info.mid] == 0x87  # the console may not publish credentials
        console.loop_stop()
    finally:
        broker.stop()
    registry = Registry(site / "registry.db")
    assert [a["action"] for a in registry.audit()] == [
        "site init",
        "account add",
        "account add",
        "account add",
        "broker config",
    ]


def test_device_ids_and_other_accounts_names_never_collide(tmp_path: Path) -> None:
    """A device's account is named after it: no console or operator may share its name."""
    site = tmp_path / "site"
    d = ("--dir", str(site))
    assert provision("site", "init", "--site", "kamakura-city-hall", *d).returncode == 0
    assert provision("account", "add", "console", "--role", "console", *d).returncode == 0
    assert provision("device", "add", "gate-1f-east", "--role", "gate", *d).returncode == 0
    assert provision("account", "add", "gate-1f-east", "--role", "device", *d).returncode == 0
    password = (site / "accounts" / "gate-1f-east.password").read_text()
    device_named_console = provision("device", "add", "console", "--role", "gate", *d)
    assert device_named_console.returncode == 2
    assert "console is the name of a console broker account" in device_named_console.stderr
    for role in ("console", "operator"):
        taken = provision("account", "add", "gate-1f-east", "--role", role, *d)
        assert taken.returncode == 2
        assert "exists as a device account" in taken.stderr
        assert "Traceback" not in taken.stderr
    assert (site / "accounts" / "gate-1f-east.password").read_text() == password  # untouched
    # A console account for a device id not yet given an account: refused too.
    assert provision("device", "add", "stair-b-2f", "--role", "door", *d).returncode == 0
    stair = provision("account", "add", "stair-b-2f", "--role", "operator", *d)
    assert stair.returncode == 2
    assert "stair-b-2f is a device id" in stair.stderr
    assert not (site / "accounts" / "stair-b-2f.password").exists()
    registry = Registry(site / "registry.db")
    assert {a["username"]: a["role"] for a in registry.accounts()} == {
        "console": "console",
        "gate-1f-east": "device",
    }
    registry.close()


def test_every_command_has_help() -> None:
    def walk(group: click.Group, prefix: list[str]) -> list[list[str]]:
        found = [prefix]
        for name, command in group.commands.items():
            if isinstance(command, click.Group):
                found += walk(command, [*prefix, name])
            else:
                found.append([*prefix, name])
        return found

    paths = walk(cli, [])
    assert ["device", "bundle"] in paths
    for path in paths:
        result = provision(*path, "--help")
        assert result.returncode == 0, path
        assert "Usage:" in result.stdout


def test_device_add_and_bundle(tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert (
        provision("site", "init", "--site", "kamakura-city-hall", "--dir", str(site)).returncode
        == 0
    )
    added = provision("device", "add", "gate-1f-east", "--role", "gate", "--dir", str(site))
    assert added.returncode == 0, added.stderr
    no_account = provision("device", "bundle", "gate-1f-east", "--dir", str(site))
    assert no_account.returncode == 2
    assert "account add gate-1f-east --role device" in no_account.stderr
    assert (
        provision(
            "account", "add", "gate-1f-east", "--role", "device", "--dir", str(site)
        ).returncode
        == 0
    )
    made = provision("device", "bundle", "gate-1f-east", "--dir", str(site))
    assert made.returncode == 0, made.stderr
    archive = site / "bundles" / "gate-1f-east.tar.gz"
    assert mode(archive) == 0o600
    with tarfile.open(archive) as tar:
        names = {m.name: m.mode for m in tar.getmembers()}
        config = tar.extractfile("etc/edge/agent.toml").read().decode()  # type: ignore[union-attr]
        commands_pub = tar.extractfile("etc/edge/commands.pub").read()  # type: ignore[union-attr]
    assert names["etc/edge/card-key"] == 0o600
    assert names["etc/edge/mqtt-password"] == 0o600
    assert 'id = "gate-1f-east"' in config
    assert 'username = "gate-1f-east"' in config
    assert commands_pub == (site / "keys" / "commands.pub").read_bytes()
    checked = tmp_path / "agent.toml"
    checked.write_text(config)
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "check", "--config", str(checked)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    broken = site / "devices" / "gate-1f-east.toml"
    broken.write_text(broken.read_text().replace("pin = 17", "pin = 40"))
    refused = provision("device", "bundle", "gate-1f-east", "--dir", str(site))
    assert refused.returncode == 2
    assert "GPIO 40 does not exist" in refused.stderr
    twice = provision("device", "add", "gate-1f-east", "--role", "gate", "--dir", str(site))
    assert twice.returncode == 2
    assert "already exists" in twice.stderr


def test_the_site_ca_secures_the_broker_and_goes_into_bundles(tmp_path: Path) -> None:
    site = tmp_path / "site"
    made = provision(
        "site", "init", "--site", "kamakura-city-hall", "--ca", "127.0.0.1", "--dir", str(site)
    )
    assert made.returncode == 0, made.stderr
    keys = site / "keys"
    assert mode(keys / "ca.key") == 0o600
    assert mode(keys / "broker-server.key") == 0o600
    for user, role in (("gate-1f-east", "device"),):
        assert provision("account", "add", user, "--role", role, "--dir", str(site)).returncode == 0
    assert (
        provision("device", "add", "gate-1f-east", "--role", "gate", "--dir", str(site)).returncode
        == 0
    )
    assert provision("device", "bundle", "gate-1f-east", "--dir", str(site)).returncode == 0
    with tarfile.open(site / "bundles" / "gate-1f-east.tar.gz") as tar:
        assert tar.extractfile("etc/edge/ca.crt").read() == (keys / "ca.crt").read_bytes()  # type: ignore[union-attr]
        assert "install.sh" in tar.getnames()
    out = tmp_path / "broker-files"
    port = str(free_port())
    config = provision("broker", "config", "--dir", str(site), "--out", str(out), "--port", port)
    assert config.returncode == 0, config.stderr
    conf = (out / "edge.conf").read_text()
    assert f"cafile {(keys / 'ca.crt').resolve()}" in conf
    broker = Broker(tmp_path / "broker", generated=out / "edge.conf")  # TLS as generated
    broker.start()
    try:
        password = (site / "accounts" / "gate-1f-east.password").read_text().strip()
        done = threading.Event()
        result: dict[str, object] = {}
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="tls-test", protocol=mqtt.MQTTv5
        )
        client.username_pw_set("gate-1f-east", password)
        client.tls_set(ca_certs=str(keys / "ca.crt"), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        client.on_connect = lambda c, u, f, reason, p: (result.update(reason=reason), done.set())
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        assert done.wait(10)
        assert not result["reason"].is_failure  # type: ignore[attr-defined]
        client.loop_stop()
        client.disconnect()
    finally:
        broker.stop()
