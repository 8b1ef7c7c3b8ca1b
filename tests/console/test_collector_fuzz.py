"""Hypothesis fuzz of the collector's judging and storing: whatever the topic and the bytes,
no exception escapes, every message is either stored or refused with a reason (and so
acknowledged), and what is stored can always be read back (search, alarms, roll call)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console import alarms, refusals, rollcall
from console.collector import Collector
from console.mqtt import ConsoleClient, Message
from tests.broker import Broker
from tests.console.test_claims import SITE, provision
from tests.console.test_log import event

ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=20)  # surrogates too
JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()  # unbounded: past 2^63 too
    | st.floats()  # NaN and infinities too (json.dumps writes them)
    | ANY_TEXT
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
    max_leaves=12,
)
FIELDS = (
    "v",
    "id",
    "seq",
    "ts",
    "kind",
    "type",
    "door",
    "reader",
    "zone",
    "card_ref",
    "from_zone",
    "to_zone",
    "sensor",
    "input",
    "count",
    "occupied",
    "data",
    "device",
)


@st.composite
def mutated_event(draw: st.DrawFn) -> bytes:
    """An event of a provisioned device with some fields replaced by anything."""
    device = draw(st.sampled_from(["gate-1", "booth-3f", "gate-9"]))
    body: dict[str, Any] = event(device, draw(st.integers(1, 50)))
    for _ in range(draw(st.integers(0, 3))):
        body[draw(st.sampled_from(FIELDS) | ANY_TEXT)] = draw(JSON_VALUES)
    text = json.dumps(body, ensure_ascii=draw(st.booleans()))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "utf-32", "latin-1"]))
    return text.encode(encoding, errors="replace" if encoding == "latin-1" else "surrogatepass")


def nested(depth: int) -> bytes:
    return b'{"v":' + b"[" * depth + b"]" * depth + b"}"


PAYLOADS = st.one_of(
    mutated_event(),
    st.binary(max_size=200),
    st.integers(1, 6000).map(nested),
    JSON_VALUES.map(lambda v: json.dumps(v).encode()),
    st.integers(-(2**70), 2**70).map(lambda n: b'{"count": %d, "occupied": true}' % n),
)
SLUG = st.sampled_from(["gate-1", "booth-3f", "gate-9", "probe"]) | st.from_regex(
    r"[a-z0-9-]{1,12}", fullmatch=True
)
LEVELS = st.sampled_from(
    [
        "events/access",
        "events/alarm",
        "events/presence",
        "events/door",
        "events/system",
        "events/bogus",
        "status",
        "occupancy/lobby",
        "occupancy/booth-1",
        "occupancy/x",
        "cmd/x",
    ]
)


def topics(device: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds(lambda d, rest: f"edge/{SITE}/{d}/{rest}", device, LEVELS),
        st.builds(lambda d: f"edge/other-site/{d}/status", device),
    )


MESSAGES = st.builds(
    lambda topic, payload, mid: Message(topic, payload, False, mid, 1),
    topics(SLUG | ANY_TEXT),
    PAYLOADS,
    st.integers(1, 65535),
)


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    return provision(tmp_path / "site", gates=("gate-1", "probe"), sensors=("booth-3f",))


@pytest.fixture
def collector(tmp_path: Path, site_dir: Path) -> Iterator[Collector]:
    """A collector never connected: its judging and storing path, called directly."""
    made = Collector(
        tmp_path / "central.db", site_dir=site_dir, host="127.0.0.1", port=1, site=SITE
    )
    yield made
    made.close()


def test_ten_thousand_generated_messages_are_each_stored_or_refused(collector: Collector) -> None:
    judged = 0

    @settings(
        max_examples=700,  # at least 15 each: 10,500 messages whatever is drawn
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(MESSAGES, min_size=15, max_size=30))
    def store(batch: list[Message]) -> None:
        nonlocal judged
        before = collector.received, collector.accepted, collector.rejected
        collector._store(batch, {})  # the writer acknowledges the batch iff this returns
        received, accepted, rejected = (
            collector.received - before[0],
            collector.accepted - before[1],
            collector.rejected - before[2],
        )
        assert received == len(batch)
        assert accepted + rejected == len(batch), (accepted, rejected)
        judged += len(batch)

    store()
    assert judged >= 10_000
    log = collector.log
    by_log = log.db.execute("SELECT count(*) FROM refusals WHERE reason LIKE 'the log%'")
    assert by_log.fetchone()[0] == 0, "a message passed judgement that the log refused"
    assert all(
        r["reason"] for d in ("gate-1", "booth-3f", "(unknown)") for r in refusals.recent(log, d)
    )
    assert log.verify() == []
    alarms.active(log)  # every stored body reads back as JSON (no NaN, no surrogates)
    rollcall.inside(log)


# -- the same through mosquitto: nothing is left unacknowledged ------------------------------

BROKER_SAFE = st.builds(
    lambda topic, payload: (topic, payload),
    topics(SLUG),
    PAYLOADS,
)


def subscribed(topic: str) -> bool:
    """True if the collector subscribes to `topic` (this site's events, status, occupancy)."""
    parts = topic.split("/")
    if parts[:2] != ["edge", SITE]:
        return False
    return parts[3] in ("events", "occupancy") or parts[3:] == ["status"]


def test_generated_messages_through_the_broker_are_all_acknowledged(
    tmp_path: Path, broker: Broker, site_dir: Path
) -> None:
    def collector() -> Collector:
        made = Collector(
            tmp_path / "central.db",
            site_dir=site_dir,
            host="127.0.0.1",
            port=broker.port,
            site=SITE,
            client_id="fuzz-collector",
        )
        made.start()
        return made

    publisher = ConsoleClient("127.0.0.1", broker.port, client_id="fuzzer", persistent=False)
    publisher.start()
    first = collector()
    sent = 0

    @settings(
        max_examples=20,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(st.lists(BROKER_SAFE, min_size=10, max_size=30))
    def publish(batch: list[tuple[str, bytes]]) -> None:
        nonlocal sent
        for topic, payload in batch:
            publisher.publish(topic, payload)
            sent += subscribed(topic)

    try:
        publish()
        all_in: Callable[[Any], bool] = lambda _: first.received >= sent  # noqa: E731
        assert first.wait_for(all_in, 60), (first.received, sent)
        assert first.accepted + first.rejected == first.received
        first.close()
        second = collector()
        try:
            # Anything left unacknowledged would be delivered again before this marker.
            marker = json.dumps(event("gate-1", 999)).encode()
            publisher.publish(f"edge/{SITE}/gate-1/events/access", marker)
            assert second.wait_for(lambda log: log.devices()["gate-1"]["max_seq"] == 999, 30)
            assert second.received == 1, "delivered again: some were never acknowledged"
        finally:
            second.close()
    finally:
        first.close()
        publisher.close()
