"""Hostile devices on a live building: what a stolen Pi can and cannot do to the console.

A morning plays on the small building (real mosquitto with the generated accounts and ACL,
one agent process per device, the console's collector, the web page in headless Chromium).
Two Pis are taken: a booth sensor node and a stairway door controller. Their agents are
powered off (the thief has the SD card) and their own broker accounts are used to try every
attack a hostile device has: forged crossings that would empty the fire roll call, a fire at
another device's door, events in another device's name, poison payloads (retained too), a
flood, and taking other clients' ids. Meanwhile the honest devices keep working: a guard
still sees an honest door-forced alarm within 2 s, the roll call ends equal to the
simulation's truth, and the log still verifies.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import time as clock
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from playwright.sync_api import Browser, expect

from console.alarms import active
from console.log import CentralLog
from edge.cardref import card_reference
from simulator.control_channel import send
from simulator.provision import OPERATOR_ACCOUNT
from simulator.scenario import Scenario
from tests.broker import Subscriber

from .web_fixtures import LiveSite, live_site, login

pytestmark = pytest.mark.services  # starts mosquitto, pcscd, an emulated card or a building

DAY = Scenario.model_validate(
    {"date": "2026-12-01", "start": clock(7, 45), "end": clock(9, 15), "seed": 23}
)
SENSOR = "sensors-2f-booths"  # a booth anyone can book
DOOR = "stair-a-1f"  # a staff stairway door controller
FLOOD = 5_000
THIEF_SEQ = 1_000_000


class Thief:
    """A paho MQTT 5 client on a stolen device's own broker account."""

    def __init__(self, site: LiveSite, account: str, client_id: str | None = None) -> None:
        self.site = site
        self.base = f"edge/{site.sim.building.spec.site}"
        password = (site.run_dir / "site" / "accounts" / f"{account}.password").read_text()
        self.connected = threading.Event()
        self.refused: list[int] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or account,
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set(account, password.strip())
        self.client.on_connect = lambda *_: self.connected.set()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", site.sim.broker.port, clean_start=True)
        self.client.loop_start()
        assert self.connected.wait(10), f"{account} could not connect"

    def _on_publish(self, _c: Any, _u: Any, _mid: int, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            self.refused.append(reason.value)

    def send(
        self, topic: str, payload: bytes | str, retain: bool = False, wait: bool = True
    ) -> None:
        info = self.client.publish(f"{self.base}/{topic}", payload, qos=1, retain=retain)
        if wait:
            info.wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def event(device: str, seq: int, kind: str, type_: str, ts: str, **fields: Any) -> str:
    body = {
        "v": 1,
        "id": f"{device}:{seq}",
        "seq": seq,
        "device": device,
        "kind": kind,
        "type": type_,
        "ts": ts,
        "clock_synced": True,
        **fields,
    }
    return json.dumps(body)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    with live_site(tmp_path_factory.mktemp("hostile"), DAY, speed=60) as live:
        yield live


def offline(log: CentralLog, device: str) -> bool:
    status = log.devices().get(device, {}).get("status") or ""
    return '"offline"' in status or status == "offline"


@pytest.mark.timeout(300)  # a simulated morning plays through: about 90 s on 2 busy cores
def test_stolen_devices_cannot_blind_the_console_or_falsify_the_roll_call(
    site: LiveSite, browser: Browser, caplog: pytest.LogCaptureFixture
) -> None:
    collector = site.sim.collector
    # Someone inside the line, by card reference (a stolen Pi holds the card key).
    crossed = "kind = 'access' AND type = 'crossing' AND door LIKE 'gate-%'"
    assert collector.wait_for(lambda log: bool(next(log.entries(crossed), None)), 60)
    refs = sorted(
        card_reference(site.sim.card_key, p.technology, p.card_id)
        for p in site.sim.people
        if p.card_id
    )
    # The thief has the SD cards: the agents are off, their accounts are the thief's.
    for device in (SENSOR, DOOR):
        reply = send(site.run_dir, "fault", {"kind": "power_cut", "device": device, "minutes": 60})
        assert reply["ok"], reply
    for device in (SENSOR, DOOR):
        assert collector.wait_for(lambda log, d=device: offline(log, d), 30), device
    sensor, door = Thief(site, SENSOR), Thief(site, DOOR)
    gate_status = Subscriber(
        site.sim.broker.port,
        f"edge/{site.sim.building.spec.site}/gate-1f-east/status",
        client_id=OPERATOR_ACCOUNT,
        username=OPERATOR_ACCOUNT,
        password=site.sim.provisioned.password(OPERATOR_ACCOUNT),
    )
    gate_status.wait_for(bool, what="the gate's retained status")

    # A guard watches the live alarms page.
    page = login(browser, site, "guard1")
    expect(page).to_have_url(f"{site.url}/alarms")

    # Forged claims: everyone out of the line "in year 9999", a fire at another device's
    # door, a crossing at a gate, an event in another device's name. The thief's seqs start
    # far above the device's own.
    far = "9999-12-31T23:59:59.000Z"
    seq = iter(range(THIEF_SEQ, THIEF_SEQ + 10 * FLOOD))
    for ref in refs:
        sensor.send(
            f"{SENSOR}/events/access",
            event(
                SENSOR,
                next(seq),
                "access",
                "crossing",
                far,
                door="gate-1f-east",
                reader="gate-1f-east-out",
                direction="out",
                card_ref=ref,
                from_zone="staff-area",
                to_zone="lobby",
            ),
        )
    door.send(
        f"{DOOR}/events/alarm",
        event(DOOR, next(seq), "alarm", "fire", far, door="stair-a-2f", state="raised"),
    )
    door.send(
        f"{DOOR}/events/access",
        event(
            DOOR,
            next(seq),
            "access",
            "crossing",
            far,
            door="gate-1f-west",
            direction="out",
            card_ref=refs[0],
            from_zone="staff-area",
            to_zone="lobby",
        ),
    )
    door.send(f"{DOOR}/events/alarm", event("gate-1f-east", next(seq), "alarm", "fire", far))
    # Another device's topics: the broker refuses them (PUBACK 0x87 under MQTT 5).
    sensor.send("gate-1f-east/events/alarm", event("gate-1f-east", next(seq), "alarm", "fire", far))
    assert 0x87 in sensor.refused
    # Poison: a lone surrogate, deep nesting, a huge count, a status not in UTF-8; retained.
    sensor.send(
        f"{SENSOR}/events/presence",
        event(SENSOR, next(seq), "presence", "occupied", far, zone="focus-2f-1", note="\ud800"),
    )
    sensor.send(f"{SENSOR}/events/presence", b"[" * 4000)
    sensor.send(f"{SENSOR}/occupancy/focus-2f-1", json.dumps({"count": 2**70}), retain=True)
    sensor.send(f"{SENSOR}/status", "状態".encode("utf-16"), retain=True)
    # Other clients' ids: the collector's session and a gate's connection stay theirs.
    for stolen_id in (collector.client.client_id, "gate-1f-east"):
        Thief(site, SENSOR, client_id=stolen_id).close()

    # A flood from the stolen door controller while an honest door is forced.
    def flood() -> None:
        for _ in range(FLOOD):
            door.send(
                f"{DOOR}/events/door",
                event(DOOR, next(seq), "door", "opened", far, door=DOOR),
                wait=False,
            )
        door.send(f"{DOOR}/events/door", event(DOOR, next(seq), "door", "closed", far, door=DOOR))

    flooding = threading.Thread(target=flood, name="flood")
    flooding.start()
    injected = time.monotonic()
    reply = send(
        site.run_dir, "fault", {"kind": "door_forced", "door": "stair-a-2f", "open_s": 600}
    )
    assert reply["ok"], reply
    row = page.locator("tr[data-type=door_forced][data-device=stair-a-2f]")
    expect(row).to_be_visible(timeout=2000)
    assert time.monotonic() - injected < 2.0
    flooding.join(120)
    sensor.close()
    door.close()

    # The guards are told about both stolen devices; no forged fire is active; nobody was
    # kicked off the broker by a stolen client id.
    alarms = active(collector.log)
    types = {(a.device, a.type) for a in alarms}
    assert (SENSOR, "device_claim_refused") in types
    assert (SENSOR, "bad_messages") in types
    assert (DOOR, "device_claim_refused") in types
    assert not [a for a in alarms if a.type == "fire"]
    assert not [m for m in gate_status.messages if b"offline" in m.payload]
    gate_status.close()
    assert not [r for r in caplog.records if "lost the broker" in r.getMessage()]

    # The day ends; the roll call is the truth, and the log still proves itself.
    site.wait_for_the_day()
    boss = login(browser, site, "boss")
    boss.goto(f"{site.url}/muster")
    truth = set(site.sim.world.truth.inside)
    assert truth
    shown = set(
        boss.locator("tr[data-staff]").evaluate_all("rows => rows.map(r => r.dataset.staff)")
    )
    assert shown == truth
    log = collector.log
    assert log.verify() == []
    log.db.execute(
        "UPDATE events SET card_ref = 'forged' WHERE row = (SELECT max(row) FROM events)"
    )
    assert log.verify()
