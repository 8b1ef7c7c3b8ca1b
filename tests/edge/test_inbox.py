"""The agent's queue: peers' crossings and digests in a bounded lane per sender, so a burst or a
flood from one peer drops only its own, never another's, a command or a door event."""

from __future__ import annotations

import logging

import pytest

from edge.core.events import FireInputChanged
from edge.inbox import Inbox, Item
from edge.link.messages import InboundMessage

BASE = "edge/s"
COMMAND = InboundMessage(f"{BASE}/gate-a/cmd/ping", b"{}", retained=False)
DOOR = FireInputChanged("gate-east", True)


def crossing(sender: str, n: int, zone: str = "staff") -> InboundMessage:
    return InboundMessage(f"{BASE}/{sender}/crossings/{zone}", str(n).encode(), retained=False)


def digest(sender: str, n: int, zone: str = "staff") -> InboundMessage:
    return InboundMessage(f"{BASE}/{sender}/positions/{zone}", str(n).encode(), retained=True)


def drain(inbox: Inbox, batch_max: int = 256) -> list[list[Item]]:
    batches = []
    while batch := inbox.take(0.0, batch_max):
        batches.append(batch)
    return batches


def test_a_flood_from_one_peer_drops_neither_another_s_crossing_nor_a_command(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = [0.0]
    inbox = Inbox(max_per_peer=100, now=lambda: clock[0])
    with caplog.at_level(logging.WARNING, logger="edge.inbox"):
        for n in range(1000):
            inbox.put(crossing("gate-x", n))
            if n == 500:
                clock[0] = 61.0  # a minute on: one more line, with the count since the last
        inbox.put(crossing("gate-b", 1))
        inbox.put(COMMAND)
        inbox.put(DOOR)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2, lines
    assert lines[0].startswith("dropped 1 peers' messages: 100 crossings of gate-x waiting")
    assert lines[1].startswith("dropped 401 peers' messages")
    assert (inbox.peers_dropped, inbox.inbound_dropped) == (900, 0)
    taken = [item for batch in drain(inbox) for item in batch]
    assert taken[:2] == [COMMAND, DOOR]  # before every peer's message
    assert crossing("gate-b", 1) in taken[2:4]  # in turn with the flooding peer, not behind it
    assert [m for m in taken if m == crossing("gate-x", 0)]  # its oldest are kept
    assert len(taken) == 2 + 1 + 100


def test_door_events_and_commands_never_wait_behind_the_peers() -> None:
    inbox = Inbox(peer_batch=4)
    for n in range(40):
        inbox.put(crossing("gate-b", n))
    first = inbox.take(0.0, 256)
    assert len(first) == 4  # peers' messages are taken a few at a time
    inbox.put(DOOR)
    inbox.put(COMMAND)
    second = inbox.take(0.0, 256)
    assert second[:2] == [DOOR, COMMAND]
    assert len(second) == 6
    assert inbox.take(0.0, 3) == [crossing("gate-b", n) for n in (8, 9, 10)]  # batch_max holds


def test_a_digest_replaces_the_same_sender_s_digest_of_the_zone_still_waiting() -> None:
    inbox = Inbox()
    for n in range(5):
        inbox.put(digest("gate-b", n))
        inbox.put(digest("gate-c", n))
    inbox.put(digest("gate-b", 9, zone="lobby"))
    taken = [item for batch in drain(inbox) for item in batch]
    assert sorted(m.payload for m in taken if isinstance(m, InboundMessage)) == [b"4", b"4", b"9"]
    assert inbox.peers_dropped == 0


def test_past_the_total_the_longest_lane_gives_way() -> None:
    inbox = Inbox(max_per_peer=100, max_peers_waiting=50)
    for n in range(50):
        inbox.put(crossing("gate-x", n))
    inbox.put(crossing("gate-b", 1))  # the burst loses its oldest, gate-b keeps its own
    inbox.put(crossing("gate-x", 50))  # the longest lane's sender: dropped
    taken = [item for batch in drain(inbox) for item in batch]
    assert crossing("gate-b", 1) in taken
    assert crossing("gate-x", 0) not in taken
    assert crossing("gate-x", 50) not in taken
    assert (len(taken), inbox.peers_dropped) == (50, 2)


def test_a_full_command_lane_drops_commands_only() -> None:
    inbox = Inbox(max_inbound=3)
    for _ in range(5):
        inbox.put(COMMAND)
    inbox.put(crossing("gate-b", 1))
    inbox.put(DOOR)
    taken = [item for batch in drain(inbox) for item in batch]
    assert taken == [COMMAND, COMMAND, COMMAND, DOOR, crossing("gate-b", 1)]
    assert (inbox.inbound_dropped, inbox.peers_dropped) == (2, 0)
