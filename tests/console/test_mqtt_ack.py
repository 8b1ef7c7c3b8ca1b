"""The console's manual acknowledgement against a reconnection: checking which connection a
message came on and queueing its ack happen as one step, so a new connection counted on
paho's thread meanwhile never receives an ack meant for the last one.

No broker: paho's client is driven directly (its ack replaced to stand in the middle).
"""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pytest

from console.mqtt import ConsoleClient, Message

SETTLE_S = 0.5  # how long a reconnection is given to slip in between check and ack


def test_a_reconnection_cannot_slip_between_the_check_and_the_ack(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    console = ConsoleClient("127.0.0.1", 1, client_id="console-test", manual_ack=True)
    connected = SimpleNamespace(is_failure=False)
    console._on_connect(console.client, None, None, connected, None)  # the first connection
    counted_during_ack: list[int] = []
    reconnections: list[threading.Thread] = []

    def ack(mid: int, qos: int) -> None:
        # paho's thread counts a new connection while this ack is being queued.
        reconnect = threading.Thread(
            target=console._on_connect, args=(console.client, None, None, connected, None)
        )
        reconnect.start()
        reconnections.append(reconnect)
        reconnect.join(SETTLE_S)  # done at once unless the ack holds the connection count
        counted_during_ack.append(console._connection)

    monkeypatch.setattr(console.client, "ack", ack)
    try:
        console.ack(Message("edge/s/d/events/access", b"{}", False, 7, 1, None, 1))
        assert counted_during_ack == [1]  # the ack went out on the connection it was for
        reconnections[0].join(10)
        assert console._connection == 2  # and the reconnection was counted right after
    finally:
        console.close()
