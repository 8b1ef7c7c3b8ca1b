"""A peer's crossing that contradicts this gate's own raises `anti_passback_conflict`, written to
the outbox in the same transaction as the position it moves, and only by the contradicted gate."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from edge.core.antipassback import AntiPassbackTracker
from edge.core.clock import Instant
from edge.link.crossings import PeerCrossing
from edge.link.messages import InboundMessage
from edge.link.positions import digest_body
from edge.peers import PeerCrossings
from edge.store import Store, outbox, state
from tests.edge.core.harness import SPEC

CARD = "c" * 64
NOW = Instant(5.0, datetime(2026, 12, 1, 0, 10, tzinfo=UTC))
OWN = ("2026-12-01T00:00:00.000Z", "gate-a", 0)


@pytest.fixture
def store() -> Iterator[Store]:
    with Store(":memory:", memory=True) as store:
        yield store


def gate(store: Store, device: str = "gate-a", synced: bool = True) -> PeerCrossings:
    """A gate that let CARD into staff itself (stored and in its tracker)."""
    tracker = AntiPassbackTracker(SPEC.zones)
    with store.transaction() as db:
        state.merge_position(db, CARD, "staff", OWN, own=True)
    tracker.crossed(CARD, "staff", OWN)
    return PeerCrossings(
        root="edge",
        site="s",
        device=device,
        zones=frozenset({"staff", "lobby"}),
        tracker=tracker,
        store=store,
        clock_synced=lambda: synced,
    )


def alarms(store: Store) -> list[dict[str, object]]:
    return [
        e.payload
        for e in outbox.pending(store.db)
        if e.payload.get("type") == "anti_passback_conflict"
    ]


def test_a_second_entry_at_another_gate_is_a_conflict(store: Store) -> None:
    side = gate(store, synced=False)
    peer = ("2026-12-01T00:04:00.000Z", "gate-b", 12)
    assert side.merge(PeerCrossing(CARD, "lobby", "staff", peer), NOW)
    (alarm,) = alarms(store)
    assert {k: alarm[k] for k in ("kind", "state", "card_ref", "zone", "to_zone", "peer")} == {
        "kind": "alarm",
        "state": "raised",
        "card_ref": CARD,
        "zone": "staff",
        "to_zone": "staff",
        "peer": "gate-b",
    }
    assert (alarm["peer_ts"], alarm["own_ts"]) == (peer[0], OWN[0])
    assert (alarm["ts"], alarm["device"], alarm["clock_synced"]) == (
        "2026-12-01T00:10:00.000Z",
        "gate-a",
        False,
    )
    assert side.conflicts == 1
    # The same crossing again (a repeat, a digest) moves nothing and reports nothing more.
    assert not side.merge(PeerCrossing(CARD, "lobby", "staff", peer), NOW)
    assert len(alarms(store)) == 1


def test_leaving_at_another_gate_is_no_conflict(store: Store) -> None:
    side = gate(store)
    assert side.merge(
        PeerCrossing(CARD, "staff", "lobby", ("2026-12-01T00:04:00.000Z", "gate-b", 12)), NOW
    )
    assert alarms(store) == []
    assert side.tracker.position(CARD) == "lobby"


def test_only_the_contradicted_gate_reports(store: Store) -> None:
    side = gate(store, device="gate-c")  # the position's stamp is gate-a's, not its own
    assert side.merge(
        PeerCrossing(CARD, "lobby", "staff", ("2026-12-01T00:04:00.000Z", "gate-b", 12)), NOW
    )
    assert alarms(store) == []


def test_the_conflict_and_the_position_are_one_transaction(store: Store) -> None:
    side = gate(store)
    # The outbox cannot take the alarm: the position must not move either.
    store.db.execute(
        "CREATE TRIGGER no_alarm BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'x'); END"
    )
    crossing = PeerCrossing(CARD, "lobby", "staff", ("2026-12-01T00:04:00.000Z", "gate-b", 12))
    assert not side.merge(crossing, NOW)
    _, positions, _ = state.load(store.db)
    assert positions == [(CARD, "staff", OWN)]
    assert side.tracker.stamp(CARD) == OWN
    store.db.execute("DROP TRIGGER no_alarm")
    assert side.merge(crossing, NOW)
    assert len(alarms(store)) == 1


def test_a_digest_never_raises_a_conflict(store: Store) -> None:
    """A digest holds a card's latest crossing only: after a partition, the card may have gone
    out and come back in by another gate, an ordinary day, not a card entering twice."""
    side = gate(store)
    entry = (CARD, "lobby", "staff", "2026-12-01T00:04:00.000Z", 12)
    body = digest_body("gate-b", "staff", "2026-12-01T00:05:00.000Z", [entry])
    side.handle(InboundMessage("edge/s/gate-b/positions/staff", body, True), NOW)
    assert side.tracker.stamp(CARD) == ("2026-12-01T00:04:00.000Z", "gate-b", 12)
    assert alarms(store) == []


def test_a_conflict_a_digest_showed_is_reported_when_its_crossing_arrives(store: Store) -> None:
    """A gate back from a partition sends its digest before its backlog: the position is learnt
    from the digest, and the conflict is reported once the crossing itself comes."""
    side = gate(store)
    stamp = ("2026-12-01T00:04:00.000Z", "gate-b", 12)
    body = digest_body(
        "gate-b",
        "staff",
        "2026-12-01T00:05:00.000Z",
        [(CARD, "lobby", "staff", stamp[0], stamp[2])],
    )
    side.handle(InboundMessage("edge/s/gate-b/positions/staff", body, True), NOW)
    assert alarms(store) == []
    assert not side.merge(PeerCrossing(CARD, "lobby", "staff", stamp), NOW)  # known already
    (alarm,) = alarms(store)
    assert (alarm["card_ref"], alarm["zone"], alarm["peer"]) == (CARD, "staff", "gate-b")
    assert not side.merge(PeerCrossing(CARD, "lobby", "staff", stamp), NOW)  # a repeat
    assert len(alarms(store)) == 1


def test_a_card_that_went_out_and_back_in_elsewhere_is_no_conflict_whatever_the_order(
    store: Store,
) -> None:
    """The digest (the card's latest entry) lands first; the backlog follows in order: the exit
    withdraws what the digest set aside, and the entry raises nothing."""
    side = gate(store)
    out = ("2026-12-01T00:02:00.000Z", "gate-b", 11)
    back = ("2026-12-01T00:04:00.000Z", "gate-b", 12)
    body = digest_body(
        "gate-b", "staff", "2026-12-01T00:05:00.000Z", [(CARD, "lobby", "staff", back[0], 12)]
    )
    side.handle(InboundMessage("edge/s/gate-b/positions/staff", body, True), NOW)
    assert not side.merge(PeerCrossing(CARD, "staff", "lobby", out), NOW)
    assert not side.merge(PeerCrossing(CARD, "lobby", "staff", back), NOW)
    assert alarms(store) == []
