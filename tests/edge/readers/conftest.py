"""Fixtures for the reader tests: the session's private pcscd (see pcsc_stack.py)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator

import pytest

from tests.edge.readers.pcsc_stack import INSTALL, PCSCD, VPCD_CONF, PcscStack, another_pcscd


@pytest.fixture(scope="session")
def pcsc_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PcscStack]:
    """Run a private pcscd with vpcd for the whole session."""
    if not PCSCD.exists() or not VPCD_CONF.exists():
        pytest.skip(f"pcscd with vsmartcard-vpcd is not installed; {INSTALL}")
    if shutil.which("unshare") is None or os.geteuid() != 0:
        pytest.skip(
            "the PC/SC tests start pcscd in a network namespace: they need root and unshare"
        )
    pytest.importorskip("smartcard", reason="pyscard is not installed: pip install -e '.[pcsc]'")
    busy = another_pcscd()
    if busy:
        pytest.skip(busy)
    stack = PcscStack(tmp_path_factory.mktemp("pcscd"))
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def pcsc(pcsc_session: PcscStack, request: pytest.FixtureRequest) -> Iterator[PcscStack]:
    """Give a test the running stack with an empty reader; take its cards away afterwards."""
    if request.node.get_closest_marker("pcscd") is None:  # tests/conftest.py groups by it
        pytest.fail(
            f"{request.node.nodeid} asks for pcscd at run time but is not marked `pcscd`: "
            "mark it (pytest.mark.pcscd) so that it runs on the one xdist worker with pcscd",
            pytrace=False,
        )
    if not pcsc_session.running:  # a test that stopped pcscd failed before restarting it
        pcsc_session.start()
    yield pcsc_session
    inserted = [c for c in pcsc_session.cards if c.inserted]
    for card in pcsc_session.cards:
        card.remove()
    pcsc_session.cards.clear()
    if not pcsc_session.running:
        pcsc_session.start()
    elif inserted:
        with contextlib.suppress(pytest.fail.Exception):
            pcsc_session.wait_reader(present=False)
