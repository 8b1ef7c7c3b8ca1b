"""Clock skew between the gates of a zone: this device's crossing is stamped after the card's
last crossing as this device knows it, so an exit here never loses to the entry it follows
because a peer's clock runs ahead."""

from __future__ import annotations

from datetime import timedelta

from edge.core.clock import utc_text
from edge.core.decision import Reason
from edge.core.events import CardPresented, ContactChanged, ForgivePosition
from edge.core.outputs import EventKind
from tests.edge.core.harness import Harness, records
from tests.edge.core.test_zones import cross


def crossing_ts(h: Harness, reader: str, ref: str) -> str:
    """Cross, and return the crossing event's time as the contract writes it."""
    h.send(CardPresented(reader, ref))
    (event,) = records(h.send(ContactChanged("gate", True)), EventKind.ACCESS, "crossing")
    h.send(ContactChanged("gate", False))
    return str(event["ts"])


def test_an_exit_after_a_peer_s_entry_stamped_ahead_is_later_still(h: Harness) -> None:
    now = h.clock.now().utc
    ahead = utc_text(now + timedelta(seconds=90))  # gate-b's clock runs 90 s ahead
    assert h.controller.passback.merge("ref-bob", "staff", (ahead, "gate-b", 7))
    ts = crossing_ts(h, "gate-out", "ref-bob")
    assert ts == utc_text(now + timedelta(seconds=90, milliseconds=1))
    assert h.controller.passback.position("ref-bob") == "lobby"
    # Wherever the two meet, the exit wins: a peer holding the entry takes the exit.
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED


def test_with_no_peer_ahead_a_crossing_is_stamped_with_this_clock(h: Harness) -> None:
    now = h.clock.now().utc
    behind = utc_text(now - timedelta(seconds=30))
    assert h.controller.passback.merge("ref-bob", "staff", (behind, "gate-b", 7))
    assert crossing_ts(h, "gate-out", "ref-bob") == utc_text(now)


def test_a_forgiveness_after_a_peer_s_entry_stamped_ahead_still_forgives(h: Harness) -> None:
    ahead = utc_text(h.clock.now().utc + timedelta(seconds=60))
    assert h.controller.passback.merge("ref-bob", "staff", (ahead, "gate-b", 7))
    (forgiven,) = records(
        h.send(ForgivePosition("ref-bob", None, "console:boss")),
        EventKind.SYSTEM,
        "anti_passback_card_forgiven",
    )
    assert (forgiven["was_in"], forgiven["changed"]) == ("staff", True)
    assert cross(h, "gate-in", "ref-bob")["reason"] == Reason.GRANTED
