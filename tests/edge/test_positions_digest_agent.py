"""Positions digests between agent processes on a real mosquitto with the generated ACL.

A gate keeps the positions it set itself retained on `positions/{zone}`: a gate started later
with an empty store learns them (the card is refused there), and so does the gate itself
after losing its store. A stolen gate's hostile digests are dropped whole and the agents
keep deciding; a well-formed one is merged like its crossings would be.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from edge.cardref import card_references
from edge.core.clock import utc_text
from edge.link.positions import MAX_DIGEST_BYTES
from tests.edge.agent_fixtures import KEY, enrol, felica
from tests.edge.line_fixtures import BASE, CARDS, Line, start_line

pytestmark = pytest.mark.services  # starts mosquitto and agents

GATES = ("gate-a", "gate-b")
HOSTILE = "gate-x"  # a third gate of the same line, its credentials stolen
HOSTILE_PASSWORD = "x-secret"
ZONE = "staff-area"


def ref(card: int) -> str:
    return card_references(KEY, [("felica", felica(card))])[0]


@pytest.fixture
def line(tmp_path: Path) -> Iterator[Line]:
    yield from start_line(tmp_path, GATES, "hard")


def digest_cards(line: Line, gate: str) -> list[str]:
    """The card references of `gate`'s latest digest of the zone, as the watcher saw it."""
    found = line.watcher.payloads(f"/{gate}/positions/{ZONE}")
    return [e[0] for e in found[-1]["entries"]] if found else []  # type: ignore[index, union-attr]


def wipe(line: Line, gate: str) -> None:
    """A replaced Pi: a new store with its credentials and no positions at all."""
    store = line.devices[gate].store
    for path in store.parent.glob(store.name + "*"):
        path.unlink()
    enrol(store, CARDS, ["gate-east"])


def test_a_gate_started_with_an_empty_store_learns_the_others_positions(line: Line) -> None:
    line.stop("gate-b")
    assert line.enter("gate-a", 1)["reason"] == "granted"
    assert line.enter("gate-a", 2)["reason"] == "granted"
    assert line.leave("gate-a", 2)["reason"] == "granted"
    # A digest goes out on every connect (then at most every 30 s when it changed).
    line.stop("gate-a")
    line.start("gate-a")
    line.watcher.wait_for(
        lambda _: set(digest_cards(line, "gate-a")) == {ref(1), ref(2)}, 30, what="a's digest"
    )
    wipe(line, "gate-b")
    line.start("gate-b")
    line.online("gate-b")
    line.applied("gate-b", line.crossing_ids("gate-a")[0])  # stamped as its crossing was
    assert line.enter("gate-b", 1)["reason"] == "anti_passback"
    assert line.enter("gate-b", 2)["reason"] == "granted"  # it left again
    # Gate A loses its own store too: it reads its own retained digest back.
    line.stop("gate-a")
    wipe(line, "gate-a")
    line.start("gate-a")
    line.online("gate-a")
    line.applied("gate-a", line.crossing_ids("gate-a")[0])
    assert line.enter("gate-a", 1)["reason"] == "anti_passback"


NOW = datetime.now(UTC)  # when the module is collected: a long suite runs on past it


def hostile_digest(card: int, **change: object) -> bytes:
    entry = [ref(card), "lobby", ZONE, utc_text(NOW), 1]
    fields = {"v": 1, "device": HOSTILE, "zone": ZONE, "ts": utc_text(NOW), "entries": [entry]}
    return json.dumps(fields | change).encode()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (hostile_digest(3, device="gate-a"), "digest device or zone does not match the topic"),
        (
            hostile_digest(3, entries=[[ref(3), "lobby", "garage", utc_text(NOW), 1]]),
            "entry 0: the crossing neither leaves nor enters the topic's zone",
        ),
        (
            hostile_digest(
                3, entries=[[ref(3), "lobby", ZONE, utc_text(NOW + timedelta(days=1)), 1]]
            ),
            "entry 0: stamped over 5 minutes ahead of this clock",
        ),
        (hostile_digest(3, padding="x" * MAX_DIGEST_BYTES), f"digest over {MAX_DIGEST_BYTES}"),
        (b"[" * 5000, "malformed digest"),
    ],
    ids=["another-name", "another-zone", "future", "oversized", "malformed"],
)
def test_a_stolen_gate_s_hostile_digest_is_dropped_and_the_agent_keeps_deciding(
    tmp_path: Path, payload: bytes, reason: str
) -> None:
    lines = start_line(tmp_path, ("gate-b",), "hard", extra_users={HOSTILE: HOSTILE_PASSWORD})
    line = next(lines)
    hostile = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=HOSTILE, protocol=mqtt.MQTTv5)
    hostile.username_pw_set(HOSTILE, HOSTILE_PASSWORD)
    hostile.connect("127.0.0.1", line.broker.port)
    hostile.loop_start()
    topic = f"{BASE}/{HOSTILE}/positions/{ZONE}"
    try:
        hostile.publish(topic, payload, qos=1).wait_for_publish(10)
        text = f"dropped 1 peer digests; latest: {reason}"
        assert line.gates["gate-b"].request(op="wait_log", text=text, timeout=20)["ok"], text
        assert line.enter("gate-b", 3)["reason"] == "granted"  # the claim was not taken
        assert line.gates["gate-b"].proc.poll() is None
        # What a stolen gate can do (docs/threat-model.md): claim in its own name that a card
        # is inside a zone it serves, as with a crossing; that card is refused there. (On its
        # lobby digest: a second digest of one zone within a second is dropped unread.)
        lobby = f"{BASE}/{HOSTILE}/positions/lobby"
        hostile.publish(lobby, hostile_digest(4, zone="lobby"), qos=1).wait_for_publish(10)
        line.applied("gate-b", f"{HOSTILE}:1")
        assert line.enter("gate-b", 4)["reason"] == "anti_passback"
    finally:
        hostile.loop_stop()
        hostile.disconnect()
        lines.close()
