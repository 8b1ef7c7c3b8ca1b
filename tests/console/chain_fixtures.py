"""A small verified log for the chain and anchor tests: ten events, an acknowledged alarm,
an audit row."""

from __future__ import annotations

from typing import Any

from console.alarms import acknowledge
from console.log import CentralLog
from console.users import audit
from tests.console.test_log import event, events

RECEIVED = "2026-11-26T00:00:02.000Z"


def alarm(device: str, seq: int, type_: str) -> dict[str, Any]:
    return event(device, seq, {"kind": "alarm", "type": type_, "state": "raised"})


def filled(log: CentralLog) -> None:
    """Ten events (one an alarm acknowledged twice) and three audit rows: a verified log."""
    log.append(events("gate-1", range(1, 6)), RECEIVED)
    log.append([alarm("gate-1", 6, "lost_card_used"), alarm("gate-1", 7, "door_forced")], RECEIVED)
    log.append(events("gate-1", range(8, 11)), RECEIVED)
    audit(log, "manager1", "export", "log.csv: 10 rows")
    assert acknowledge(log, "gate-1:7", "guard1", "on my way")
    assert acknowledge(log, "gate-1:7", "guard2", "door shut")
    assert log.verify() == []
