"""Positions digests: what a device publishes of its own positions, when, and what an inbound
digest must be for its entries to be merged."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge.core.antipassback import AntiPassbackTracker
from edge.core.clock import Instant
from edge.core.controller import DeviceState
from edge.core.outputs import EventKind, EventRecord
from edge.link.crossings import PeerCrossing, Refused
from edge.link.messages import InboundMessage
from edge.link.payloads import MAX_DIGEST_ENTRIES, PositionsPayload
from edge.link.positions import MAX_DIGEST_BYTES, Digests, digest_body, judge_digest
from edge.peers import PeerCrossings
from edge.store import Store, outbox, state
from tests.edge.core.harness import SPEC

A, B, C = "a" * 64, "b" * 64, "c" * 64
ZONES = frozenset({"lobby", "staff"})
NOW = datetime(2026, 12, 1, 0, 10, tzinfo=UTC)
TOPIC = "edge/s/gate-b/positions/staff"
WHERE = ("edge", "s", "gate-a")
ENTRY = [A, "lobby", "staff", "2026-12-01T00:00:01.000Z", 4]


def digest(**change: object) -> bytes:
    fields = {
        "v": 1,
        "device": "gate-b",
        "zone": "staff",
        "ts": "2026-12-01T00:05:00.000Z",
        "entries": [ENTRY],
    } | change
    return json.dumps(fields).encode()


def own(store: Store, kind: EventKind, type_: str, second: int, **data: object) -> None:
    """Record one event of this device (gate-a) as the agent's loop does."""
    event = EventRecord(kind, type_, datetime(2026, 12, 1, 0, 0, second, tzinfo=UTC), data)
    with store.transaction() as db:
        outbox.append(db, "gate-a", [event], True)
        state.apply(db, [event], DeviceState(), DeviceState())


def crossing(store: Store, card: str, from_zone: str, to_zone: str, second: int) -> None:
    fields = {"card_ref": card, "from_zone": from_zone, "to_zone": to_zone}
    own(store, EventKind.ACCESS, "crossing", second, **fields)


def peers(store: Store) -> PeerCrossings:
    tracker = AntiPassbackTracker(SPEC.zones)
    return PeerCrossings(
        root="edge", site="s", device="gate-a", zones=ZONES, tracker=tracker, store=store
    )


def test_a_digest_lists_this_device_s_own_positions_touching_the_zone() -> None:
    with Store(":memory:", memory=True) as store:
        crossing(store, A, "lobby", "staff", 1)
        crossing(store, B, "staff", "lobby", 2)
        crossing(store, C, "lobby", "staff", 3)
        learnt = PeerCrossing(C, "staff", "lobby", ("2026-12-01T00:00:04.000Z", "gate-b", 9))
        assert peers(store).merge(learnt, Instant(0.0, NOW))  # a peer's: never ours to publish
        staff = state.own_positions(store.db, "gate-a", "staff", 100)
        assert staff == [
            (B, "staff", "lobby", "2026-12-01T00:00:02.000Z", 2),  # with its event's seq
            (A, "lobby", "staff", "2026-12-01T00:00:01.000Z", 1),
        ]
        assert state.own_positions(store.db, "gate-a", "staff", 1) == staff[:1]  # newest first
        assert [p[0] for p in state.own_positions(store.db, "gate-a", "vault", 100)] == []


