"""Crossings shared by a zone: what goes out for a stored crossing, what an inbound one must
be to be merged, and an event deleted only once every one of its publishes is acknowledged."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.link.crossings import MAX_CROSSING_BYTES, PeerCrossing, Refused, judge, outgoing
from edge.link.inflight import Inflight
from edge.link.payloads import CrossingPayload
from edge.store.outbox import OutboxEvent

REF = "ab" * 32
ZONES = frozenset({"lobby", "staff-area"})
CROSSING = {
    "v": 1,
    "id": "gate-b:7",
    "seq": 7,
    "device": "gate-b",
    "clock_synced": True,
    "kind": "access",
    "type": "crossing",
    "ts": "2026-12-01T00:00:00.123Z",
    "door": "gate-east",
    "reader": "gate-east-in",
    "direction": "in",
    "card_ref": REF,
    "from_zone": "lobby",
    "to_zone": "staff-area",
}
TOPIC = "edge/s/gate-b/crossings/staff-area"


def body(**change: object) -> bytes:
    fields = {k: CROSSING[k] for k in CrossingPayload.model_fields} | change
    return json.dumps(fields).encode()


def test_a_stored_crossing_goes_out_on_both_zones_of_its_door() -> None:
    event = OutboxEvent(7, "access", json.dumps(CROSSING))
    shared = outgoing(event, "edge", "s", "gate-b", ZONES)
    assert [t for t, _ in shared] == [
        "edge/s/gate-b/crossings/lobby",
        "edge/s/gate-b/crossings/staff-area",
    ]
    payload = CrossingPayload.model_validate_json(shared[0][1])
    assert (payload.id, payload.card_ref, payload.to_zone) == ("gate-b:7", REF, "staff-area")
    assert "door" not in json.loads(shared[0][1])
    granted = OutboxEvent(6, "access", json.dumps({**CROSSING, "type": "granted"}))
    assert outgoing(granted, "edge", "s", "gate-b", ZONES) == []


def test_a_valid_peer_crossing_is_judged_with_its_stamp() -> None:
    verdict = judge(TOPIC, body(), "edge", "s", "gate-a", ZONES)
    assert verdict == PeerCrossing(
        REF, "lobby", "staff-area", ("2026-12-01T00:00:00.123Z", "gate-b", 7)
    )
    assert judge(TOPIC, body(), "edge", "s", "gate-b", ZONES) is None  # our own


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("edge/s/gate-b/crossings/vault", body(to_zone="vault"), "not served"),
        ("edge/s/gate-b/cmd/unlock", body(), "not a crossings topic"),
        (TOPIC, body(device="gate-c", id="gate-c:7"), "does not match"),
        (TOPIC, body(id="gate-b:8"), "does not match"),
        (TOPIC, body(from_zone="lobby", to_zone="garage"), "neither leaves nor enters"),
        (TOPIC, body(card_ref="felica:0114000000000001"), "malformed"),
        (TOPIC, body(ts="yesterday"), "malformed"),
        (TOPIC, body(extra="x"), "malformed"),
        (TOPIC, b"not json", "malformed"),
        (TOPIC, b"[" * 100_000, "over"),
        (TOPIC, b"[" * 900, "malformed"),
        (TOPIC, b" " * (MAX_CROSSING_BYTES + 1), "over"),
    ],
)
def test_a_hostile_crossing_is_refused_with_a_reason(
    topic: str, payload: bytes, reason: str
) -> None:
    verdict = judge(topic, payload, "edge", "s", "gate-a", ZONES)
    assert isinstance(verdict, Refused)
    assert reason in verdict.reason


@given(st.binary(max_size=MAX_CROSSING_BYTES + 8), st.text(max_size=40))
def test_judging_never_raises(payload: bytes, level: str) -> None:
    verdict = judge(f"edge/s/{level}/crossings/lobby", payload, "edge", "s", "gate-a", ZONES)
    assert verdict is None or isinstance(verdict, Refused)


def test_an_event_is_done_only_when_every_publish_is_acknowledged() -> None:
    inflight = Inflight()
    for mid in (1, 2, 3):
        inflight.add(mid, 7)
    inflight.add(4, 8)
    assert inflight.ack(2, True) is None
    assert inflight.ack(4, True) == (8, True)
    assert inflight.ack(1, True) is None
    assert inflight.ack(3, True) == (7, True)
    assert inflight.ack(3, True) is None  # not ours any more
    inflight.add(5, 9)
    inflight.add(6, 9)
    assert inflight.ack(5, False) is None
    assert inflight.ack(6, True) == (9, False)  # one refusal keeps it in the outbox
    inflight.add(7, 10)
    inflight.refuse(10)  # its second publish could not be handed to paho
    assert inflight.ack(7, True) == (10, False)
    assert len(inflight) == 0
