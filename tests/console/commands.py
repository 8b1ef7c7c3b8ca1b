"""Run edge-console as a guard or an operator would: a separate process, output captured."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def edge_console(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """Run `edge-console ARGS…` (with `stdin`) and return what it printed and its status."""
    return subprocess.run(
        [sys.executable, "-m", "console.cli", *args],
        capture_output=True,
        text=True,
        input=stdin,
        timeout=60,
        check=False,
        cwd=ROOT,
    )
