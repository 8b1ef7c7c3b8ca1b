"""A whole simulated building: broker, provisioning, agents, collector, people, faults.

    sim = Simulation(load_building(), load_scenario(), run_dir)
    sim.setup()      # mosquitto, edge-provision, 37 agent processes, collector, publish
    sim.play()       # the day, as fast as the agents answer (or at `speed`× real time)
    result = sim.finish()

Every part is real: mosquitto on a free loopback port, one `simulator.agent` process per
Raspberry Pi (the agent's own code on simulated hardware and a stepped clock), the
console's collector on a shared subscription. Only the hardware and the people are made up.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from console.collector import Collector
from console.headcount import head_count
from console.mqtt import ConsoleClient
from console.rollcall import inside
from edge.cardref import card_reference
from edge.commands import sign
from edge.core.clock import utc_text
from edge.keys import read_card_key
from edge.link import topics
from provisioning.keys import SiteKeys
from simulator.behaviour import populate
from simulator.broker import Broker, free_port
from simulator.building import Building
from simulator.control_server import ControlServer
from simulator.engine import Engine
from simulator.faults import fault_process
from simulator.netcut import NetCut
from simulator.process import AgentProcess
from simulator.provision import (
    CONSOLE_ACCOUNT,
    ROOMS_ACCOUNT,
    SIM_ACCOUNT,
    Provisioned,
    provision,
    publish,
)
from simulator.rooms_config import GRACE_MIN
from simulator.rooms_plan import plan_day
from simulator.rooms_run import RoomsDesk
from simulator.rooms_use import populate_rooms
from simulator.scenario import Fault, Scenario
from simulator.staff import make_people
from simulator.verdict import Check
from simulator.world import World

log = logging.getLogger(__name__)
# The simulation's commands ask for their replies under `reply/edge-sim`.
REPLIES_TO = "edge-sim"

HEARTBEAT_S = 300.0  # every agent's clock is moved on at least this often (simulated s)


@dataclass
class Progress:
    """What the progress display shows."""

    at: float
    length: float
    clock: str
    inside: int
    taps: int
    stored: int
    alarms: int


@dataclass
class Timing:
    setup_s: float = 0.0
    play_s: float = 0.0
    finish_s: float = 0.0


class Simulation:
    """The building, its devices and its people, run on one machine."""

    def __init__(
        self,
        building: Building,
        scenario: Scenario,
        run_dir: Path,
        *,
        speed: float | None = None,
        on_progress: Callable[[Progress], None] | None = None,
    ) -> None:
        self.building = building
        self.scenario = scenario
        self.run_dir = run_dir
        self.speed = speed
        self.on_progress = on_progress
        spec = building.spec
        self.start, self.length = scenario.bounds(spec.timezone)
        if scenario.staff is not None:
            building.spec = spec.model_copy(update={"staff": scenario.staff})
        if scenario.visitors is not None:
            building.spec = building.spec.model_copy(update={"visitors": scenario.visitors})
        self.people = make_people(building, self.start.date(), scenario.seed)
        self.engine = Engine()
        # Sensor nodes a scenario powers off: a booking in one of their rooms spans the cut.
        kept = [
            (f.device, self._at(f), self._at(f) + f.minutes * 60)
            for f in scenario.faults
            if f.kind == "power_cut"
            and f.device in building.devices
            and building.devices[f.device].role == "sensor-node"
        ]
        uses = plan_day(
            building, self.people, self.start, scenario.seed, GRACE_MIN, kept, self.length
        )
        self.uses = uses
        self.rooms = (
            RoomsDesk(building, uses, self.start, run_dir / "rooms") if scenario.rooms else None
        )
        self.agents: dict[str, AgentProcess] = {}
        self.checks: list[Check] = []
        self.expected_alarms: list[tuple[float, str, str]] = []
        self.fire_at: float | None = None
        self.outages: list[tuple[float, float]] = []  # broker down, simulated seconds
        self.partitions: list[tuple[str, float, float]] = []  # gate, cut, healed
        self.cut_began: dict[str, float] = {}  # gate -> when its partition began
        self.cut_held: dict[str, set[str]] = {}  # gate -> staff it held inside at its last cut
        # The line's head counts at busy moments: when, label, console per zone, truth.
        self.head_counts: list[tuple[float, str, dict[str, int], int]] = []
        self.reconciliations: list[tuple[str, float, float, float, bool]] = []
        # Alarms a fault may cause without having to (a flagged grant while cut off).
        self.allowed_alarms: set[tuple[str, str]] = set()
        # Each gate reaches the broker through a path a fault can cut (gate_partition).
        self.netcuts: dict[str, NetCut] = {}
        self.fault_log: list[tuple[float, str]] = []  # when each fault began
        self.restarts: dict[str, int] = {}  # device -> times powered up again
        self.recovery_s: list[float] = []  # broker back -> console complete, real seconds
        self.timing = Timing()
        # Wall time (time.time()) at which the console committed each event: the collector
        # runs on the simulated clock, so the log's received_at is simulated time.
        self.stored_real: dict[str, float] = {}
        self.last_seq: dict[str, int] = {}
        self._real_start = 0.0
        self.broker: Broker
        self.world: World
        self.collector: Collector
        self.console: ConsoleClient
        self.control: ControlServer
        self.provisioned: Provisioned

    def __repr__(self) -> str:
        site, agents = self.building.spec.site, len(self.agents)
        return f"<Simulation {site} {self.start:%Y-%m-%d} agents={agents}>"

    # -- set up ---------------------------------------------------------------------------

    def setup(self) -> None:
        """Start the broker, provision the site, start every agent and the collector."""
        began = time.perf_counter()
        site = self.building.spec.site
        port = free_port()
        for gate in self.building.gates:
            self.netcuts[gate.device] = NetCut(port)
        ports = {device: cut.port for device, cut in self.netcuts.items()}
        self.provisioned = p = provision(self.building, self.people, self.run_dir, port, ports)
        files = p.broker_files
        # The broker runs the files provisioning generated, as a site's broker does.
        self.broker = Broker(self.run_dir / "broker", generated=files / "edge.conf")
        self.broker.start()
        self.card_key = read_card_key(p.site_dir / "keys" / "card-key")
        if self.rooms is not None:
            self.rooms.setup(
                port, p.site_dir / "accounts" / f"{ROOMS_ACCOUNT}.password", p.site_dir / "devices"
            )
        # The console listens before any device speaks: its session holds every event.
        self.collector = Collector(
            self.run_dir / "console" / "log.db",
            site_dir=p.site_dir,
            clock=lambda: (self.start + timedelta(seconds=self.engine.now)).astimezone(UTC),
            host="127.0.0.1",
            port=port,
            site=site,
            username=CONSOLE_ACCOUNT,
            password=p.password(CONSOLE_ACCOUNT),
        )
        self.collector.on_stored(self._stored)
        self.collector.start()
        for device in self.building.devices:
            self.agents[device] = self._launch(device, at=0.0, wait=False)
        for agent in self.agents.values():
            agent.wait_ready(60)
        self.world = World(self.building, self.engine, self.agents, self.start, p.card_keys)
        publish(p, port)
        self.console = ConsoleClient(
            "127.0.0.1",
            port,
            client_id=SIM_ACCOUNT,  # the broker uses the account name whatever we send
            username=SIM_ACCOUNT,
            password=p.password(SIM_ACCOUNT),
            persistent=False,
        )
        self.console.listen_for_replies(
            topics.replies_filter(topics.DEFAULT_ROOT, site, account=REPLIES_TO)
        )
        self.control = ControlServer(self.console, site, self)
        self.console.start()
        self.commands_key = SiteKeys(p.site_dir / "keys").load_private("commands")
        (self.run_dir / "sim.json").write_text(
            json.dumps({"pid": os.getpid(), "port": port, "site": site, "start": str(self.start)})
        )
        populate(self.world, self.people, self.scenario.seed)
        populate_rooms(self.world, self.uses, self.scenario.seed)
        if self.rooms is not None:
            self.engine.spawn(self.rooms.steps_process(self.world, self._caught_up))
        for fault in self.scenario.faults:
            self.engine.call_at(self._at(fault), partial(self.inject, fault))
        self.engine.spawn(self._heartbeat())
        # A busy moment, where no head count can hide at zero: noon, or the day's middle.
        noon = (self.start.replace(hour=12, minute=0, second=0) - self.start).total_seconds()
        busy, label = (noon, "noon") if 0 < noon < self.length else (self.length / 2, "midday")
        self.engine.call_at(busy, partial(self.sample_head_counts, label))
        self.timing.setup_s = time.perf_counter() - began

    def _stored(self, ids: list[str]) -> None:
        now = time.time()
        for event_id in ids:
            self.stored_real[event_id] = now

    def _launch(self, device: str, at: float, wait: bool = True) -> AgentProcess:
        home = self.run_dir / "devices" / device
        home.mkdir(parents=True, exist_ok=True)
        config = self.provisioned.site_dir / "devices" / f"{device}.toml"
        return AgentProcess(config, home, start=self.start, at=at, log_level="warning", wait=wait)

    def _at(self, fault: Fault) -> float:
        moment = self.start.replace(hour=fault.at.hour, minute=fault.at.minute, second=0)
        return (moment - self.start).total_seconds()

    # -- the day --------------------------------------------------------------------------

    def play(self) -> None:
        """Play the day to its end."""
        began = time.perf_counter()
        self._real_start = time.monotonic()
        self.engine.run_until(self.length, before=self._before)
        self.timing.play_s = time.perf_counter() - began

    def _before(self, at: float) -> None:
        """Pace the day against real time (with `speed`); carry out requests from outside.

        While waiting for the next happening a request from outside is carried out at once,
        at the simulated time that real time has reached.
        """
        while (request := self.control.take()) is not None:
            self.control.carry_out(request)
        if not self.speed:
            return
        due = self._real_start + at / self.speed
        while (remaining := due - time.monotonic()) > 0:
            if (request := self.control.take(timeout_s=remaining)) is None:
                return
            elapsed = (time.monotonic() - self._real_start) * self.speed
            self.engine.now = min(max(self.engine.now, elapsed), at)
            self.control.carry_out(request)
            return  # what the request started (a fault) is due now: let the engine run it

    def _heartbeat(self) -> Any:
        while True:
            for device in self.agents:
                self.world.request(device, op="sync")
            if self.on_progress is not None:
                self.on_progress(self.progress())
            yield HEARTBEAT_S

    def progress(self) -> Progress:
        """Return the figures the progress display shows."""
        return Progress(
            at=self.engine.now,
            length=self.length,
            clock=self.world.clock_text(),
            inside=self.world.inside_count,
            taps=sum(self.world.truth.taps.values()),
            stored=self.collector.stored,
            alarms=len(self.expected_alarms),
        )

    def inject(self, fault: Fault) -> None:
        """Start a fault now (from the scenario, or from edge-sim fault)."""
        self.engine.spawn(fault_process(self, fault))
        self.fault_log.append((self.engine.now, fault.kind))

    # -- what faults use ------------------------------------------------------------------

    def expect_alarm(self, device: str, alarm: str) -> None:
        """Note an alarm the report must find in the console's log."""
        self.expected_alarms.append((self.engine.now, device, alarm))

    def allow_alarm(self, device: str, alarm: str) -> None:
        """Note an alarm a fault may cause; the report does not call it unexpected."""
        self.allowed_alarms.add((device, alarm))

    def command(self, device: str, name: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """Send a signed command as the console would, at the simulated time; return the reply."""
        self.world.request(device, op="sync")
        site = self.building.spec.site
        now = (self.start + timedelta(seconds=self.engine.now)).astimezone(UTC)
        envelope = sign(
            self.commands_key,
            device=device,
            name=name,
            args=args,
            issued_by="console:edge-sim",
            lifetime=timedelta(seconds=60),
            now=now,
        )
        reply = self.console.request(
            topics.command(topics.DEFAULT_ROOT, site, device, name),
            envelope,
            topics.reply(topics.DEFAULT_ROOT, site, device, REPLIES_TO),
            secrets.token_bytes(8),
            timeout_s=10,
        )
        self.world.request(device, op="sync")
        body: dict[str, Any] | None = None if reply is None else json.loads(reply)
        if body is None or not body.get("ok"):
            self.world.note(f"command {name} to {device} failed: {body}")
        return body

    def power_off(self, device: str) -> None:
        """Cut a device's power (the world kills its agent and drops its relays)."""
        self.world.power_off(device)

    def power_on(self, device: str) -> None:
        """Power a device up again: a new agent process on the same store and config."""
        self.world.power_on(device, self._launch(device, at=self.engine.now))
        self.restarts[device] = self.restarts.get(device, 0) + 1

    def _caught_up(self, want: Mapping[str, int]) -> bool | None:
        """Wait (5 s at most) until the console holds each device's events up to a seq."""
        if not self.broker.running:
            return None

        def complete(log: Any) -> bool:
            devices = log.devices()
            return all(devices.get(d, {}).get("contiguous", 0) >= n for d, n in want.items())

        return self.collector.wait_for(complete, 5.0)

    def catch_up(self, timeout_s: float = 30.0) -> bool:
        """Wait until the console holds every event each powered device has stored."""
        want = {}
        for device in self.agents:
            reply = self.world.request(device, op="stats")
            if reply is not None:
                want[device] = int(reply["last_seq"])
        self.last_seq.update(want)

        def complete(log: Any) -> bool:
            devices = log.devices()
            return all(devices.get(d, {}).get("contiguous", 0) >= n for d, n in want.items() if n)

        return self.collector.wait_for(complete, timeout_s)

    def roll_call_check(self, label: str) -> None:
        """Compare the console's roll call with who is really inside (by card)."""
        caught_up = self.catch_up()
        stamp = utc_text(self.start + timedelta(seconds=self.engine.now))
        console = {p.card_ref for p in inside(self.collector.log, until=stamp)}
        truth = {
            card_reference(self.card_key, p.technology, p.card_id): p.staff_no
            for p in self.world.truth.inside.values()
        }
        missing = [truth[r] for r in truth if r not in console]
        extra = len(console - set(truth))
        tailgaters = sorted(self.world.truth.tailgaters)
        ok = caught_up and not missing and not extra
        self.checks.append(
            Check(
                f"roll call at {label} ({self.world.clock_text()}) = who is inside",
                ok,
                f"console {len(console)}, truth {len(truth)} by card; missing {missing[:5]}, "
                f"extra {extra}; inside without a card record (tailgaters): {tailgaters}",
            )
        )

    def sample_head_counts(self, label: str) -> None:
        """Keep the console's head count of each gate's inside zone beside the truth's.

        Skipped (with a note) while a gate is cut off, the broker is down or a device has no
        power: the console cannot hold what it has not been sent yet.
        """
        if self.cut_began or not self.broker.running or self.world.down:
            self.world.note(f"head counts at {label} not compared: the line is not whole")
            return
        if not self.catch_up():
            self.world.note(f"head counts at {label} not compared: the console lags")
            return
        zones = sorted({g.inside for g in self.building.gates})
        counts = {zone: head_count(self.collector.log, zone) for zone in zones}
        truth = self.world.inside_count - self.world.truth.unseen_entries
        self.head_counts.append((self.engine.now, label, counts, truth))

    # -- the end --------------------------------------------------------------------------

    def finish(self) -> None:
        """Bring every agent to the day's end and wait until the console has every event."""
        began = time.perf_counter()
        for device in self.agents:
            self.world.request(device, op="sync")
        if not self.broker.running:
            self.broker.start()
        caught_up = self.catch_up(timeout_s=120)
        self.roll_call_check("the end of the day")
        if not caught_up:
            self.checks.append(Check("the console caught up within 120 s", False, ""))
        self.timing.finish_s = time.perf_counter() - began

    def close(self) -> None:
        """Stop the agents (all at once), the collector, the console client and the broker.

        Every step runs even if an earlier one fails, so nothing is left running.
        """
        failures: list[BaseException] = []
        running = [a for a in self.agents.values() if a.proc.poll() is None]
        for agent in running:
            agent.proc.terminate()
        for agent in running:
            try:
                agent.terminate()
            except Exception as error:  # each agent is stopped regardless
                agent.proc.kill()
                failures.append(error)
        stops: list[Callable[[], None]] = [self.rooms.close] if self.rooms is not None else []
        if hasattr(self, "console"):
            stops.append(self.console.close)
        if hasattr(self, "collector"):
            stops.append(self.collector.close)
        if hasattr(self, "broker"):
            stops.append(self.broker.stop)
        stops += [cut.close for cut in self.netcuts.values()]
        for stop in stops:
            try:
                stop()
            except Exception as error:  # every part is stopped regardless
                failures.append(error)
        (self.run_dir / "sim.json").unlink(missing_ok=True)
        if failures:
            log.warning("closing the simulation: %s", "; ".join(map(str, failures)))
