"""Door actions without a broker: which devices serve what, the key file, device replies."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from console.actions import ActionError, Outcome, _judge, load_command_key
from console.cli import cli
from console.cli_doors import serve_acting
from provisioning.cli import cli as provision


def reply(**fields: object) -> bytes:
    body = {"v": 1, "device": "stair-a-1f", "command": "unlock", "ok": True, "reason": "accepted"}
    return json.dumps({**body, **fields}).encode()


@pytest.mark.parametrize(
    ("raw", "outcome"),
    [
        (None, Outcome("stair-a-1f", "no_answer")),
        (reply(), Outcome("stair-a-1f", "accepted")),
        (
            reply(ok=False, reason="expired", detail="expired at 2026-12-01T00:00:00.000Z"),
            Outcome("stair-a-1f", "refused", "expired: expired at 2026-12-01T00:00:00.000Z"),
        ),
        (reply(ok=False, reason="replayed"), Outcome("stair-a-1f", "refused", "replayed")),
        (
            reply(ok=False, reason="refused", detail="the fire input is still active"),
            Outcome("stair-a-1f", "refused", "the fire input is still active"),
        ),
        # a hostile or broken device: never taken for an acceptance
        (
            reply(device="gate-1f-east"),
            Outcome("stair-a-1f", "refused", "the reply names another device"),
        ),
        (b"\xff not json", Outcome("stair-a-1f", "refused", "malformed reply")),
        (reply(reason="pwned"), Outcome("stair-a-1f", "refused", "malformed reply")),
        (reply(extra="x"), Outcome("stair-a-1f", "refused", "malformed reply")),
        (b"[]", Outcome("stair-a-1f", "refused", "malformed reply")),
    ],
)
def test_a_reply_becomes_an_outcome(raw: bytes | None, outcome: Outcome) -> None:
    assert _judge("stair-a-1f", raw) == outcome


def test_an_outcome_reads_as_one_line() -> None:
    assert Outcome("a", "accepted").text() == "a: accepted"
    assert Outcome("a", "refused", "expired").text() == "a: refused: expired"
    assert Outcome("a", "no_answer").text() == "a: no answer"


def write_key(path: Path, mode: int) -> None:
    pem = Ed25519PrivateKey.generate().private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    path.write_bytes(pem)
    os.chmod(path, mode)


def test_a_command_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    key = tmp_path / "console.key"
    write_key(key, 0o644)
    with pytest.raises(ActionError, match="readable by others: chmod 600"):
        load_command_key(key)
    os.chmod(key, 0o600)
    assert load_command_key(key) is not None


def test_a_missing_or_wrong_command_key_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ActionError, match="edge-provision console-key"):
        load_command_key(tmp_path / "none")
    garbage = tmp_path / "garbage"
    garbage.write_text("not a key")
    os.chmod(garbage, 0o600)
    with pytest.raises(ActionError, match="edge-provision console-key"):
        load_command_key(garbage)


def test_serve_acts_only_with_site_account_and_key_together(tmp_path: Path) -> None:
    db = tmp_path / "log.db"
    half = CliRunner().invoke(cli, ["serve", "--db", str(db), "--broker-user", "console-doors"])
    assert half.exit_code == 2
    assert "give all of them or none" in half.stderr


def test_serve_finds_the_accounts_password_and_the_site_id(tmp_path: Path) -> None:
    site = tmp_path / "site"
    for args in (
        ["site", "init", "--site", "test-site"],
        ["account", "add", "console-doors", "--role", "console"],
        ["console-key", "--out", str(tmp_path / "console.key")],
    ):
        assert CliRunner().invoke(provision, [*args, "--dir", str(site)]).exit_code == 0
    options = {
        "site_dir": None,
        "site": None,
        "root": "edge",
        "broker_host": "broker.lan",
        "broker_port": 8883,
        "broker_user": "console-doors",
        "broker_password_file": None,
        "ca_file": None,
        "command_key": tmp_path / "console.key",
    }
    site_dir, broker, key = serve_acting(options, site / "registry.db")
    assert site_dir == site
    assert key == tmp_path / "console.key"
    assert broker is not None
    assert (broker.site, broker.username) == ("test-site", "console-doors")
    assert broker.password_file == site / "accounts" / "console-doors.password"
