"""edge-provision bridge: what the site's bridge and the centre's ACL say, and what is refused."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from provisioning import bridge, broker
from provisioning.devices import ReservedIdError, check_device_id
from provisioning.registry import Registry
from tests.provisioning.commands import provision

PASSWORD = "not-a-real-password"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def site_bridge(**changes: object) -> str:
    args: dict[str, object] = {
        "root": "edge",
        "site": "kamakura",
        "host": "central.example.lan",
        "port": 8883,
        "ca_file": "/etc/mosquitto/central-ca.crt",
        "password": PASSWORD,
    }
    return bridge.site_bridge(**(args | changes))  # type: ignore[arg-type]


def test_the_site_bridge_is_mqtt5_over_verified_tls_with_its_own_account() -> None:
    lines = site_bridge().splitlines()
    connection = lines[lines.index("connection bridge-kamakura") :]
    for line in (
        "address central.example.lan:8883",
        "bridge_protocol_version mqttv50",
        "remote_clientid bridge-kamakura",
        "remote_username bridge-kamakura",
        f"remote_password {PASSWORD}",
        "bridge_cafile /etc/mosquitto/central-ca.crt",
        "bridge_insecure false",
        "cleansession false",
        "local_cleansession false",
        "try_private true",
        "notifications true",
        "notification_topic edge/kamakura/bridge/state",
    ):
        assert line in connection
    # Global settings come before the connection block, where mosquitto reads them as such.
    assert "max_queued_messages 1000000" in lines[: lines.index("connection bridge-kamakura")]


def test_exactly_the_contracts_topics_cross_each_way() -> None:
    crossing = [line for line in site_bridge().splitlines() if line.startswith("topic ")]
    assert crossing == [
        "topic edge/kamakura/+/status out 1",
        "topic edge/kamakura/+/events/# out 1",
        "topic edge/kamakura/+/occupancy/# out 1",
        "topic edge/kamakura/+/reply/# out 1",
        "topic edge/kamakura/+/cmd/# in 1",
        "topic edge/kamakura/+/credentials/# in 1",
        'topic "" out 0 $SYS/broker/store/messages/count edge/kamakura/bridge/stored',
    ]


def test_a_bridge_account_is_confined_to_its_own_site() -> None:
    acl = bridge.central_acl("edge", ["site-a", "site-b"], {"console-hq": "console"})
    block = acl.split("user bridge-site-a\n")[1].split("\n\n")[0].splitlines()
    assert all("site-a" in line for line in block)
    assert {line.split()[1] for line in block} == {"deny", "write", "read"}
    reads = [line for line in block if line.startswith("topic read")]
    assert reads == ["topic read edge/site-a/+/cmd/#", "topic read edge/site-a/+/credentials/#"]
    assert "topic deny edge/site-a/rooms/#" in block
    assert not [line for line in acl.splitlines() if line.startswith("pattern")]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"host": "central lan"}, "neither an IP address nor a host name"),
        ({"host": "central\nlisterner 1883"}, "neither an IP address nor a host name"),
        ({"host": "::1"}, "host name"),
        ({"port": 0}, "1-65535"),
        ({"ca_file": "/a path/ca.crt"}, "spaces"),
        ({"restart_s": (30, 5)}, "1 <= first <= most"),
        ({"site": "Site A"}, "not a valid id"),
    ],
)
def test_bad_bridge_settings_are_refused_with_the_fix(
    changes: dict[str, object], says: str
) -> None:
    with pytest.raises(ValueError, match=says):
        site_bridge(**changes)


def test_central_accounts_cannot_take_a_bridges_name() -> None:
    with pytest.raises(bridge.BridgeError, match="belong to the sites' bridges"):
        bridge.central_acl("edge", ["site-a"], {"bridge-site-a": "console"})
    with pytest.raises(bridge.BridgeError, match="role 'device' at the centre"):
        bridge.central_acl("edge", ["site-a"], {"gate-1": "device"})


def test_bridge_is_never_a_device_id() -> None:
    with pytest.raises(ReservedIdError, match="reserved"):
        check_device_id("bridge")
    assert check_device_id("bridge-2f") == "bridge-2f"


def test_the_commands_write_private_files_and_refuse_bad_input(tmp_path: Path) -> None:
    central, sites = tmp_path / "central", tmp_path / "sites"
    assert provision("bridge", "ca", "--dir", str(central), "--host", "10.0.0.5").returncode == 0
    for key in ("ca.key", "broker-server.key"):
        assert mode(central / "keys" / key) == 0o600
    again = provision("bridge", "ca", "--dir", str(central), "--host", "10.0.0.5")
    assert again.returncode == 2
    assert "never overwritten" in again.stderr
    for slug in ("site-a", "site-b"):
        assert provision("site", "init", "--site", slug, "--dir", str(sites / slug)).returncode == 0
    ca = str(central / "keys" / "ca.crt")
    out = tmp_path / "broker-a"
    common = ["--central-host", "central.example.lan", "--out", str(out)]
    made = provision("bridge", "site", "--dir", str(sites / "site-a"), "--ca-file", ca, *common)
    assert made.returncode == 0, made.stderr
    password = (sites / "site-a" / "bridge" / "password").read_text().strip()
    assert mode(sites / "site-a" / "bridge" / "password") == 0o600
    assert mode(out / "bridge.conf") == 0o640
    assert password not in made.stdout + made.stderr
    again = provision("bridge", "site", "--dir", str(sites / "site-a"), "--ca-file", ca, *common)
    assert (sites / "site-a" / "bridge" / "password").read_text().strip() == password
    registry = Registry(sites / "site-a" / "registry.db")
    assert [a["action"] for a in registry.audit()].count("bridge site") == 2
    registry.close()
    not_a_ca = str(sites / "site-a" / "registry.db")
    bad = provision(
        "bridge", "site", "--dir", str(sites / "site-b"), "--ca-file", not_a_ca, *common
    )
    assert bad.returncode == 2
    assert "holds no PEM certificate" in bad.stderr
    assert "Traceback" not in bad.stderr
    central_out = tmp_path / "broker-central"
    made = provision(
        "bridge", "central", "--sites", str(sites), "--dir", str(central),
        "--out", str(central_out), "--console", "console-hq",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "site-b" in made.stderr  # named: no bridge yet, left out
    passwd = (central_out / "passwd").read_text()
    assert passwd.startswith("bridge-site-a:$7$")
    assert password not in passwd
    assert "user bridge-site-b" not in (central_out / "acl").read_text()
    assert "cafile " in (central_out / "edge.conf").read_text()  # TLS from bridge ca
    assert mode(central / "accounts" / "console-hq.password") == 0o600


def hashed(password: str) -> str:
    return broker.password_hash(password, iterations=1000)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "bridge-site-b:{h}\n",  # another site's bridge
        "console-hq:{h}\n",  # a console account
        "bridge-site-a:{h}\nbridge-site-b:{h}\n",  # its own line, then another's
        "bridge-site-a:{h}\nbridge-site-a:{h}\n",  # its own, twice
        "bridge-site-a:plain-password\n",
        "bridge-site-a:$7$1000$c2FsdA==$x y\n",
    ],
)
def test_a_sites_passwd_line_may_name_only_its_own_bridge(text: str, tmp_path: Path) -> None:
    path = tmp_path / "central.passwd"
    with pytest.raises(bridge.BridgeError, match=f"{path} must hold exactly one line"):
        bridge.central_passwd_line("site-a", text.format(h=hashed("x")), path)
    good = f"bridge-site-a:{hashed('x')}\n"
    assert bridge.central_passwd_line("site-a", f"\n{good}\n", path) == good


def test_the_central_passwd_never_names_a_user_twice() -> None:
    lines = [f"bridge-site-a:{hashed('a')}\n", f"console-hq:{hashed('b')}\n"]
    assert bridge.central_passwd(lines) == "".join(sorted(lines))
    with pytest.raises(bridge.BridgeError, match="bridge-site-a would be in the central passwd"):
        bridge.central_passwd([*lines, f"bridge-site-a:{hashed('evil')}\n"])


def test_central_refuses_a_site_file_naming_another_account_and_plain_text(
    tmp_path: Path,
) -> None:
    central, sites = tmp_path / "central", tmp_path / "sites"
    assert provision("bridge", "ca", "--dir", str(central), "--host", "10.0.0.5").returncode == 0
    for slug in ("site-a", "site-b"):
        assert provision("site", "init", "--site", slug, "--dir", str(sites / slug)).returncode == 0
        made = provision(
            "bridge", "site", "--dir", str(sites / slug), "--central-host", "central.lan",
            "--ca-file", str(central / "keys" / "ca.crt"), "--out", str(tmp_path / slug),
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
    out = tmp_path / "broker-central"
    args = ["bridge", "central", "--sites", str(sites), "--out", str(out), "--console", "hq"]
    # Without bridge ca's keys: refused with the fix, unless plain text on loopback is asked.
    plain = provision(*args, "--dir", str(tmp_path / "no-keys"))
    assert plain.returncode == 2
    assert "run `edge-provision bridge ca" in plain.stderr
    assert not (out / "edge.conf").exists()
    loopback = provision(*args, "--dir", str(tmp_path / "no-keys"), "--plain-loopback")
    assert loopback.returncode == 0, loopback.stderr
    settings = (out / "edge.conf").read_text()
    assert "listener 8883 127.0.0.1\n" in settings
    assert "cafile" not in settings
    # Whoever writes site-b's directory adds a line for site-a's bridge (sorted after it).
    evil = sites / "site-b" / "bridge" / "central.passwd"
    evil.write_text(evil.read_text() + f"bridge-site-a:{hashed('evil')}\n")
    (out / "passwd").unlink()
    taken = provision(*args, "--dir", str(central))
    assert taken.returncode == 2
    assert f"{evil} must hold exactly one line bridge-site-b:$7$" in taken.stderr
    assert "Traceback" not in taken.stderr
    assert not (out / "passwd").exists()