def test_a_forgiven_card_is_listed_in_no_zone_and_a_forgiven_zone_lists_only_what_came_after():
    with Store(":memory:", memory=True) as store:
        crossing(store, A, "lobby", "staff", 1)
        crossing(store, B, "staff", "lobby", 2)
        fields = {"card_ref": A, "zone": None, "by": "boss", "was_in": "staff", "changed": True}
        own(store, EventKind.SYSTEM, "anti_passback_card_forgiven", 3, **fields)
        assert state.own_positions(store.db, "gate-a", "staff", 100)[0] == (
            A,
            "staff",
            "",
            "2026-12-01T00:00:03.000Z",
            3,
        )
        own(store, EventKind.SYSTEM, "anti_passback_forgiven", 4, zone="staff", local_date="x")
        crossing(store, C, "lobby", "staff", 5)
        assert state.own_positions(store.db, "gate-a", "staff", 100) == [
            (C, "lobby", "staff", "2026-12-01T00:00:05.000Z", 5)
        ]
        # What left the forgiven zone before still counts where it went.
        lobby = state.own_positions(store.db, "gate-a", "lobby", 100)
        assert [(p[0], p[1]) for p in lobby] == [(C, "lobby"), (B, "")]


def test_digests_go_out_on_connect_then_only_when_changed_and_never_first_empty() -> None:
    with Store(":memory:", memory=True) as store:
        digests = Digests("edge", "s", "gate-a", ZONES, every_s=30.0)
        assert digests.due(store.db, 0.0, "2026-12-01T00:00:00.000Z") == []  # nothing to say
        crossing(store, A, "lobby", "staff", 1)
        assert digests.due(store.db, 10.0, "t") == []  # not due yet
        due = digests.due(store.db, 30.0, "2026-12-01T00:00:30.000Z")
        assert [(z, t) for z, t, _ in due] == [
            ("lobby", "edge/s/gate-a/positions/lobby"),
            ("staff", "edge/s/gate-a/positions/staff"),
        ]
        body = PositionsPayload.model_validate_json(due[1][2])
        assert (body.device, body.zone, body.entries) == (
            "gate-a",
            "staff",
            [(A, "lobby", "staff", "2026-12-01T00:00:01.000Z", 1)],
        )
        for mid, (zone, _, _) in enumerate(due):
            digests.sent(zone, mid, queued=True)
        assert digests.due(store.db, 60.0, "t") == []  # unchanged
        fields = {"card_ref": A, "zone": None, "by": "boss", "was_in": "staff", "changed": True}
        own(store, EventKind.SYSTEM, "anti_passback_card_forgiven", 3, **fields)
        # Forgiven, the card no longer comes from the lobby: both digests change.
        assert [z for z, _, _ in digests.due(store.db, 90.0, "t")] == ["lobby", "staff"]
        # A refused PUBACK (the broker's rights) sends it again next time; a reconnect, all.
        assert digests.acked(1, False, "Not authorized")
        assert not digests.acked(1, True, "Success")
        assert [z for z, _, _ in digests.due(store.db, 120.0, "t")] == ["staff"]
        digests.reset()
        assert digests.due(store.db, 121.0, "t") == []  # never two rounds within 2 s
        assert [z for z, _, _ in digests.due(store.db, 122.0, "t")] == ["lobby", "staff"]


