"""Session-wide rules for the test suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.services import DESCRIPTION, Guard, mark_users_of_service_fixtures

GUARD = Guard()

# pcscd serves the whole machine through one socket (/run/pcscd/pcscd.comm): under
# pytest-xdist (./check runs two workers) the tests that use it run in one group, on one worker.
PCSCD = "pcscd"
PCSCD_FIXTURES = frozenset({"pcsc", "pcsc_session"})
PCSCD_DESCRIPTION = (
    f"{PCSCD}: uses the machine's one pcscd, so runs in the xdist group `{PCSCD}` (a test "
    "with the pcsc fixtures as arguments is marked without saying so)"
)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", DESCRIPTION)
    config.addinivalue_line("markers", PCSCD_DESCRIPTION)
    GUARD.install()


# First, so that pytest-xdist's own hook sees the xdist_group marks.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    mark_users_of_service_fixtures(items)
    distributed = config.pluginmanager.hasplugin("xdist")  # its xdist_group marker exists
    for item in items:
        if PCSCD_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(PCSCD)
        if not distributed:
            continue
        if item.get_closest_marker(PCSCD) is not None:
            item.add_marker(pytest.mark.xdist_group(PCSCD))
        elif shares_a_module_fixture(item):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def shares_a_module_fixture(item: pytest.Item) -> bool:
    """True if the test uses a fixture that lives for its module (or class, or package).

    Such tests share that fixture's state (a live site, a played day) and some read what an
    earlier one left there; on one worker they also pay for it once, not once per worker.
    """
    info = getattr(item, "_fixtureinfo", None)
    definitions = info.name2fixturedefs.values() if info is not None else ()
    return any(d[-1].scope in ("class", "module", "package") for d in definitions if d)


@pytest.hookimpl(trylast=True, specname="pytest_collection_modifyitems")
def pytest_collection_modifyitems_group_suffix(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Give each grouped test its group suffix (test@pcscd) where pytest-xdist's did not take.

    pytest-xdist 3.8 schedules by that suffix, and writes it to a field pytest 9.2 no longer
    reads (pytest-dev/pytest-xdist#1386): without this the group would silently split.
    """
    if not getattr(config.option, "loadgroup", False):  # set on a worker under --dist loadgroup
        return
    for item in items:
        mark = item.get_closest_marker("xdist_group")
        if mark is not None and scheduled_group(item.nodeid) is None:
            item._id = type(item.id).parse(f"{item.nodeid}@{mark.args[0]}")


def scheduled_group(nodeid: str) -> str | None:
    """Return the xdist group a node id names (pytest-xdist's own rule), or None."""
    at = nodeid.rfind("@")
    return nodeid[at + 1 :] if at > nodeid.rfind("]") else None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a pcscd test that a worker runs outside the group: two workers would start two."""
    worker = hasattr(item.config, "workerinput")
    if worker and item.get_closest_marker(PCSCD) and scheduled_group(item.nodeid) != PCSCD:
        pytest.fail(
            f"{item.nodeid} uses pcscd but this run does not keep the pcscd tests on one "
            "pytest-xdist worker: run with `--dist loadgroup` (as ./check does) or `-n 0`",
            pytrace=False,
        )


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
