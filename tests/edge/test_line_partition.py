"""Four gates of one security line on a real mosquitto, one of them cut off for real.

Gate D reaches the broker through a `NetCut`: cutting it drops D's TCP connection and turns
its reconnects away, as a pulled cable would. While cut off, D decides on what it knows
(hard) or lets people through with an alarm (soft); once healed it hands its crossings to
the others, learns theirs from their retained positions, and a card handed back over the
line is reported. A gate restarted with an empty store relearns the positions.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edge.cardref import card_references
from edge.link.positions import DIGEST_EVERY_S
from tests.edge.agent_fixtures import KEY, enrol, felica
from tests.edge.line_fixtures import CARDS, Line, start_line

pytestmark = pytest.mark.services  # starts mosquitto, a NetCut and four agents

GATES = ("gate-a", "gate-b", "gate-c", "gate-d")
LEARN_S = DIGEST_EVERY_S + 20  # a digest period, and the time to reconnect
CUT_OFF = "cut off from its peers"  # the agent's log line once the grace period is over


def ref(card: int) -> str:
    return card_references(KEY, [("felica", felica(card))])[0]


@pytest.fixture(params=["hard", "soft"])
def line(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Line]:
    yield from start_line(tmp_path, GATES, "hard", offline=request.param, cut=("gate-d",))


def cut_off(line: Line, gate: str) -> None:
    """Cut `gate`'s network path and wait until it knows it is cut off from its peers."""
    line.cuts[gate].cut()
    line.online(gate, state="offline")  # the broker saw the connection drop: its last will
    assert line.gates[gate].request(op="wait_log", text=CUT_OFF, timeout=60)["ok"], CUT_OFF


def test_a_cut_off_gate_decides_alone_and_reconciles_when_healed(line: Line) -> None:
    soft = line.offline == "soft"
    # Before the cut: card 1 entered at A, card 2 at B, and D heard both.
    assert line.enter("gate-a", 1)["reason"] == "granted"
    assert line.enter("gate-b", 2)["reason"] == "granted"
    line.propagate("gate-a", "gate-d", 1)
    line.propagate("gate-b", "gate-d", 1)

    cut_off(line, "gate-d")
    # Card 1 is handed back over the line and tapped in at D.
    handed_back = line.enter("gate-d", 1)
    # Card 2 leaves by B (D cannot hear it) and comes back in by D.
    assert line.leave("gate-b", 2)["reason"] == "granted"
    stale = line.enter("gate-d", 2)
    # Card 3 enters by C, which D cannot hear either.
    assert line.enter("gate-c", 3)["reason"] == "granted"
    if soft:
        # Soft: D lets both in, each marked, and says it is degraded.
        assert (handed_back["decision"], stale["decision"]) == ("granted", "granted")
    else:
        # Hard: D refuses on what it knows, right (card 1) or stale (card 2).
        assert (handed_back["reason"], stale["reason"]) == ("anti_passback", "anti_passback")

    line.cuts["gate-d"].heal()
    line.online("gate-d")
    # D's crossings reach the others: the handed-back card is reported once, by the gate whose
    # entry it contradicts, and is refused everywhere.
    if soft:
        first_of_d = line.propagate("gate-d", "gate-a", 1)
        line.watcher.wait_for(
            lambda _: line.alarms("gate-a", "anti_passback_conflict"), 30, what="the conflict"
        )
        conflicts = [a for g in GATES for a in line.alarms(g, "anti_passback_conflict")]
        assert [(a["card_ref"], a["zone"], a["peer"]) for a in conflicts] == [
            (ref(1), "staff-area", "gate-d")
        ], conflicts
        assert first_of_d.startswith("gate-d:")
        line.watcher.wait_for(
            lambda _: len(line.alarms("gate-d", "anti_passback_degraded")) >= 2,
            30,
            what="degraded raised and cleared",
        )
        degraded = [
            (a["state"], a["zone"]) for a in line.alarms("gate-d", "anti_passback_degraded")
        ]
        assert degraded[:2] == [("raised", "staff-area"), ("cleared", "staff-area")], degraded
        violations = line.alarms("gate-d", "anti_passback_violation")
        assert {a["card_ref"] for a in violations} == {ref(1), ref(2)}, violations
    else:
        assert not line.alarms("gate-d", "anti_passback_degraded")
    # D learns what it missed from the others' retained positions: card 3 (in by C) is refused
    # at D, card 2 (out by B) may come in.
    # A digest goes out at most every DIGEST_EVERY_S, so what was crossed just before the heal
    # may come with the next one.
    line.applied("gate-d", line.crossing_ids("gate-c")[0], LEARN_S)
    if not soft:  # soft: D's own later entry of card 2 wins over B's exit
        line.applied("gate-d", line.crossing_ids("gate-b")[1], LEARN_S)
    assert line.enter("gate-d", 3)["reason"] == "anti_passback"
    if not soft:
        assert line.enter("gate-d", 2)["reason"] == "granted"
    assert line.enter("gate-a", 1)["reason"] == "anti_passback"


@pytest.fixture
def hard_line(tmp_path: Path) -> Iterator[Line]:
    yield from start_line(tmp_path, GATES, "hard")


def test_a_gate_restarted_with_an_empty_store_relearns_positions(hard_line: Line) -> None:
    line = hard_line
    assert line.enter("gate-a", 1)["reason"] == "granted"
    assert line.enter("gate-b", 2)["reason"] == "granted"
    assert line.leave("gate-c", 2)["reason"] == "granted"
    line.propagate("gate-c", "gate-d", 1)
    line.stop("gate-d")
    # A replaced Pi: a new store with its credentials (as from the retained snapshot), and no
    # positions at all.
    store = line.devices["gate-d"].store
    for path in store.parent.glob(store.name + "*"):
        path.unlink()
    enrol(store, CARDS, ["gate-east"])
    line.start("gate-d")
    line.online("gate-d")
    line.applied("gate-d", line.crossing_ids("gate-a")[0], LEARN_S)
    line.applied("gate-d", line.crossing_ids("gate-c")[0], LEARN_S)
    assert line.enter("gate-d", 1)["reason"] == "anti_passback"
    assert line.enter("gate-d", 2)["reason"] == "granted"
