"""Run a real agent on simulated hardware, steered over a local control socket.

    python -m simulator.agent --config agent.toml --control /run/edge-sim/gate.sock

The agent is the same code as on a Pi (edge.service.serve); only its pin factory
(gpiozero's MockFactory) and readers (simulated) differ. The control socket speaks JSON
lines; each request gets one reply:

    {"op": "tap", "reader": "gate-east-in", "technology": "felica", "id": "0114…"}
        -> {"ok": true, "counted": true, "decision": "granted", "reason": "granted"}
    {"op": "pin", "pin": 27, "high": true}      drive an input pin
    {"op": "sync"}                              wait until every queued event is handled
    {"op": "wait_log", "text": "…"}             wait until the agent logs a line with that text
    {"op": "relay", "door": "gate-east"}   -> {"ok": true, "unlocked": false, "energised": true}
"""

from __future__ import annotations

import argparse
import json
import logging
import socketserver
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gpiozero.pins.mock import MockFactory

from edge.core.events import Event, Tick
from edge.core.outputs import EventKind, Output, Record
from edge.keys import read_card_key
from edge.link.messages import InboundMessage, SnapshotResult
from edge.ports import CardReader, CardReferencer
from edge.runtime import Agent
from edge.service import serve
from edge.system import SystemClock
from firmware_config.loader import load_config
from firmware_config.model import ReaderConfig
from simulator.pins import WatchedFactory, idle_inputs
from simulator.readers import SimCardReader

log = logging.getLogger("simulator.agent")


class Waiter:
    """Lets a control request wait until the agent's loop has handled a given event.

    It keeps the outputs of the last few hundred card taps and of the sync markers it was
    told to expect; the loop's own ticks are not kept.
    """

    KEEP = 500

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._done: OrderedDict[
            int, tuple[Event | InboundMessage | SnapshotResult, list[Output]]
        ] = OrderedDict()
        self._expected: set[int] = set()

    def expect(self, event: Event) -> None:
        """Keep the outputs of `event` (a marker) when it is handled."""
        with self._cond:
            self._expected.add(id(event))

    def processed(
        self, event: Event | InboundMessage | SnapshotResult, outputs: list[Output]
    ) -> None:
        """Called by the agent's loop after each event."""
        if isinstance(event, Tick) and id(event) not in self._expected:
            return
        with self._cond:
            self._expected.discard(id(event))
            # Holding the event keeps its id from being reused while it is here.
            self._done[id(event)] = (event, outputs)
            while len(self._done) > self.KEEP:
                self._done.popitem(last=False)
            self._cond.notify_all()

    def wait(self, event: Event, timeout: float = 10.0) -> list[Output] | None:
        """Return the outputs of `event` once handled, or None after `timeout` seconds."""
        with self._cond:
            self._cond.wait_for(lambda: id(event) in self._done, timeout)
            entry = self._done.pop(id(event), None)
            return None if entry is None else entry[1]


class LogWatch(logging.Handler):
    """Keeps the agent's log lines so a control request can wait for one (no polling)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.cond = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self.cond:
            self.lines.append(record.getMessage())
            self.cond.notify_all()

    def wait(self, text: str, timeout: float) -> bool:
        """Wait until a log line contains `text`."""
        with self.cond:
            return self.cond.wait_for(lambda: any(text in line for line in self.lines), timeout)


class Control:
    """The simulated hardware of one agent and the requests that drive it."""

    def __init__(self, factory: MockFactory) -> None:
        self.factory = factory
        self.readers: dict[str, SimCardReader] = {}
        self.agent: Agent | None = None
        self.waiter = Waiter()
        self.ready = threading.Event()
        self.log = LogWatch()

    def reader_factory(self, config: ReaderConfig, referencer: CardReferencer) -> CardReader:
        reader = SimCardReader(config.id, referencer, config.debounce_s)
        self.readers[config.id] = reader
        return reader

    def attach(self, agent: Agent) -> None:
        self.agent = agent
        agent.on_processed.append(self.waiter.processed)
        self.ready.set()

    def request(self, body: dict[str, Any]) -> dict[str, Any]:
        agent = self.agent
        if agent is None:
            return {"ok": False, "error": "agent not started"}
        match body.get("op"):
            case "tap":
                return self._tap(agent, body)
            case "pin":
                pin = self.factory.pin(int(body["pin"]))
                pin.drive_high() if body.get("high") else pin.drive_low()
                return self._sync(agent)
            case "sync":
                return self._sync(agent)
            case "wait_log":
                timeout = min(float(body.get("timeout", 10)), 60.0)
                return {"ok": self.log.wait(str(body["text"]), timeout)}
            case "relay":
                relay = agent.relays[body["door"]]
                return {
                    "ok": True,
                    "unlocked": relay.is_unlocked,
                    "energised": getattr(relay, "energised", None),
                }
        return {"ok": False, "error": f"unknown op {body.get('op')!r}: use tap, pin, sync or relay"}

    def _tap(self, agent: Agent, body: dict[str, Any]) -> dict[str, Any]:
        reader = self.readers.get(body.get("reader", ""))
        if reader is None:
            return {"ok": False, "error": f"no simulated reader {body.get('reader')!r}"}
        event = reader.tap(body["technology"], body["id"], bool(body.get("authenticated")))
        if event is None:
            return {"ok": True, "counted": False}
        outputs = self.waiter.wait(event)
        if outputs is None:
            return {"ok": False, "error": "the agent did not handle the tap in time"}
        decision = next(
            (
                o.event
                for o in outputs
                if isinstance(o, Record) and o.event.kind is EventKind.ACCESS
            ),
            None,
        )
        return {
            "ok": True,
            "counted": True,
            "decision": decision.type if decision else None,
            "reason": decision.data.get("reason") if decision else None,
        }

    def _sync(self, agent: Agent) -> dict[str, Any]:
        marker = Tick()
        self.waiter.expect(marker)
        agent.emit(marker)
        return {"ok": self.waiter.wait(marker) is not None}


def serve_control(path: Path, control: Control) -> socketserver.UnixStreamServer:
    """Start the control socket server on its own thread."""

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            control.ready.wait(30)
            for line in self.rfile:
                try:
                    reply = control.request(json.loads(line))
                except (ValueError, KeyError, TypeError) as exc:
                    reply = {"ok": False, "error": f"bad request: {exc}"}
                self.wfile.write(json.dumps(reply).encode() + b"\n")
                self.wfile.flush()

    path.unlink(missing_ok=True)
    server = socketserver.ThreadingUnixStreamServer(str(path), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="sim-control", daemon=True).start()
    return server


def main(argv: list[str] | None = None, started: Callable[[Agent], None] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run an agent on simulated hardware.")
    parser.add_argument("--config", type=Path, required=True, help="device configuration (TOML)")
    parser.add_argument("--control", type=Path, required=True, help="control socket path")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    factory = WatchedFactory()
    control = Control(factory)
    logging.getLogger().addHandler(control.log)
    server = serve_control(args.control, control)
    try:
        return serve(
            config,
            card_key=read_card_key(config.site.card_key_file),
            pin_factory=factory,
            clock=SystemClock(),
            clock_synced=lambda: True,
            reader_factory=control.reader_factory,
            prepare=lambda agent: idle_inputs(factory, config),
            ready=control.attach,
        )
    finally:
        server.shutdown()
        args.control.unlink(missing_ok=True)


if __name__ == "__main__":
    raise SystemExit(main())
