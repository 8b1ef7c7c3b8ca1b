"""Every file the operators' tools create has the mode it should have, under a lax umask.

The commands run as an operator runs them, as processes started with umask 022 (the usual
default, which makes files world-readable): `edge-provision site init`, `account add`,
`device add`, `device bundle`, `broker config`, `edge-console users add` and `serve`. Each
file and directory they create is then checked: secrets and databases 0600 in 0700
directories; public keys and certificates 0644; mosquitto's files 0640, group mosquitto.
"""

from __future__ import annotations

import grp
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from console.log import CentralLog
from console.web import session_secret
from provisioning.files import private_database, write_file
from provisioning.keys import generate
from simulator.broker import MOSQUITTO, STDBUF, free_port
from simulator.readiness import wait_for_output

pytestmark = pytest.mark.services  # starts mosquitto, pcscd, an emulated card or a building

LAX_UMASK = 0o022
PUBLIC_SUFFIXES = (".pub", ".crt")


def run(module: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `python -m MODULE ARGS…` as an operator would, with umask 022."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        umask=LAX_UMASK,
    )
    assert result.returncode == 0, result.stderr
    return result


def modes(root: Path) -> dict[str, int]:
    """Map every path under `root` (itself included, as ".") to its permission bits."""
    found = {".": stat.S_IMODE(root.stat().st_mode)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return found


@pytest.fixture
def broker_out() -> Iterator[Path]:
    """A directory outside pytest's private tree, so user mosquitto may reach it."""
    parent = Path(tempfile.mkdtemp(prefix="edge-broker-"))
    parent.chmod(0o755)
    yield parent / "mosquitto"
    shutil.rmtree(parent)


@pytest.fixture
def site(tmp_path: Path, broker_out: Path) -> Path:
    """A site made by the command line: keys, CA, two accounts, a device and its bundle."""
    site = tmp_path / "site"
    run("provisioning.cli", "site", "init", "--site", "s", "--ca", "localhost", "--dir", str(site))
    run("provisioning.cli", "account", "add", "gate-1", "--role", "device", "--dir", str(site))
    run("provisioning.cli", "account", "add", "console", "--role", "console", "--dir", str(site))
    run("provisioning.cli", "device", "add", "gate-1", "--role", "gate", "--dir", str(site))
    run("provisioning.cli", "device", "bundle", "gate-1", "--dir", str(site))
    run("provisioning.cli", "broker", "config", "--dir", str(site), "--out", str(broker_out))
    return site


def test_every_site_file_is_private_but_public_keys(site: Path) -> None:
    found = modes(site)

    expected = {
        name: (
            0o700 if (site / name).is_dir() else 0o644 if name.endswith(PUBLIC_SUFFIXES) else 0o600
        )
        for name in found
    }
    assert found == expected
    for name in (
        "registry.db",
        "keys/card-key",
        "keys/commands.key",
        "keys/ca.key",
        "accounts/gate-1.password",
        "bundles/gate-1.tar.gz",
        "devices/gate-1.toml",
    ):
        assert name in found


def test_mosquitto_files_are_for_its_group_only(site: Path, broker_out: Path) -> None:
    found = modes(broker_out)

    assert found == {".": 0o750, "passwd": 0o640, "acl": 0o640, "edge.conf": 0o640}
    if os.geteuid() == 0 and _has_group("mosquitto"):
        for name in ("passwd", "acl", "edge.conf"):
            assert grp.getgrgid((broker_out / name).stat().st_gid).gr_name == "mosquitto"


def test_mosquitto_dropping_root_reads_the_generated_files(site: Path, broker_out: Path) -> None:
    if os.geteuid() != 0 or not _has_group("mosquitto") or not Path(MOSQUITTO).exists():
        pytest.skip("needs root and Debian's mosquitto package (apt-get install mosquitto)")
    conf = broker_out.parent / "test.conf"
    conf.write_text(
        f"listener {free_port()} 127.0.0.1\nallow_anonymous false\n"
        f"password_file {broker_out / 'passwd'}\nacl_file {broker_out / 'acl'}\n"
        "log_dest stdout\n"
    )
    # No `user root`: started as root, mosquitto drops to user mosquitto before it reads them.
    process = subprocess.Popen(
        [STDBUF, "-oL", MOSQUITTO, "-c", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        assert wait_for_output(process.stdout, b" running", timeout_s=30), "mosquitto failed"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # never hide the assertion behind a slow shutdown
            process.kill()
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()


def test_the_console_log_and_session_key_are_private(tmp_path: Path) -> None:
    db = tmp_path / "console" / "log.db"
    run(
        "console.cli",
        "users",
        "add",
        "guard1",
        "--role",
        "guard",
        "--db",
        str(db),
        stdin="a long enough password 1\n",
    )
    assert modes(db.parent) == {".": 0o700, "log.db": 0o600} | {
        name: 0o600 for name in ("log.db-wal", "log.db-shm") if (db.parent / name).exists()
    }

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "serve", "--db", str(db), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        umask=LAX_UMASK,
    )
    key = db.with_name("console-session.key")
    try:
        _wait_for_file(key, process, timeout_s=30)
        assert key.exists(), process.stderr.read().decode() if process.stderr else ""
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
    finally:
        process.terminate()
        process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()
    assert all(mode & 0o077 == 0 for mode in modes(db.parent).values())


def test_files_made_in_process_are_private_whatever_the_umask(tmp_path: Path) -> None:
    previous = os.umask(LAX_UMASK)
    try:
        generate(tmp_path / "keys")
        private_database(tmp_path / "registry.db")
        write_file(tmp_path / "secret", b"x")
        CentralLog(tmp_path / "console" / "log.db").close()
        session_secret(tmp_path / "console" / "session.key")
    finally:
        os.umask(previous)

    assert modes(tmp_path / "keys") == {
        ".": 0o700,
        "card-key": 0o600,
        "commands.key": 0o600,
        "credentials.key": 0o600,
        "commands.pub": 0o644,
        "credentials.pub": 0o644,
    }
    assert stat.S_IMODE((tmp_path / "registry.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "secret").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "console" / "log.db").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "console" / "session.key").stat().st_mode) == 0o600


def test_an_existing_world_readable_file_is_closed_before_it_is_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "passwd"
    path.write_text("old")
    path.chmod(0o644)

    write_file(path, b"new", 0o640)

    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert path.read_bytes() == b"new"


def _has_group(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _wait_for_file(path: Path, process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait until `path` exists, the process ends, or `timeout_s` passes."""
    deadline = time.monotonic() + timeout_s
    while not path.exists() and time.monotonic() < deadline:
        try:
            process.wait(timeout=0.05)  # the process ending ends the wait too
        except subprocess.TimeoutExpired:
            continue
        return