def test_a_valid_digest_is_judged_into_its_crossings() -> None:
    second = [B, "staff", "", "2026-12-01T00:00:02.000Z", 0]  # forgiven: in no zone
    verdict = judge_digest(TOPIC, digest(entries=[ENTRY, second]), False, WHERE, ZONES, NOW)
    assert verdict == [
        PeerCrossing(A, "lobby", "staff", ("2026-12-01T00:00:01.000Z", "gate-b", 4)),
        PeerCrossing(B, "staff", "", ("2026-12-01T00:00:02.000Z", "gate-b", 0)),
    ]
    assert judge_digest(TOPIC, b"", True, WHERE, ZONES, NOW) is None  # deleted
    mine = "edge/s/gate-a/positions/staff"
    assert judge_digest(mine, digest(device="gate-a"), False, WHERE, ZONES, NOW) is None
    relearnt = judge_digest(mine, digest(device="gate-a"), True, WHERE, ZONES, NOW)
    assert relearnt == [
        PeerCrossing(A, "lobby", "staff", ("2026-12-01T00:00:01.000Z", "gate-a", 4))
    ]


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("edge/s/gate-b/positions/vault", digest(zone="vault"), "not served"),
        ("edge/s/gate-b/crossings/staff", digest(), "not a positions topic"),
        (TOPIC, digest(device="gate-c"), "does not match"),
        (TOPIC, digest(zone="lobby"), "does not match"),
        (TOPIC, digest(entries=[[A, "lobby", "garage", ENTRY[3], 4]]), "neither leaves nor"),
        (TOPIC, digest(entries=[[A, "", "garage", ENTRY[3], 4]]), "malformed"),
        (TOPIC, digest(entries=[ENTRY, [A, "staff", "lobby", ENTRY[3], 5]]), "listed twice"),
        (TOPIC, digest(entries=[[A, "lobby", "staff", "2026-12-01T00:15:00.001Z", 4]]), "ahead"),
        (TOPIC, digest(entries=[["felica:0114000000000001", "lobby", "staff", ENTRY[3], 4]]), "m"),
        (TOPIC, digest(entries=[[A, "lobby", "staff", ENTRY[3], -1]]), "malformed"),
        (TOPIC, digest(entries=[[A, "lobby", "staff", ENTRY[3]]]), "malformed"),
        (TOPIC, digest(extra="x"), "malformed"),
        (TOPIC, digest(entries=[ENTRY] * (MAX_DIGEST_ENTRIES + 1)), "malformed"),
        (TOPIC, b" " * (MAX_DIGEST_BYTES + 1), "over"),
        (TOPIC, b"[" * 100_000, "malformed"),
    ],
)
def test_a_hostile_digest_is_refused_whole_with_a_reason(
    topic: str, payload: bytes, reason: str
) -> None:
    verdict = judge_digest(topic, payload, False, WHERE, ZONES, NOW)
    assert isinstance(verdict, Refused), verdict
    assert reason in verdict.reason


@given(st.binary(max_size=2048), st.text(max_size=40), st.booleans())
def test_judging_a_digest_never_raises(payload: bytes, level: str, retained: bool) -> None:
    topic = f"edge/s/{level}/positions/lobby"
    verdict = judge_digest(topic, payload, retained, WHERE, ZONES, NOW)
    assert verdict is None or isinstance(verdict, Refused)


def test_a_digest_is_merged_entry_by_entry_and_a_repeat_changes_nothing() -> None:
    now = Instant(0.0, NOW)
    with Store(":memory:", memory=True) as store:
        side = peers(store)
        older = PeerCrossing(B, "lobby", "staff", ("2026-12-01T00:00:09.000Z", "gate-c", 1))
        assert side.merge(older, now)
        entries = [ENTRY, [B, "staff", "lobby", "2026-12-01T00:00:02.000Z", 0]]
        message = InboundMessage(TOPIC, digest(entries=entries), True)
        assert side.handle(message, now) == []
        assert (side.tracker.position(A), side.tracker.position(B)) == ("staff", "staff")
        assert side.applied == 2  # A from the digest; B's entry lost to the later crossing
        statements: list[str] = []
        store.db.conn.set_trace_callback(statements.append)
        side.handle(message, Instant(1.0, NOW))
        store.db.conn.set_trace_callback(None)
        assert statements == []  # known entries: not even a transaction
        assert side.drops.dropped == 0  # taken (a second later), not dropped
        bad = InboundMessage(TOPIC, digest(device="gate-c"), True)
        assert side.handle(bad, Instant(2.0, NOW)) == []
        assert (side.applied, side.drops.dropped) == (2, 1)


