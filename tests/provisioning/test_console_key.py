"""`edge-provision console-key`: the console's command key, private and never overwritten."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from console.actions import load_command_key
from edge.signing import key_id
from provisioning.cli import cli
from provisioning.keys import SiteKeys


def provision(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_the_key_is_the_sites_command_key_0600_and_never_overwritten(tmp_path: Path) -> None:
    site, out = tmp_path / "site", tmp_path / "console.key"
    assert provision("site", "init", "--site", "test-site", "--dir", str(site))[0] == 0

    code, stdout, _ = provision("console-key", "--dir", str(site), "--out", str(out))

    assert code == 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    devices_trust = SiteKeys(site / "keys").load_private("commands").public_key()
    written = load_pem_private_key(out.read_bytes(), password=None)
    assert key_id(written.public_key()) == key_id(devices_trust)  # type: ignore[arg-type]
    assert key_id(devices_trust) in stdout
    assert "PRIVATE" not in stdout
    assert load_command_key(out).public_key() == devices_trust

    out.write_bytes(b"kept")
    code, _, stderr = provision("console-key", "--dir", str(site), "--out", str(out))
    assert code == 2
    assert "exists; move it away first" in stderr
    assert out.read_bytes() == b"kept"


def test_a_site_without_keys_is_refused_with_exit_2(tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert provision("site", "init", "--site", "test-site", "--dir", str(site))[0] == 0
    SiteKeys(site / "keys").private("commands").unlink()

    code, _, stderr = provision("console-key", "--dir", str(site), "--out", str(tmp_path / "k"))

    assert code == 2
    assert "run edge-provision site init first" in stderr
    assert not (tmp_path / "k").exists()
