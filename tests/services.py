"""The `services` marker, enforced: a test that starts a real service must say so.

`./check -m "not services"` is the inner loop; it is only honest if no test that starts
mosquitto, pcscd, nfcpy's emulated card, Chromium or a whole simulated building hides among
the rest. Every process a test starts goes through `subprocess.Popen`; while a test without
the marker runs (its fixtures included), starting one of those fails that test by name.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Sequence
from typing import Any

import pytest

MARKER = "services"
DESCRIPTION = (
    f"{MARKER}: starts a real service (mosquitto, pcscd, nfcpy's emulated card, Chromium, "
    "Radicale, Synapse, PostgreSQL, a simulated building); "
    "`./check -m 'not services'` leaves these out"
)

# Fixtures that start a service: a test that uses one is marked without saying so.
FIXTURES = frozenset(
    {
        "broker",
        "publisher",
        "collectors",
        "browser",
        "pcsc",
        "pcsc_session",
        "radicale",
        "synapse",
        "postgres",
        "pg_database",
        "wan",
    }
)

# Programs, and `python -m` modules, that are (or start) a real service.
PROGRAMS = frozenset(
    {
        "mosquitto",
        "pcscd",
        "unshare",
        "nsenter",
        "chromium",
        "node",
        "runuser",
        "postgres",
        "initdb",
    }
)
# Programs that run another one given after their own options.
WRAPPERS = frozenset({"stdbuf", "env", "timeout", "nice"})
MODULES = frozenset(
    {"simulator.cli", "simulator.nfc_card", "radicale", "synapse.app.homeserver", "rooms.cli"}
)


def mark_users_of_service_fixtures(items: list[pytest.Item]) -> None:
    """Mark every test that uses a fixture starting a service."""
    for item in items:
        if FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(MARKER)


def service_in(args: Any) -> str | None:
    """Return the service a command line would start, or None."""
    argv: Sequence[Any] = [args] if isinstance(args, str | bytes | os.PathLike) else list(args)
    words = [os.fsdecode(a) for a in argv]
    if not words:
        return None
    for word in words:
        program = os.path.basename(word.split()[0]) if word.strip() else ""
        if program in PROGRAMS:
            return program
        if program not in WRAPPERS and not word.startswith("-") and "=" not in word:
            break
    for flag, module in itertools.pairwise(words):
        if flag == "-m" and module in MODULES:
            return module
    return None


class Guard:
    """Refuse to start a service while a test without the marker runs."""

    def __init__(self) -> None:
        self.item: pytest.Item | None = None
        self._original = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def install(self) -> None:
        guard = self
        original = self._original

        def execute_child(popen: subprocess.Popen[Any], args: Any, *rest: Any) -> Any:
            guard.check(args)
            return original(popen, args, *rest)

        subprocess.Popen._execute_child = execute_child  # type: ignore[attr-defined]

    def uninstall(self) -> None:
        subprocess.Popen._execute_child = self._original  # type: ignore[attr-defined]

    def check(self, args: Any) -> None:
        item = self.item
        if item is None or item.get_closest_marker(MARKER) is not None:
            return
        service = service_in(args)
        if service is not None:
            pytest.fail(
                f"{item.nodeid} starts {service} but is not marked `{MARKER}`: add "
                f"`pytestmark = pytest.mark.{MARKER}` to its module (or mark the test)",
                pytrace=False,
            )
