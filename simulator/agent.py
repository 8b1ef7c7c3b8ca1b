"""Run a real agent on simulated hardware, steered over a local control socket.

    python -m simulator.agent --config agent.toml --control /run/edge-sim/gate.sock \
        [--start 2026-12-01T06:30:00+09:00 --at 0]

The agent is the same code as on a Pi (edge.service.serve); only its pin factory
(gpiozero's MockFactory), readers (simulated) and, with --start, its clock (stepped by the
requests) differ. It prints `ready` on stdout once the control socket answers. The socket
speaks JSON lines; each request gets one reply (see simulator.control for every op):

    {"op": "tap", "reader": "gate-east-in", "technology": "felica", "id": "0114…", "at": 61.5}
        -> {"ok": true, "counted": true, "decision": "granted", "reason": "granted",
            "violation": false, "relays": [[61.5, "gate-east", true]]}
    {"op": "door", "door": "gate-east", "open": true}     the leaf opens (contact)
    {"op": "exit", "door": "gate-east"}                   press and release the exit button
    {"op": "fire", "door": "stair-b-2f", "on": true}      the fire panel's input
    {"op": "presence", "sensor": "booth-3f-1-pir", "on": true}
    {"op": "room_door", "door": "booth-3f-1-door", "open": false}   a booth's own door
    {"op": "reader", "reader": "gate-east-in", "online": false}   unplug (or plug) a reader
    {"op": "clock", "synced": false, "step_s": 90}        lose time synchronisation
    {"op": "stats"}                 -> {"ok": true, "last_seq": 118, "backlog": 0}
    {"op": "positions", "refs": ["…"]}  -> {"ok": true, "positions": {"…": "staff-area"},
                                                "cut_off": false, "connected": true}
    {"op": "wait_positions", "want": {"…": "staff-area"}, "timeout": 30}
                                    -> {"ok": true, "agreed": true, "wrong": 0}
                                    wait until it holds them, connected and not cut off
    {"op": "wait_link", "up": false, "timeout": 10}  -> {"ok": true, "seen": true}
    {"op": "sync"}                  wait until every queued event is handled
    {"op": "wait_log", "text": "…"} wait until the agent logs a line with that text
    {"op": "relay", "door": "gate-east"}   -> {"ok": true, "unlocked": false, "energised": true}
"""

from __future__ import annotations

import argparse
import json
import logging
import socketserver
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

from edge.core.clock import Clock
from edge.runtime import Agent
from edge.service import device_card_key, serve
from edge.system import SystemClock
from firmware_config.loader import load_config
from simulator.clock import FakeClock
from simulator.control import SIM_MONO, Control
from simulator.pins import WatchedFactory, idle_inputs

log = logging.getLogger("simulator.agent")


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
    parser.add_argument(
        "--start",
        type=datetime.fromisoformat,
        help="run on a stepped clock that starts at this time (ISO 8601 with offset); "
        "requests move it with 'at'",
    )
    parser.add_argument(
        "--at", type=float, default=0.0, help="seconds after --start to begin at (a restart)"
    )
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    config = load_config(args.config)
    factory = WatchedFactory()
    stepped = None
    if args.start is not None:
        if args.start.tzinfo is None:
            parser.error("--start needs a UTC offset, e.g. 2026-12-01T06:30:00+09:00")
        stepped = FakeClock(args.start + timedelta(seconds=args.at), mono=SIM_MONO + args.at)
    control = Control(factory, config, stepped)
    clock: Clock = stepped if stepped is not None else SystemClock()
    logging.getLogger().addHandler(control.log)
    server = serve_control(args.control, control)

    def ready(agent: Agent) -> None:
        control.attach(agent)
        if started is not None:
            started(agent)
        sys.stdout.write("ready\n")  # the parent waits for this line instead of polling
        sys.stdout.flush()

    try:
        return serve(
            config,
            card_key=device_card_key(config),
            pin_factory=factory,
            clock=clock,
            clock_synced=lambda: control.synced,
            reader_factory=control.reader_factory,
            prepare=lambda agent: idle_inputs(factory, config),
            ready=ready,
        )
    finally:
        server.shutdown()
        args.control.unlink(missing_ok=True)


if __name__ == "__main__":
    raise SystemExit(main())
