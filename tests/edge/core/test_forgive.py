"""A manager's forgiveness of one card: the card is put nowhere as of the command's time, so
it may enter again, and a peer's older crossing arriving later does not bring it back."""

from __future__ import annotations

from edge.core.decision import Reason
from edge.core.events import ForgivePosition
from edge.core.outputs import EventKind
from tests.edge.core.harness import Harness, records
from tests.edge.core.test_zones import cross


def test_a_forgiven_card_may_enter_again_and_an_older_peer_crossing_loses(h: Harness) -> None:
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.ANTI_PASSBACK
    entered = h.controller.passback.stamp("ref-bob")
    assert entered is not None
    h.clock.advance(5)
    (forgiven,) = records(
        h.send(ForgivePosition("ref-bob", None, "console:boss")),
        EventKind.SYSTEM,
        "anti_passback_card_forgiven",
    )
    assert (forgiven["was_in"], forgiven["changed"], forgiven["by"]) == (
        "staff",
        True,
        "console:boss",
    )
    assert h.controller.passback.position("ref-bob") is None
    # A peer's entry from before the forgiveness, delivered late, changes nothing.
    late = (entered[0], "gate-b", 9)
    assert not h.controller.passback.merge("ref-bob", "staff", late)
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    assert h.controller.passback.position("ref-bob") == "staff"


def test_forgiving_in_another_zone_leaves_the_position(h: Harness) -> None:
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
    (forgiven,) = records(
        h.send(ForgivePosition("ref-bob", "lobby", "console:boss")),
        EventKind.SYSTEM,
        "anti_passback_card_forgiven",
    )
    assert (forgiven["was_in"], forgiven["changed"]) == ("staff", False)
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.ANTI_PASSBACK


def test_forgiving_a_card_with_no_position_says_so(h: Harness) -> None:
    (forgiven,) = records(
        h.send(ForgivePosition("ref-eve", "staff", "console:boss")),
        EventKind.SYSTEM,
        "anti_passback_card_forgiven",
    )
    assert (forgiven["was_in"], forgiven["changed"]) == (None, True)
