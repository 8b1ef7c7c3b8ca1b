"""Fixtures shared by the console's tests: the log, a private mosquitto, collectors on it,
and the browser."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright

from console.collector import Collector
from console.log import CentralLog
from console.mqtt import ConsoleClient
from tests.broker import Broker, start_broker
from tests.console.collector_fixtures import DEVICES, SITE
from tests.console.test_claims import provision

from .web_fixtures import CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, driven by Playwright (no browser download)."""
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "log.db"


@pytest.fixture
def log(path: Path) -> Iterator[CentralLog]:
    central = CentralLog(path)
    yield central
    central.close()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_broker(tmp_path / "broker")
    yield b
    b.stop()


@pytest.fixture
def publisher(broker: Broker) -> Iterator[ConsoleClient]:
    """A device-like publisher; each publish waits for the broker's PUBACK."""
    client = ConsoleClient("127.0.0.1", broker.port, client_id="publisher", persistent=False)
    client.start()
    # Retained probes. A collector subscribes to events, then status, then occupancy, and the
    # broker handles one client's packets in order: one that has both probes has all three
    # subscriptions; a new status_at for the probe says it has subscribed again.
    client.publish(f"edge/{SITE}/probe/status", b'{"state":"online"}', retain=True)
    client.publish(f"edge/{SITE}/probe/occupancy/lobby", b'{"count":0}', retain=True)
    yield client
    client.close()


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    """The provisioning site directory: every test device is a provisioned gate."""
    return provision(tmp_path / "site", gates=(*DEVICES, "probe"), sensors=("booth-3f",))


@pytest.fixture
def collectors(broker: Broker, site_dir: Path) -> Iterator[Callable[..., Collector]]:
    """Make collectors on the test's broker; every one is closed at the end."""
    made: list[Collector] = []

    def make(
        log_path: Path,
        client_id: str = "collector-a",
        **options: Any,
    ) -> Collector:
        collector = Collector(
            log_path,
            site_dir=site_dir,
            host="127.0.0.1",
            port=broker.port,
            site=SITE,
            client_id=client_id,
            **options,
        )
        made.append(collector)
        collector.start()
        return collector

    yield make
    for collector in made:
        collector.close()
