"""A zone's anti-passback is one setting for the whole site: the gates of a zone share
positions, so a publish refuses device configurations that disagree on it, unless the site
policy sets it (mode, forgive time and offline fallback, carried in the signed policy)."""

from __future__ import annotations

from pathlib import Path

from edge.policy_json import policy_from_json, policy_to_json
from edge.signing import load_public_key
from edge.snapshot import parse
from tests.provisioning.commands import provision

SITE = "kamakura-city-hall"


def two_gates(tmp_path: Path) -> Path:
    """A site with two gates made from the example gate (staff-area hard, forgiven at 03:00)."""
    site = tmp_path / "site"
    for step in (
        ("site", "init", "--site", SITE),
        ("device", "add", "gate-a", "--role", "gate"),
        ("device", "add", "gate-b", "--role", "gate"),
    ):
        result = provision(*step, "--dir", str(site))
        assert result.returncode == 0, (step, result.stderr)
    for gate in ("gate-a", "gate-b"):
        path = site / "devices" / f"{gate}.toml"
        path.write_text(path.read_text().replace('id = "gate-1f-east"', f'id = "{gate}"', 1))
    return site


def soften(site: Path, gate: str, key: str, value: str) -> None:
    path = site / "devices" / f"{gate}.toml"
    text = path.read_text()
    marker = 'anti_passback = "hard"\n'
    assert marker in text
    if key == "anti_passback":
        text = text.replace(marker, f"anti_passback = {value}\n", 1)
    else:
        text = text.replace(marker, f"{marker}{key} = {value}\n", 1)
    path.write_text(text)


def publish(site: Path, out: Path) -> tuple[int, str]:
    result = provision("publish", "--dir", str(site), "--out", str(out))
    return result.returncode, result.stdout + result.stderr


def test_gates_that_agree_publish(tmp_path: Path) -> None:
    site = two_gates(tmp_path)
    code, text = publish(site, tmp_path / "out")
    assert code == 0, text


def test_gates_that_disagree_are_refused_naming_the_zone_devices_values_and_fix(
    tmp_path: Path,
) -> None:
    site = two_gates(tmp_path)
    soften(site, "gate-b", "anti_passback_offline", '"soft"')
    code, text = publish(site, tmp_path / "out")
    assert code == 2
    assert "zone staff-area" in text
    assert "gate-a: anti_passback=hard forgive_at=03:00 offline=hard" in text
    assert "gate-b: anti_passback=hard forgive_at=03:00 offline=soft" in text
    assert "edge-provision rules antipassback staff-area" in text
    assert not (tmp_path / "out").exists()  # nothing built


def test_a_different_forgive_time_or_mode_is_refused_too(tmp_path: Path) -> None:
    site = two_gates(tmp_path)
    soften(site, "gate-a", "anti_passback", '"soft"')
    code, text = publish(site, tmp_path / "out")
    assert code == 2
    assert "gate-a: anti_passback=soft" in text
    site2 = two_gates(tmp_path / "second")
    path = site2 / "devices" / "gate-b.toml"
    path.write_text(path.read_text().replace("anti_passback_forgive_at = 03:00:00", "", 1))
    code, text = publish(site2, tmp_path / "out2")
    assert code == 2
    assert "gate-b: anti_passback=hard forgive_at=none" in text


def test_the_site_policy_settles_the_zone_and_carries_the_offline_fallback(
    tmp_path: Path,
) -> None:
    site = two_gates(tmp_path)
    soften(site, "gate-b", "anti_passback_offline", '"soft"')
    result = provision(
        "rules",
        "antipassback",
        "staff-area",
        "--mode",
        "hard",
        "--forgive-at",
        "04:00",
        "--offline",
        "soft",
        "--dir",
        str(site),
    )
    assert result.returncode == 0, result.stderr
    assert "soft when cut off" in result.stdout
    code, text = publish(site, tmp_path / "out")
    assert code == 0, text
    for gate in ("gate-a", "gate-b"):
        snapshot = parse(
            (tmp_path / "out" / f"{gate}.v1.json").read_bytes(),
            load_public_key(site / "keys" / "credentials.pub"),
            site=SITE,
            device=gate,
        )
        assert snapshot.policy.anti_passback == {"staff-area": ("hard", "04:00")}
        assert snapshot.policy.anti_passback_offline == {"staff-area": "soft"}


def test_offline_takes_only_hard_or_soft(tmp_path: Path) -> None:
    site = two_gates(tmp_path)
    result = provision(
        "rules",
        "antipassback",
        "staff-area",
        "--mode",
        "hard",
        "--offline",
        "off",
        "--dir",
        str(site),
    )
    assert result.returncode == 2
    assert "'off' is not one of 'hard', 'soft'" in result.stderr


def test_a_policy_without_an_offline_fallback_falls_back_hard() -> None:
    policy = policy_from_json({"anti_passback": {"staff": {"mode": "hard", "forgive_at": None}}})
    assert policy.anti_passback_offline == {"staff": "hard"}
    again = policy_from_json(policy_to_json(policy))
    assert again.anti_passback_offline == {"staff": "hard"}
    soft = policy_from_json({"anti_passback": {"staff": {"mode": "hard", "offline": "soft"}}})
    assert policy_from_json(policy_to_json(soft)).anti_passback_offline == {"staff": "soft"}


def test_only_devices_with_a_door_on_the_zone_and_a_mode_other_than_off_must_agree(
    tmp_path: Path,
) -> None:
    site = two_gates(tmp_path)
    # Off on both gates: when they would forgive it, or fall back, is moot.
    soften(site, "gate-b", "anti_passback_offline", '"soft"')
    for gate in ("gate-a", "gate-b"):
        soften(site, gate, "anti_passback", '"off"')
    code, text = publish(site, tmp_path / "out")
    assert code == 0, text
    # A zone that a device lists without a door on it: not that device's to share.
    site2 = two_gates(tmp_path / "second")
    path = site2 / "devices" / "gate-b.toml"
    extra = '\n[[zones]]\nid = "archive"\nname = "Archive"\nkind = "area"\nanti_passback = "soft"\n'
    path.write_text(path.read_text() + extra)
    path = site2 / "devices" / "gate-a.toml"
    path.write_text(path.read_text() + extra.replace('"soft"', '"hard"'))
    code, text = publish(site2, tmp_path / "out2")
    assert code == 0, text
