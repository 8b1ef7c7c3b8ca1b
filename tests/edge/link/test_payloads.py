"""The MQTT payload schemas are part of the contract: snapshot-tested, and the topics pure."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from syrupy.assertion import SnapshotAssertion
from syrupy.extensions.json import JSONSnapshotExtension

from edge.link import topics
from edge.link.messages import safe_correlation, safe_response_topic
from edge.link.payloads import mqtt_schemas


@pytest.fixture
def snapshot_json(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    return snapshot.use_extension(JSONSnapshotExtension)


def test_mqtt_schemas_match_the_snapshot(snapshot_json: SnapshotAssertion) -> None:
    assert mqtt_schemas() == snapshot_json


def test_schema_command_prints_them() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "edge.cli", "schema", "--mqtt"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert set(json.loads(result.stdout)) == {
        "event",
        "occupancy",
        "status",
        "command",
        "command_reply",
        "crossing",
        "positions",
    }


def test_topics() -> None:
    assert (
        topics.event("edge", "kamakura-city-hall", "gate-1f-east", "access")
        == "edge/kamakura-city-hall/gate-1f-east/events/access"
    )
    assert topics.occupancy("city/edge", "s", "d", "booth-3a") == "city/edge/s/d/occupancy/booth-3a"
    assert topics.command_name("edge/s/d/cmd/unlock", "edge", "s", "d") == "unlock"
    assert topics.command_name("edge/s/other/cmd/unlock", "edge", "s", "d") is None
    # Levels that are no command name come back as they are, for the verifier to refuse.
    for level in ("UNLOCK", "ｕｎｌｏｃｋ", "", "unlock "):
        assert topics.command_name(f"edge/s/d/cmd/{level}", "edge", "s", "d") == level
    for bad in ("gate/1", "gate+", "#", "", "Gate"):
        with pytest.raises(topics.TopicError, match="cannot be a topic level"):
            topics.status("edge", "s", bad)
    with pytest.raises(topics.TopicError, match="use one of"):
        topics.event("edge", "s", "d", "secrets")
    assert topics.crossings("edge", "s", "gate-a", "secure") == "edge/s/gate-a/crossings/secure"
    assert topics.crossings_filter("edge", "s", "secure") == "edge/s/+/crossings/secure"
    assert topics.crossing_levels("edge/s/gate-a/crossings/secure", "edge", "s") == (
        "gate-a",
        "secure",
    )
    for other in ("edge/s/gate-a/cmd/ping", "edge/t/gate-a/crossings/x", "edge/s/a/crossings/x/y"):
        assert topics.crossing_levels(other, "edge", "s") is None
    assert topics.positions("edge", "s", "gate-a", "secure") == "edge/s/gate-a/positions/secure"
    assert topics.positions_filter("edge", "s", "secure") == "edge/s/+/positions/secure"
    assert topics.positions_levels("edge/s/gate-a/positions/secure", "edge", "s") == (
        "gate-a",
        "secure",
    )
    assert topics.positions_levels("edge/s/gate-a/crossings/secure", "edge", "s") is None
    # The inbox's lanes: by the last three levels alone, whatever the root.
    assert topics.peer_levels("k/edge/s/gate-a/positions/secure") == (
        "gate-a",
        "positions",
        "secure",
    )
    for other in ("edge/s/gate-a/cmd/ping", "edge/s/gate-a/credentials", "crossings/x"):
        assert topics.peer_levels(other) is None


@pytest.mark.parametrize(
    ("topic", "ok"),
    [
        ("edge/s/d/reply/console-1", True),
        ("edge/s/d/reply/", False),
        ("edge/s/d/reply/#", False),
        ("edge/s/other/reply/x", False),
        ("edge/s/d/cmd/unlock", False),
        ("$SYS/x", False),
        ("edge/s/d/reply/" + "x" * 300, False),
        (42, False),
    ],
)
def test_response_topics_an_attacker_chooses_are_checked(topic: object, ok: bool) -> None:
    assert (safe_response_topic(topic, "edge/s/d/reply/") is not None) is ok


def test_correlation_data_is_bounded() -> None:
    assert safe_correlation(b"req-1") == b"req-1"
    assert safe_correlation(b"x" * 65) is None
    assert safe_correlation("req-1") is None
