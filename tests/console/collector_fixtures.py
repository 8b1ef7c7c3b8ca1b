"""Helpers for the collector tests: the site, its devices, publishing and waiting on the log."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from console.collector import Collector
from console.log import CentralLog
from console.mqtt import ConsoleClient
from tests.console.test_log import event as event_body

SITE = "test-hall"
DEVICES = ("gate-1", "gate-2", "door-3f", "door-4f")


def event(device: str, seq: int, changes: dict[str, Any] | None = None) -> bytes:
    return json.dumps(event_body(device, seq, changes)).encode()


def topic(device: str, kind: str = "access") -> str:
    return f"edge/{SITE}/{device}/events/{kind}"


def subscribed(collector: Collector) -> None:
    """Wait until a new collector has both retained probes, so its subscriptions are in place."""
    assert collector.wait_for(lambda _: collector.received >= 2, 10), "never subscribed"


def probe_status_at(log: CentralLog) -> str | None:
    probe = log.devices().get("probe")
    return None if probe is None else str(probe["status_at"])


def publish_events(port: int, plan: dict[str, Iterable[int]]) -> None:
    """Publish each device's events from its own connection, the devices in parallel."""

    def one_device(device: str, seqs: Iterable[int]) -> None:
        client = ConsoleClient("127.0.0.1", port, client_id=f"pub-{device}", persistent=False)
        client.start()
        try:
            for seq in seqs:
                client.publish(topic(device), event(device, seq))
        finally:
            client.close()

    with ThreadPoolExecutor(len(plan)) as pool:
        for done in [pool.submit(one_device, d, s) for d, s in plan.items()]:
            done.result()  # a failed publish fails the test here


def wait_any(collectors: Iterable[Collector], predicate: Callable[[CentralLog], bool]) -> bool:
    """Wait up to 60 s until `predicate` holds on the log the collectors share.

    A collector's `wait_for` wakes on its own batches only, and the last batch may be the
    other's: take turns, each turn a condition wait with a short timeout.
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if any(c.wait_for(predicate, 0.05) for c in collectors):
            return True
    return False


def resubscribed(collector: Collector, before: str | None) -> None:
    """Wait until the collector has subscribed again: the broker resent the retained status."""
    ok = collector.wait_for(lambda log: probe_status_at(log) not in (None, before), 30)
    assert ok, "the collector never came back"


def holds(n: int) -> Callable[[CentralLog], bool]:
    return lambda log: log.count() >= n


def assert_complete(log: CentralLog, per_device: int, devices: Iterable[str] = DEVICES) -> None:
    assert log.count() == per_device * len(tuple(devices))
    assert log.gaps() == {}
    known = log.devices()
    for device in devices:
        assert known[device]["contiguous"] == known[device]["max_seq"] == per_device, device
    ids = [e.id for e in log.entries()]
    assert len(ids) == len(set(ids))
    assert log.verify() == []
