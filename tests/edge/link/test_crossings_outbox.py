"""A crossing leaves the outbox only once the broker has acknowledged every one of its
publishes (its event topic and the crossings of both zones): a refused one keeps it."""

from __future__ import annotations

import logging
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlite_utils import Database

from edge.core.outputs import EventKind, EventRecord
from edge.link.mqtt import MqttLink
from edge.store import Store, outbox
from firmware_config.deployment import MqttConfig
from provisioning.broker import acl
from tests.broker import Broker, start_broker

pytestmark = pytest.mark.services  # starts mosquitto

SITE = "kamakura-city-hall"
ZONES = frozenset({"lobby", "staff-area"})
# gate-a's rights name only the lobby (a stale ACL); gate-b's name both zones of its door.
RIGHTS = {"gate-a": {"lobby"}, "gate-b": set(ZONES)}
NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    workdir = tmp_path / "broker"
    workdir.mkdir()
    passwd = workdir / "passwd"
    passwd.touch()
    for user in RIGHTS:
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, f"{user}-pw"], check=True)
    rules = acl("edge", SITE, dict.fromkeys(RIGHTS, "device"), RIGHTS)
    b = start_broker(workdir, acl=rules, passwords=passwd)
    yield b
    b.stop()


class Backlog:
    """The link's status builder: notes the outbox backlog each time the link asks."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.seen: int | None = None

    def __call__(self, db: Database, state: str) -> dict[str, object]:
        with self.cond:
            self.seen = outbox.backlog(db)
            self.cond.notify_all()
        return {"v": 1, "state": state}

    def wait(self, backlog: int) -> None:
        with self.cond:
            assert self.cond.wait_for(lambda: self.seen == backlog, timeout=15), self.seen


def run_link(tmp_path: Path, broker: Broker, device: str) -> tuple[MqttLink, Store, Backlog]:
    password = tmp_path / f"{device}.pw"
    password.write_text(f"{device}-pw")
    store = Store(tmp_path / f"{device}.db")
    crossing = EventRecord(
        EventKind.ACCESS,
        "crossing",
        NOW,
        {"card_ref": "ab" * 32, "from_zone": "lobby", "to_zone": "staff-area", "door": "g"},
    )
    door = EventRecord(EventKind.DOOR, "closed", NOW, {"door": "g"})
    with store.transaction() as db:
        outbox.append(db, device, [crossing, door], True)
    backlog = Backlog()
    link = MqttLink(
        MqttConfig(host="127.0.0.1", port=broker.port, username=device, password_file=password),
        site=SITE,
        device=device,
        store_path=store.path,
        status=backlog,
        on_message=lambda message: None,
        status_every_s=0.05,
        crossing_zones=ZONES,
    )
    link.start()
    return link, store, backlog


def test_a_crossing_refused_on_one_zone_stays_in_the_outbox(
    tmp_path: Path, broker: Broker, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="edge.link.mqtt")
    link, store, backlog = run_link(tmp_path, broker, "gate-a")
    try:
        backlog.wait(1)  # the door event is gone; the crossing waits
        assert [e.seq for e in outbox.pending(store.db)] == [1]
        assert "broker refused event seq 1" in caplog.text
    finally:
        link.close()
        store.close()


def test_a_crossing_acknowledged_on_every_topic_leaves_the_outbox(
    tmp_path: Path, broker: Broker
) -> None:
    link, store, backlog = run_link(tmp_path, broker, "gate-b")
    try:
        backlog.wait(0)
        assert link.acknowledged == 2
    finally:
        link.close()
        store.close()
