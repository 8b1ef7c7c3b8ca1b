"""Home Assistant's discovery prefix in the ACL: the one the rooms config names, never the root."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioning.broker import BrokerConfigError, acl
from provisioning.cli import cli

SITE = "kamakura-city-hall"
ACCOUNTS = {"rooms": "rooms", "home-assistant": "homeassistant"}


def block(text: str, user: str) -> list[str]:
    return text.split(f"user {user}\n")[1].split("\n\n", maxsplit=1)[0].splitlines()


def provision(tmp_path: Path, *args: str) -> tuple[int, str]:
    site = tmp_path / "site"
    runner = CliRunner()
    for step in (
        ("site", "init", "--site", SITE),
        ("account", "add", "rooms", "--role", "rooms"),
        ("account", "add", "home-assistant", "--role", "homeassistant"),
    ):
        done = runner.invoke(cli, [*step, "--dir", str(site)])
        assert done.exit_code == 0, done.output
    done = runner.invoke(
        cli, ["broker", "config", "--out", str(tmp_path / "broker"), *args, "--dir", str(site)]
    )
    return done.exit_code, done.output


def test_the_home_assistant_account_s_rights(tmp_path: Path) -> None:
    code, out = provision(tmp_path)
    assert code == 0, out
    assert block((tmp_path / "broker" / "acl").read_text(), "home-assistant") == [
        "topic read homeassistant/#",
        f"topic read edge/{SITE}/+/status",
        f"topic read edge/{SITE}/rooms/ha/#",
        "topic write homeassistant/status",
    ]


def test_a_configured_prefix_reaches_both_accounts(tmp_path: Path) -> None:
    code, out = provision(tmp_path, "--ha-prefix", "ha-kamakura")
    assert code == 0, out
    text = (tmp_path / "broker" / "acl").read_text()
    assert "homeassistant/" not in text
    assert block(text, "rooms")[-3:] == [
        "topic write ha-kamakura/binary_sensor/+/config",
        "topic write ha-kamakura/sensor/+/config",
        "topic read ha-kamakura/status",
    ]
    assert "topic read ha-kamakura/#" in block(text, "home-assistant")
    assert "topic write ha-kamakura/status" in block(text, "home-assistant")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--ha-prefix", "edge"), "first level of the MQTT root"),
        (("--root", "kamakura/edge", "--ha-prefix", "kamakura"), "first level of the MQTT root"),
        (("--ha-prefix", "#"), "Home Assistant prefix"),
        (("--ha-prefix", "home/assistant"), "Home Assistant prefix"),
        (("--ha-prefix", "$SYS"), "Home Assistant prefix"),
    ],
)
def test_a_prefix_that_would_open_other_topics_is_refused(
    tmp_path: Path, args: tuple[str, ...], words: str
) -> None:
    code, out = provision(tmp_path, *args)
    assert code == 2
    assert "broker config refused" in out
    assert words in out
    assert not (tmp_path / "broker" / "acl").exists()


def test_acl_itself_refuses_the_root_as_prefix() -> None:
    with pytest.raises(BrokerConfigError, match="would read every device's topics"):
        acl("edge", SITE, ACCOUNTS, ha_prefix="edge")


def test_the_guides_show_the_rights_broker_config_writes() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    operators = (docs / "operators.md").read_text(encoding="utf-8")
    written = acl("edge", SITE, ACCOUNTS)
    shown = operators.split("# homeassistant\n")[1].split("```")[0]
    assert f"# homeassistant\n{shown}" in written
    for line in block(written, "rooms")[-3:]:
        assert line.split()[-1] in operators
    guide = (docs / "home-assistant.md").read_text(encoding="utf-8")
    assert "edge-provision account add home-assistant --role homeassistant" in guide
    for right in ("`{p}/#`", "`{root}/{site}/+/status`", "`{root}/{site}/rooms/ha/#`"):
        assert right in guide
    assert "`{p}/binary_sensor/+/config` and `{p}/sensor/+/config`" in guide
