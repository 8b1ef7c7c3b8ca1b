"""The simulation's side of `sim/{site}/control/{op}`: queue requests, carry them out, answer.

Requests arrive on paho's thread and wait in a queue; the simulation's own thread takes
them between two happenings of the day and carries each out at its current simulated
time. `simulator.control_channel` is the sending side (`edge-sim tap`, `edge-sim fault`).
"""

from __future__ import annotations

import json
import logging
import queue
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import ValidationError

from console.mqtt import ConsoleClient, Message
from edge.errors import EdgeError
from simulator import sim_topics
from simulator.engine import Engine
from simulator.scenario import Fault
from simulator.staff import Person
from simulator.world import World

log = logging.getLogger(__name__)


class ControlTarget(Protocol):
    """What a request from outside acts on: the running simulation."""

    @property
    def start(self) -> datetime: ...
    @property
    def engine(self) -> Engine: ...
    @property
    def world(self) -> World: ...
    @property
    def people(self) -> list[Person]: ...

    def inject(self, fault: Fault) -> None: ...


@dataclass(frozen=True)
class Request:
    """One request from outside: its operation and its JSON body."""

    op: str
    body: dict[str, Any]


class ControlServer:
    """Take requests from the control topics and answer them on the given client."""

    def __init__(self, client: ConsoleClient, site: str, target: ControlTarget) -> None:
        self._client = client
        self._site = site
        self._target = target
        self._requests: queue.Queue[Request] = queue.Queue()
        client.subscribe(sim_topics.control_filter(site), handler=self._on_message)

    def __repr__(self) -> str:
        return f"<ControlServer {self._site} waiting={self._requests.qsize()}>"

    def take(self, timeout_s: float | None = None) -> Request | None:
        """Return the next request, waiting up to `timeout_s` (default: not at all)."""
        try:
            if timeout_s is None:
                return self._requests.get_nowait()
            return self._requests.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def carry_out(self, request: Request) -> None:
        """Carry out a request now and publish the answer to its `reply_to`, if it has one."""
        answer = carry_out(self._target, request.op, request.body)
        respond_to = request.body.get("reply_to")
        mine = sim_topics.reply_prefix(self._site)
        if isinstance(respond_to, str) and respond_to.startswith(mine):
            self._client.publish(respond_to, json.dumps(answer).encode())

    def _on_message(self, message: Message) -> None:
        """Queue a request; the simulation's thread carries it out."""
        op = message.topic.rsplit("/", 1)[-1]
        try:
            body = json.loads(message.payload or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict):
            log.warning("ignored a control message on %s: not a JSON object", message.topic)
            return
        self._requests.put(Request(op, body))


def carry_out(target: ControlTarget, op: str, body: dict[str, Any]) -> dict[str, Any]:
    """Carry out one request at the simulation's current time; return the answer."""
    try:
        if op == "tap":
            return _tap(target, body)
        if op == "fault":
            now = target.start + timedelta(seconds=target.engine.now)
            args = {k: v for k, v in body.items() if k != "reply_to"}
            fault = Fault.model_validate({**args, "at": now.time().replace(microsecond=0)})
            target.inject(fault)
            return {"ok": True, "at": target.world.clock_text(), "fault": fault.kind}
    except ValidationError as error:
        first = error.errors()[0]
        return {"ok": False, "error": f"{'.'.join(map(str, first['loc']))}: {first['msg']}"}
    except EdgeError as error:
        return {"ok": False, "error": str(error)}
    return {"ok": False, "error": f"unknown request {op!r}: use tap or fault"}


def _tap(target: ControlTarget, body: dict[str, Any]) -> dict[str, Any]:
    world = target.world
    door = str(body.get("door", ""))
    if door not in world.doors:
        return {"ok": False, "error": f"no door {door!r}; doors: {sorted(world.doors)[:6]}…"}
    direction = str(body.get("direction", "in"))
    if direction not in world.doors[door].door.readers:
        return {"ok": False, "error": f"{door} has no {direction!r} reader"}
    if "staff_no" in body:
        person = next((p for p in target.people if p.staff_no == body["staff_no"]), None)
        if person is None:
            return {"ok": False, "error": f"nobody has staff number {body['staff_no']!r}"}
        technology, card_id, pin = person.technology, person.card_id, person.pin
    elif "technology" in body and "id" in body:
        technology, card_id, pin = str(body["technology"]), str(body["id"]), None
    else:
        return {"ok": False, "error": "say whose card: staff_no, or technology and id"}
    reply = world.tap(door, direction, technology, card_id, pin=pin)
    return {
        "ok": True,
        "at": world.clock_text(),
        "decision": reply.get("decision"),
        "reason": reply.get("reason"),
        "unlocked": world.is_unlocked(door),
    }
