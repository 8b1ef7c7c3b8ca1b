"""Anti-passback positions in the store: peers' crossings merged in one transaction with the
tracker, idempotent and order-independent, and restored with their stamps after a restart."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from edge.core.antipassback import AntiPassbackTracker, Stamp
from edge.core.clock import Instant
from edge.core.controller import DeviceState
from edge.core.outputs import EventKind, EventRecord
from edge.link.crossings import PeerCrossing
from edge.link.messages import InboundMessage
from edge.peers import PeerCrossings
from edge.store import Store, outbox, state
from simulator.clock import FakeClock
from tests.edge.core.harness import SPEC

CARDS = ("a" * 64, "b" * 64)
NOW = Instant(0.0, datetime(2026, 12, 1, 0, 1, tzinfo=UTC))
crossings = st.lists(
    st.builds(
        PeerCrossing,
        st.sampled_from(CARDS),
        st.sampled_from(["staff", "lobby"]),
        st.sampled_from(["staff", "lobby"]),
        st.tuples(
            st.sampled_from(["2026-12-01T00:00:00.000Z", "2026-12-01T00:00:00.001Z"]),
            st.sampled_from(["gate-b", "gate-c"]),
            st.integers(1, 3),
        ),
    ),
    max_size=10,
)


def peers(store: Store) -> PeerCrossings:
    return PeerCrossings(
        root="edge",
        site="s",
        device="gate-a",
        zones=frozenset({"staff", "lobby"}),
        tracker=AntiPassbackTracker(SPEC.zones),
        store=store,
    )


def stored(store: Store) -> dict[str, tuple[str, Stamp]]:
    _, positions, _ = state.load(store.db)
    return {p[0]: (p[1], p[2]) for p in positions if len(p) == 3}


@given(crossings, st.integers(0, 2**32))
def test_the_store_and_the_tracker_agree_whatever_the_order_and_repeats(
    items: list[PeerCrossing], seed: int
) -> None:
    shuffled = [*items, *items]
    random.Random(seed).shuffle(shuffled)
    results = []
    for order in (items, shuffled):
        with Store(":memory:", memory=True) as store:
            side = peers(store)
            for crossing in order:
                side.merge(crossing, NOW)
            on_disk = stored(store)
            in_memory = {
                c: (side.tracker.position(c), side.tracker.stamp(c))
                for c in CARDS
                if side.tracker.stamp(c) is not None
            }
            assert on_disk == in_memory
            results.append(on_disk)
    assert results[0] == results[1]
    assert sum(1 for c in CARDS if any(i.card_ref == c for i in items)) == len(results[0])


def test_a_restart_restores_positions_with_their_stamps() -> None:
    with Store(":memory:", memory=True) as store:
        side = peers(store)
        stamp = ("2026-12-01T00:00:00.000Z", "gate-b", 2)
        assert side.merge(PeerCrossing(CARDS[0], "lobby", "staff", stamp), NOW)
        assert not side.merge(PeerCrossing(CARDS[0], "lobby", "staff", stamp), NOW)
        _, positions, _ = state.load(store.db)
        again = AntiPassbackTracker(SPEC.zones)
        again.restore(positions)
        assert again.position(CARDS[0]) == "staff"
        assert again.stamp(CARDS[0]) == stamp
        assert not again.merge(CARDS[0], "lobby", ("2026-11-30T23:59:59.999Z", "gate-c", 9))


def test_an_own_crossing_is_stored_under_this_device_and_an_older_peer_one_loses() -> None:
    with Store(":memory:", memory=True) as store:
        crossing = EventRecord(
            EventKind.ACCESS,
            "crossing",
            datetime(2026, 12, 1, 0, 0, 5, tzinfo=UTC),
            {"card_ref": CARDS[1], "from_zone": "lobby", "to_zone": "staff"},
        )
        with store.transaction() as db:
            outbox.append(db, "gate-a", [crossing], True)
            state.apply(db, [crossing], DeviceState(), DeviceState())
        assert stored(store)[CARDS[1]] == ("staff", ("2026-12-01T00:00:05.000Z", "gate-a", 0))
        late = PeerCrossing(CARDS[1], "staff", "lobby", ("2026-12-01T00:00:04.000Z", "gate-b", 5))
        assert not peers(store).merge(late, NOW)
        assert stored(store)[CARDS[1]][0] == "staff"


def test_a_peer_s_hostile_or_future_crossing_is_dropped_and_counted() -> None:
    now = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    clock = FakeClock(now)
    with Store(":memory:", memory=True) as store:
        side = peers(store)
        fields = {
            "v": 1,
            "id": "gate-b:3",
            "device": "gate-b",
            "seq": 3,
            "card_ref": CARDS[0],
            "from_zone": "lobby",
            "to_zone": "staff",
            "clock_synced": True,
        }
        topic = "edge/s/gate-b/crossings/staff"
        for ts, applied in (
            ("2026-12-01T00:05:00.001Z", False),  # over 5 minutes ahead of this clock
            ("2026-12-01T00:04:59.000Z", True),
        ):
            body = json.dumps({**fields, "ts": ts}).encode()
            assert side.handle(InboundMessage(topic, body, False), clock.now()) == []
            assert (side.tracker.position(CARDS[0]) == "staff") is applied
        assert side.handle(InboundMessage(topic, b"{", False), clock.now()) == []
        assert (side.applied, side.drops.dropped) == (1, 2)
        assert stored(store)[CARDS[0]][0] == "staff"


def test_a_forgiveness_is_stored_as_nowhere_and_an_older_peer_crossing_loses() -> None:
    with Store(":memory:", memory=True) as store:
        side = peers(store)
        entry = ("2026-12-01T00:00:01.000Z", "gate-b", 2)
        assert side.merge(PeerCrossing(CARDS[0], "lobby", "staff", entry), NOW)
        at = datetime(2026, 12, 1, 0, 0, 5, tzinfo=UTC)
        forgiven = EventRecord(
            EventKind.SYSTEM,
            "anti_passback_card_forgiven",
            at,
            {"card_ref": CARDS[0], "zone": None, "by": "boss", "was_in": "staff", "changed": True},
        )
        with store.transaction() as db:
            outbox.append(db, "gate-a", [forgiven], True)
            state.apply(db, [forgiven], DeviceState(), DeviceState())
        assert stored(store)[CARDS[0]] == ("", ("2026-12-01T00:00:05.000Z", "gate-a", 0))
        late = PeerCrossing(CARDS[0], "lobby", "staff", ("2026-12-01T00:00:04.000Z", "gate-c", 1))
        assert not side.merge(late, NOW)
        _, positions, _ = state.load(store.db)
        again = AntiPassbackTracker(SPEC.zones)
        again.restore(positions)
        assert again.position(CARDS[0]) is None
        assert not again.merge(CARDS[0], "staff", entry)


def test_a_zone_s_forgiveness_forgets_only_what_crossed_before_its_instant() -> None:
    with Store(":memory:", memory=True) as store:
        side = peers(store)
        before = ("2026-11-30T17:59:59.000Z", "gate-b", 1)  # 02:59:59 in Tokyo
        after = ("2026-11-30T18:00:01.000Z", "gate-c", 1)  # 03:00:01, a clock running late
        assert side.merge(PeerCrossing(CARDS[0], "lobby", "staff", before), NOW)
        assert side.merge(PeerCrossing(CARDS[1], "lobby", "staff", after), NOW)
        forgiven = EventRecord(
            EventKind.SYSTEM,
            "anti_passback_forgiven",
            datetime(2026, 11, 30, 18, 0, 5, tzinfo=UTC),  # recorded at the tick after 03:00
            {"zone": "staff", "forgiven_at": "2026-11-30T18:00:00.000Z"},
        )
        with store.transaction() as db:
            state.apply(db, [forgiven], DeviceState(), DeviceState())
        assert set(stored(store)) == {CARDS[1]}


def test_a_degraded_zone_is_a_lasting_alarm_kept_per_zone_until_cleared() -> None:
    def degraded(zone: str, state_: str) -> EventRecord:
        at = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
        return EventRecord(
            EventKind.ALARM, "anti_passback_degraded", at, {"zone": zone, "state": state_}
        )

    with Store(":memory:", memory=True) as store:
        with store.transaction() as db:
            records = [degraded("staff", "raised"), degraded("lobby", "raised")]
            state.apply(db, records, DeviceState(), DeviceState())
        assert sorted(str(a["zone"]) for a in state.active_alarms(store.db)) == ["lobby", "staff"]
        with store.transaction() as db:
            state.apply(db, [degraded("lobby", "cleared")], DeviceState(), DeviceState())
        assert [a["zone"] for a in state.active_alarms(store.db)] == ["staff"]
