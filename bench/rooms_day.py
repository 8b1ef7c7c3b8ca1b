"""A day of the default building as the rooms service hears it: what each device sends, and when.

From the simulator's own plans (simulator.rooms_plan for the booths' and meeting rooms'
bookings and stays) and the building's 1,500 staff, each device's messages on the topics the
rooms service reads, with the agents' payload models (edge.link.payloads):

* sensor nodes: occupancy of each booth and meeting room (occupied on arrival, vacant its
  sensor's hold after the last one leaves; their door contacts go out as presence events,
  which the service does not read), desk islands from the first arrival to the last leave
  (as simulator.behaviour), the refresh area's two breaks, and the consultation booths used
  by visitors every hour or so;
* gates: each member of staff's morning entry, a third of them out and back at lunch, and
  the evening exit: per crossing `access/granted`, `door/opened`, `access/crossing`, both
  zones' head counts on `occupancy/{zone}` (retained), `door/closed`.

Times are seconds after the day's start; `play` sends them compressed, each device with its
own account, and `statuses` sends each device's status every 30 s of real time.
"""

from __future__ import annotations

import heapq
import random
import secrets
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bench.rooms_process import Accounts, client
from edge.core.clock import utc_text
from edge.link import topics
from edge.link.payloads import EventPayload, OccupancyPayload, StatusPayload
from simulator.building import Building
from simulator.rooms_plan import Use

ROOT = "edge"
STATUS_EVERY_S = 30.0  # the agents' status period, real time

H = 3600.0


@dataclass(frozen=True, order=True)
class Send:
    """One message a device sends `at_s` after the day's start."""

    at_s: float
    device: str = field(compare=False)
    what: str = field(compare=False)  # occupancy | access | door
    body: tuple[tuple[str, Any], ...] = field(compare=False)


def _occupancy(at_s: float, device: str, zone: str, occupied: bool, **extra: Any) -> Send:
    body = {"zone": zone, "occupied": occupied, "count": None, "capacity": None}
    return Send(at_s, device, "occupancy", tuple({**body, **extra}.items()))


def _door(at_s: float, device: str, door: str, opened: bool) -> Send:
    return Send(at_s, device, "door", (("type", "opened" if opened else "closed"), ("door", door)))


