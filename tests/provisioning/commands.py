"""Run edge-provision as an operator would: a separate process, output captured."""

from __future__ import annotations

import subprocess
import sys


def provision(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `edge-provision ARGS…` and return what it printed and its exit status."""
    return subprocess.run(
        [sys.executable, "-m", "provisioning.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
