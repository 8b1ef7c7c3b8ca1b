"""An environment holding only the agent's own dependencies, as on a Raspberry Pi.

The development environment also holds matplotlib, numpy, FastAPI and the test tools; some
libraries import numpy when it happens to be there (sqlite-utils does), which would add about
28 MB to the agent's memory. Figures about the agent as it runs on a Pi come from here: a
virtual environment with `[project] dependencies` from pyproject.toml, pinned by
constraints.txt, kept in .venv/agent-only and refreshed when either file changes. The agent's
code runs from the work tree (its processes start in the project root).
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = ROOT / ".venv" / "agent-only"


def agent_python() -> str:
    """Return the interpreter of the agent-only environment, making it first if needed."""
    pyproject = (ROOT / "pyproject.toml").read_bytes()
    constraints = ROOT / "constraints.txt"
    want = hashlib.sha256(pyproject + constraints.read_bytes()).hexdigest()
    python = ENV / "bin" / "python"
    stamp = ENV / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text() == want:
        return str(python)
    dependencies = tomllib.loads(pyproject.decode())["project"]["dependencies"]
    print(f"making {ENV.relative_to(ROOT)}: {', '.join(dependencies)}", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(ENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
         "-c", str(constraints), *dependencies],
        check=True,
    )  # fmt: skip
    stamp.write_text(want)
    return str(python)


def modules_loaded(python: str, module: str) -> list[str]:
    """Return the top-level packages importing `module` loads in that environment."""
    code = (
        f"import {module}, sys; print('\\n'.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    result = subprocess.run(
        [python, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return result.stdout.split()