def _stays(device: str, zone: str, spans: list[tuple[float, float]]) -> list[Send]:
    """Occupied from each span's start to its end; overlapping spans are one stay."""
    sends: list[Send] = []
    merged: list[list[float]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    for begin, end in merged:
        sends.append(_occupancy(begin, device, zone, True, sensor_ok=True))
        sends.append(_occupancy(end, device, zone, False, sensor_ok=True))
    return sends


def rooms(building: Building, uses: list[Use]) -> list[Send]:
    """Each booking's (or walk-in's) stay as its room's occupancy.

    A booth's door contact goes out as a presence event, which the service does not read.
    """
    spans: dict[str, list[tuple[float, float]]] = {}
    for use in uses:
        if use.arrive_s is None or use.leave_s is None:
            continue  # a no-show: the room stays vacant
        _, sensor = building.sensor_for(use.room)
        # Vacant once the sensor's hold has run after the last one left.
        spans.setdefault(use.room, []).append((use.arrive_s, use.leave_s + sensor.hold_s))
    sends: list[Send] = []
    for zone, found in spans.items():
        sends += _stays(building.sensor_for(zone)[0].id, zone, found)
    return sends


def places(building: Building, day_start_h: float, rng: random.Random) -> list[Send]:
    """Desk islands, the refresh area and the consultation booths."""
    sends = []
    for zone in building.zones.values():
        try:
            device, sensor = building.sensor_for(zone.id)
        except KeyError:
            continue
        spans: list[tuple[float, float]] = []
        if zone.id.startswith("area-"):
            spans = [(rng.uniform(7.7, 8.2) * H, rng.uniform(19.0, 20.5) * H)]
        elif zone.id.startswith("refresh-"):
            spans = [(12 * H, 13 * H), (15 * H, 15 * H + 1200)]
        elif zone.id.startswith("consult-"):
            t = rng.uniform(8.5, 9.5) * H
            while t < 17 * H:
                stay = rng.uniform(15, 40) * 60
                spans.append((t, t + stay))
                t += stay + rng.uniform(10, 50) * 60
        offset = day_start_h * H
        sends += _stays(
            device.id, zone.id, [(b - offset, e - offset + sensor.hold_s) for b, e in spans]
        )
    return sends


def crossings(building: Building, staff: int, day_start_h: float, rng: random.Random) -> list[Send]:
    """The staff's crossings of the security line at the gates, with their head counts."""
    gates = building.gates
    counts: Counter[tuple[str, str]] = Counter()
    moves: list[tuple[float, str, bool]] = []  # (local hour, card, inside)
    for _ in range(staff):
        card = secrets.token_hex(32)  # a card reference's shape, never a real card
        moves.append((rng.uniform(7.6, 9.2), card, True))
        if rng.random() < 1 / 3:
            out = rng.uniform(11.9, 12.8)
            moves += [(out, card, False), (out + rng.uniform(0.3, 0.9), card, True)]
        moves.append((rng.uniform(17.2, 20.8), card, False))
    sends = []
    for hour, card, inside in sorted(moves):
        gate = rng.choice(gates)
        at_s = (hour - day_start_h) * H
        to_zone, from_zone = (gate.inside, gate.outside) if inside else (gate.outside, gate.inside)
        direction, reader = ("in", gate.readers["in"]) if inside else ("out", gate.readers["out"])
        common = {"door": gate.id, "reader": reader, "direction": direction, "card_ref": card}
        sends.append(Send(at_s, gate.device, "access", tuple({"type": "granted",
            "authenticated": False, "reason": "granted", **common}.items())))  # fmt: skip
        sends.append(_door(at_s + 1, gate.device, gate.id, True))
        sends.append(Send(at_s + 2, gate.device, "access", tuple({"type": "crossing",
            "from_zone": from_zone, "to_zone": to_zone, **common}.items())))  # fmt: skip
        counts[gate.device, to_zone] += 1
        counts[gate.device, from_zone] -= 1
        for zone in (from_zone, to_zone):
            count = max(0, counts[gate.device, zone])
            sends.append(_occupancy(at_s + 2, gate.device, zone, count > 0, count=count))
        sends.append(_door(at_s + 5, gate.device, gate.id, False))
    return sends


def day_sends(building: Building, uses: list[Use], start: datetime, seed: int = 1) -> list[Send]:
    """Every message of the day, in time order (seconds after `start`)."""
    rng = random.Random(seed)
    day_start_h = start.hour + start.minute / 60
    sends = rooms(building, uses) + places(building, day_start_h, rng)
    sends += crossings(building, building.spec.staff, day_start_h, rng)
    return sorted(sends)


class Devices:
    """Every device's own broker connection, publishing as its agent would."""

    def __init__(self, port: int, accounts: Accounts, devices: list[str], site: str) -> None:
        self.site = site
        self.clients = {d: client(port, d, accounts.passwords[d]) for d in devices}
        self.seq: Counter[str] = Counter()
        self.sent: Counter[str] = Counter()

    def status(self, device: str) -> None:
        now = utc_text(datetime.now(UTC))
        body = StatusPayload(device=device, site=self.site, state="online", ts=now,
                             software="bench", clock_synced=True, backlog=0)  # fmt: skip
        self._publish(
            device, topics.status(ROOT, self.site, device), body.model_dump_json(), "status"
        )

    def send(self, item: Send) -> None:
        now = utc_text(datetime.now(UTC))
        fields = dict(item.body)
        if item.what == "occupancy":
            body = OccupancyPayload(v=1, device=item.device, ts=now, **fields).model_dump_json()
            topic = topics.occupancy(ROOT, self.site, item.device, fields["zone"])
        else:
            self.seq[item.device] += 1
            seq = self.seq[item.device]
            body = EventPayload(v=1, id=f"{item.device}:{seq}", seq=seq, device=item.device, ts=now,
                                clock_synced=True, kind=item.what, **fields).model_dump_json()  # fmt: skip
            topic = topics.event(ROOT, self.site, item.device, item.what)
        self._publish(item.device, topic, body, item.what, retain=item.what == "occupancy")

    def _publish(self, device: str, topic: str, body: str, what: str, retain: bool = True) -> None:
        self.clients[device].publish(topic, body, qos=1, retain=retain)
        self.sent[what] += 1

    def close(self) -> None:
        for c in self.clients.values():
            c.disconnect()
            c.loop_stop()


def statuses(devices: Devices, names: list[str], stop: threading.Event) -> None:
    """Each device's status every 30 s of real time, spread over the period."""
    now = time.monotonic()
    due = [(now + i * STATUS_EVERY_S / len(names), d) for i, d in enumerate(names)]
    heapq.heapify(due)
    while not stop.is_set():
        at, device = heapq.heappop(due)
        if stop.wait(max(0.0, at - time.monotonic())):
            return
        devices.status(device)
        heapq.heappush(due, (at + STATUS_EVERY_S, device))


def overnight(devices: Devices, sends: list[Send]) -> None:
    """Each device online and each zone it reports vacant, as before the day begins."""
    for device in devices.clients:
        devices.status(device)
    first: dict[tuple[str, str], Send] = {}
    for item in sends:
        if item.what == "occupancy":
            first.setdefault((item.device, dict(item.body)["zone"]), item)
    for item in first.values():
        fields = dict(item.body, occupied=False)
        if fields["count"] is not None:
            fields["count"] = 0
        devices.send(Send(0.0, item.device, "occupancy", tuple(fields.items())))


def play(devices: Devices, sends: list[Send], start: float, factor: float) -> float:
    """Send each message at its compressed time; return the most it was sent late (s)."""
    pause = threading.Event()
    late = 0.0
    for item in sends:
        due = start + item.at_s / factor
        wait = due - time.monotonic()
        if wait > 0:
            pause.wait(wait)
        late = max(late, time.monotonic() - due)
        devices.send(item)
    return late
