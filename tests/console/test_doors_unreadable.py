"""A door action never silently misses a device: unusable configurations are named, and an
action with no device to go to is refused (page and CLI) instead of reading as done.

Real parts: device configurations as edge-provision writes them, the console's app under
uvicorn, the CLI; no broker is needed (every refusal comes before anything is sent).
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from console.actions import ActionError, Site
from console.claims import Registry
from console.cli import cli
from console.log import CentralLog
from console.users import add_user
from console.web import Settings, create_app
from console.web_context import BrokerAccess
from simulator.broker import free_port
from tests.console.test_claims import SITE, gate_toml, provision
from tests.console.web_fixtures import PASSWORDS, Client, serve


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """Two good gates, one broken configuration, one of another site."""
    site = provision(tmp_path / "site", gates=("gate-1", "gate-2"))
    (site / "devices" / "gate-3.toml").write_text("[device\nid = ")
    (site / "devices" / "gate-4.toml").write_text(gate_toml("gate-4", "other-site"))
    return site


def test_a_lockdown_names_the_devices_it_cannot_reach(site_dir: Path) -> None:
    site = Site(Registry(site_dir, SITE))
    assert site.lockdown_devices() == ["gate-1", "gate-2"]
    unreadable = site.unreadable()
    assert sorted(unreadable) == ["gate-3", "gate-4"]
    assert unreadable["gate-3"].startswith("gate-3.toml is not valid")
    assert unreadable["gate-4"] == f"gate-4.toml is for other-site/gate-4, not {SITE}/gate-4"
    assert "gate-3 (gate-3.toml is not valid" in site.unreached()


def test_a_wrong_site_selects_nothing_and_says_why(site_dir: Path) -> None:
    site = Site(Registry(site_dir, "wrong-site"))
    assert site.lockdown_devices() == []
    error = str(site.none_to_send("lockdown"))
    assert "no device to send it to" in error
    assert f"gate-1.toml is for {SITE}/gate-1, not wrong-site/gate-1" in error


def test_a_zone_only_outside_doors_is_no_zone_to_lock_down(site_dir: Path) -> None:
    site = Site(Registry(site_dir, SITE))
    assert site.lockdown_devices(["staff-area"]) == ["gate-1", "gate-2"]
    with pytest.raises(ActionError, match="no zone 'lobby' behind any door; zones: staff-area"):
        site.lockdown_devices(["lobby"])


def test_a_forgiveness_goes_to_the_devices_with_a_door_on_either_side_of_its_zone(
    site_dir: Path,
) -> None:
    site = Site(Registry(site_dir, SITE))
    assert site.passback_devices() == ["gate-1", "gate-2"]
    assert site.passback_devices("lobby") == ["gate-1", "gate-2"]
    with pytest.raises(ActionError, match="no zone 'roof' at any door; zones: lobby, staff-area"):
        site.passback_devices("roof")


def command_key(path: Path) -> Path:
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    path.write_bytes(pem)
    os.chmod(path, 0o600)
    return path


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    path = tmp_path / "log.db"
    log = CentralLog(path)
    add_user(log, "boss", "manager", PASSWORDS["boss"], by="test")
    log.close()
    return path


def run(tmp_path: Path, log_path: Path, site_dir: Path, *args: str) -> Result:
    password = tmp_path / "boss.password"
    password.write_text(PASSWORDS["boss"])
    common = [
        "--db", str(log_path), "--user", "boss", "--password-file", str(password),
        "--site-dir", str(site_dir), "--broker-host", "127.0.0.1",
        "--broker-port", str(free_port()), "--broker-user", "console-cli",
        "--command-key", str(command_key(tmp_path / "console.key")),
    ]  # fmt: skip
    return CliRunner().invoke(cli, [*args, *common], catch_exceptions=False)


@pytest.mark.parametrize(
    "args",
    [
        ["lockdown", "on", "--yes", "--site", "wrong-site"],
        ["fire-reset", "--site", "wrong-site"],
        ["fire-reset", "--site", SITE],  # no device of this site has a fire input
    ],
)
def test_the_cli_refuses_an_action_with_no_device(
    tmp_path: Path, log_path: Path, site_dir: Path, args: list[str]
) -> None:
    result = run(tmp_path, log_path, site_dir, *args)
    assert result.exit_code == 2, result.output
    assert "no device to send it to" in result.stderr
    assert "gate-3 (gate-3.toml is not valid" in result.stderr


@pytest.fixture
def app_url(tmp_path: Path, log_path: Path, site_dir: Path) -> Iterator[str]:
    (site_dir / "registry.db").touch()
    settings = Settings(
        log_path,
        None,
        tmp_path / "session.key",
        secure_cookies=False,
        site_dir=site_dir,
        broker=BrokerAccess("127.0.0.1", free_port(), SITE, "console-doors"),
        command_key=command_key(tmp_path / "web.key"),
    )
    with serve(create_app(settings)) as url:
        yield url


def test_the_page_names_unreachable_devices_before_a_lockdown(app_url: str) -> None:
    client = Client(app_url)
    client.login("boss")
    asked = client.post("/doors/lockdown", {"on": "on", "csrf": client.csrf("/doors")})
    assert asked.status == 200
    shown = html.unescape(asked.text)
    assert "<li>gate-1</li>" in shown
    assert 'id="unreached"' in shown
    assert "gate-4 (gate-4.toml is for other-site/gate-4" in shown


def test_the_page_refuses_an_action_with_no_device(app_url: str) -> None:
    client = Client(app_url)
    client.login("boss")
    token = client.csrf("/doors")
    refused = client.post("/doors/fire-reset", {"csrf": token})  # no fire input anywhere
    assert refused.status == 409
    assert "no device to send it to" in html.unescape(refused.text)
    assert "gate-3 (gate-3.toml is not valid" in html.unescape(refused.text)


def test_a_door_action_with_a_wrong_site_names_the_unusable_configurations(
    tmp_path: Path, log_path: Path, site_dir: Path
) -> None:
    result = run(tmp_path, log_path, site_dir, "door", "unlock", "gate-1", "--site", "wrong-site")
    assert result.exit_code == 2, result.output
    assert "no door 'gate-1' on this site; doors: none provisioned" in result.stderr
    assert "gate-1 (gate-1.toml is for test-hall/gate-1, not wrong-site/gate-1)" in result.stderr
