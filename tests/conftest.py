"""Session-wide rules for the test suite."""

from __future__ import annotations

import os

import pytest


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Under ./check (and so in CI) a skipped test is a failure: ./check installs everything.

    Running pytest by hand on a machine without, say, pcscd or root still skips, with a
    message that says how to get what is missing.
    """
    if os.environ.get("EDGE_NO_SKIPS") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter is not None else []
    if skipped:
        for report in skipped:
            print(f"\nSKIPPED under ./check (not allowed): {report.nodeid}: {report.longrepr}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