def test_a_sender_s_live_digests_of_a_zone_are_taken_a_few_at_once_then_one_a_second() -> None:
    with Store(":memory:", memory=True) as store:
        side = peers(store)
        # Retained (what the broker kept, handed over when this gate subscribes) then the live
        # answers to its hello a moment later: all taken.
        side.handle(InboundMessage(TOPIC, digest(), True), Instant(10.0, NOW))
        assert side.applied == 1
        entries = [ENTRY, [B, "lobby", "staff", "2026-12-01T00:00:03.000Z", 4]]
        side.handle(InboundMessage(TOPIC, digest(entries=entries), False), Instant(10.02, NOW))
        assert (side.applied, side.drops.dropped) == (2, 0)
        # A flood: two more live ones are read (the burst), the rest dropped unread.
        for _ in range(100):
            side.handle(InboundMessage(TOPIC, b"not even json", False), Instant(10.5, NOW))
        assert side.drops.dropped == 100
        entries = [ENTRY, [C, "lobby", "staff", "2026-12-01T00:00:05.000Z", 6]]
        side.handle(InboundMessage(TOPIC, digest(entries=entries), False), Instant(10.9, NOW))
        assert side.applied == 2  # still within the second: dropped
        side.handle(InboundMessage(TOPIC, digest(entries=entries), False), Instant(11.6, NOW))
        assert side.applied == 3  # a second on: taken


def test_a_full_digest_fits_its_byte_limit() -> None:
    zone = "z" * 64
    entries = [
        (f"{i:064x}", zone, zone, "2026-12-01T00:00:00.000Z", 2**63 - 1)
        for i in range(MAX_DIGEST_ENTRIES)
    ]
    assert len(digest_body("d" * 63, zone, "2026-12-01T00:00:00.000Z", entries)) <= (
        MAX_DIGEST_BYTES
    )


def test_a_device_reads_its_own_retained_digest_back_only_for_what_it_lost() -> None:
    now = Instant(0.0, NOW)
    mine = "edge/s/gate-a/positions/staff"
    with Store(":memory:", memory=True) as store:
        crossing(store, A, "lobby", "staff", 1)
        (entry,) = state.own_positions(store.db, "gate-a", "staff", 10)
        body = digest(device="gate-a", entries=[entry])
        side = peers(store)  # the tracker holds its own crossing with seq 0, as the core does
        side.tracker.crossed(A, "staff", ("2026-12-01T00:00:01.000Z", "gate-a", 0))
        statements: list[str] = []
        store.db.conn.set_trace_callback(statements.append)
        side.handle(InboundMessage(mine, body, True), now)
        store.db.conn.set_trace_callback(None)
        assert statements == []  # its own crossing, known: nothing to do
    with Store(":memory:", memory=True) as empty:
        side = peers(empty)
        side.handle(InboundMessage(mine, body, False), now)  # live (not kept): not relearnt
        assert side.tracker.position(A) is None
        side.handle(InboundMessage(mine, body, True), now)
        assert side.tracker.position(A) == "staff"
        assert state.own_positions(empty.db, "gate-a", "staff", 10)[0][0] == A  # its own again


def test_a_peer_s_hello_sends_what_changed_early_but_not_more_often_than_every_2_s() -> None:
    with Store(":memory:", memory=True) as store:
        digests = Digests("edge", "s", "gate-a", ZONES, every_s=30.0)
        crossing(store, A, "lobby", "staff", 1)
        assert len(digests.due(store.db, 0.0, "t")) == 2
        crossing(store, B, "lobby", "staff", 2)
        assert digests.due(store.db, 1.0, "t") == []  # changed, but not due for 30 s
        digests.soon()
        assert digests.due(store.db, 1.5, "t") == []  # a hello, 1.5 s after the last digests
        assert [z for z, _, _ in digests.due(store.db, 2.0, "t")] == ["lobby", "staff"]
        crossing(store, C, "lobby", "staff", 3)
        digests.soon()  # hellos in a flood send no more than one round every 2 s
        assert digests.due(store.db, 3.0, "t") == []
        assert [z for z, _, _ in digests.due(store.db, 4.0, "t")] == ["lobby", "staff"]
        assert digests.due(store.db, 10.0, "t") == []  # unchanged since, nothing until asked
