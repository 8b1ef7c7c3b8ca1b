"""Shared anti-passback positions: a peer's crossing is merged by (ts, device, seq), so
duplicates and any delivery order give the same positions, and a local decision reads them."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from edge.core.antipassback import AntiPassbackTracker, Stamp
from edge.core.decision import Reason
from edge.core.events import CardPresented
from edge.core.outputs import EventKind
from tests.edge.core.harness import SPEC, Harness, make_harness, records
from tests.edge.core.test_zones import cross

CARDS = ("ref-a", "ref-b")
ZONES = ("staff", "lobby", "outside")

crossings = st.lists(
    st.tuples(
        st.sampled_from(CARDS),
        st.sampled_from(ZONES),
        st.tuples(
            st.sampled_from(["2026-12-01T00:00:00.000Z", "2026-12-01T00:00:01.500Z"]),
            st.sampled_from(["gate-a", "gate-b", "gate-c"]),
            st.integers(1, 4),
        ),
    ),
    max_size=12,
)


def merged(items: list[tuple[str, str, Stamp]]) -> dict[str, str | None]:
    tracker = AntiPassbackTracker(SPEC.zones)
    for card, zone, stamp in items:
        tracker.merge(card, zone, stamp)
    return {card: tracker.position(card) for card in CARDS}


def latest(items: list[tuple[str, str, Stamp]]) -> dict[str, str | None]:
    """The rule written out: each card is where its greatest-stamped crossing took it (the
    zone breaks a tie between two claims with one stamp)."""
    best: dict[str, tuple[Stamp, str]] = {}
    for card, zone, stamp in items:
        if card not in best or (stamp, zone) > best[card]:
            best[card] = (stamp, zone)
    return {card: best[card][1] if card in best else None for card in CARDS}


@given(crossings, st.randoms(use_true_random=False))
def test_any_order_and_any_repeats_give_the_latest_crossing(
    items: list[tuple[str, str, Stamp]], rnd: object
) -> None:
    shuffled = [*items, *items[: len(items) // 2]]
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    assert merged(shuffled) == merged(items) == latest(items)


def test_an_older_or_repeated_crossing_changes_nothing() -> None:
    tracker = AntiPassbackTracker(SPEC.zones)
    assert tracker.merge("ref-a", "staff", ("2026-12-01T00:00:02.000Z", "gate-b", 7))
    assert not tracker.merge("ref-a", "staff", ("2026-12-01T00:00:02.000Z", "gate-b", 7))
    assert not tracker.merge("ref-a", "lobby", ("2026-12-01T00:00:01.000Z", "gate-c", 9))
    assert tracker.position("ref-a") == "staff"
    # Equal times: the device id, then the seq, decide the same way on every device.
    assert tracker.merge("ref-a", "lobby", ("2026-12-01T00:00:02.000Z", "gate-c", 1))
    assert tracker.position("ref-a") == "lobby"


def test_a_peer_s_entry_refuses_a_second_entry_here(h: Harness) -> None:
    h.controller.passback.merge("ref-bob", "staff", ("2026-12-01T00:00:00.000Z", "gate-b", 3))
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.ANTI_PASSBACK
    # A later exit elsewhere lets the card in again.
    h.controller.passback.merge("ref-bob", "lobby", ("2026-12-01T00:00:00.500Z", "gate-b", 4))
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED


def test_a_local_crossing_is_stamped_and_beats_an_earlier_peer_crossing(h: Harness) -> None:
    h.controller.passback.merge("ref-bob", "lobby", ("2000-01-01T00:00:00.000Z", "gate-b", 3))
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    out = records(h.log, EventKind.ACCESS, "crossing")
    stamp = h.controller.passback.stamp("ref-bob")
    assert stamp == (out[-1]["ts"], SPEC.id, 0)
    assert h.controller.passback.position("ref-bob") == "staff"
    # The peer's copy of an older exit arriving late does not move the card back.
    h.controller.passback.merge("ref-bob", "lobby", ("2000-01-01T00:00:01.000Z", "gate-b", 4))
    (again,) = records(h.send(CardPresented("gate-in", "ref-bob")), EventKind.ACCESS)
    assert again["reason"] == Reason.ANTI_PASSBACK


def test_a_crossing_from_before_the_zone_s_forgiveness_does_not_bring_a_position_back() -> None:
    # 02:59 Tokyo; the harness's staff zone is forgiven at 03:00.
    h = make_harness(start=datetime(2026, 12, 1, 17, 59, tzinfo=UTC))
    before = ("2026-12-01T17:59:30.000Z", "gate-b", 3)
    assert h.controller.passback.merge("ref-bob", "staff", before)
    assert records(h.advance(90), EventKind.SYSTEM, "anti_passback_forgiven")
    assert h.controller.passback.position("ref-bob") is None
    assert not h.controller.passback.merge("ref-bob", "staff", before)  # delivered again
    assert h.controller.passback.position("ref-bob") is None
    after = ("2026-12-01T18:01:00.000Z", "gate-b", 4)
    assert h.controller.passback.merge("ref-bob", "lobby", after)
