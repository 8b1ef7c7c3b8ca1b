"""Session-wide rules for the test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.services import DESCRIPTION, Guard, mark_users_of_service_fixtures

GUARD = Guard()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", DESCRIPTION)
    GUARD.install()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_users_of_service_fixtures(items)


def pytest_unconfigure(config: pytest.Config) -> None:
    GUARD.uninstall()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Know which test runs, fixtures included, so the guard can name it."""
    GUARD.item = item
    try:
        return (yield)
    finally:
        GUARD.item = None


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
