"""A full disk: the store cannot write, the doors keep working, and writing resumes after.

The store lives on a tiny tmpfs that the test mounts (root only) and fills to the last byte.
"""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from .agent_fixtures import enrol, felica, sim_config
from .test_runtime import GATE_CONTACT, GATE_RELAY, Running, outbox


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip()}); needs CAP_SYS_ADMIN")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as f:
        try:
            while True:
                f.write(b"\0" * 65536)
                f.flush()
        except OSError:
            pass  # ENOSPC: the disk is full, which is the point
    return filler


def test_a_full_disk_never_stops_the_doors(
    tmp_path: Path, small_disk: Path, caplog: pytest.LogCaptureFixture
) -> None:
    device = sim_config(tmp_path)
    text = device.config.read_text().replace(str(device.store), str(small_disk / "agent.db"))
    device.config.write_text(text)
    enrol(small_disk / "agent.db", range(5), ["gate-east"])
    running = Running(type(device)(device.config, small_disk / "agent.db"))
    try:
        filler = fill(small_disk)
        caplog.set_level(logging.WARNING, logger="edge.runtime")
        for n in range(3):  # the WAL may still have a page or two: keep tapping until it fails
            running.readers["gate-east-in"].tap("felica", felica(n))
            running.settle()
            running.factory.pin(GATE_CONTACT).drive_high()
            running.factory.pin(GATE_CONTACT).drive_low()
            running.settle()
        assert "store write failed" in caplog.text
        relay = running.factory.pin(GATE_RELAY)
        running.readers["gate-east-in"].tap("felica", felica(4))
        running.settle()
        assert relay.state is True  # granted and unlocked with the disk full
        filler.unlink()
        running.factory.pin(GATE_CONTACT).drive_high()
        running.factory.pin(GATE_CONTACT).drive_low()
        running.settle()
        assert "store writes work again" in caplog.text
        events = outbox(small_disk / "agent.db")
        seqs = [e["seq"] for e in events]
        assert seqs == list(range(1, len(seqs) + 1))
        # Nothing decided while the disk was full is lost: every tap is in the outbox now.
        granted = [e["card_ref"] for e in events if e["type"] == "granted"]
        assert len(granted) == 4
    finally:
        running.stop()
