"""Run edge-provision as an operator would: a separate process, output captured."""

from __future__ import annotations

import subprocess
import sys


def provision(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `edge-provision ARGS…` (`stdin` piped in) and return what it printed and its
    exit status."""
    return subprocess.run(
        [sys.executable, "-m", "provisioning.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
