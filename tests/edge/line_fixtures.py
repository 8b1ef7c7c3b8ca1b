"""A security line of gate agents as processes on a real mosquitto with the generated ACL.

Each gate is the example security gate renamed, its readers without tap debounce, its card
key and FeliCa cards 1-9 enrolled. A gate may reach the broker through a `NetCut`, so a
test cuts its network path for real (the agent's TCP connection drops; reconnects are
refused until the path heals).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from edge.link.crossings import served_zones
from firmware_config.loader import load_config
from provisioning.broker import acl
from simulator.broker import free_port
from simulator.netcut import NetCut
from simulator.process import AgentProcess
from tests.broker import Broker, Subscriber, start_broker
from tests.edge.agent_fixtures import SimDevice, enrol, felica, sim_config

SITE = "kamakura-city-hall"
BASE = f"edge/{SITE}"
CARDS = range(1, 10)


def watcher_acl(gates: tuple[str, ...]) -> str:
    """The test's own eyes: statuses, events, and the honest gates' crossings and digests."""
    lines = ["user watcher", f"topic read {BASE}/+/status", f"topic read {BASE}/+/events/#"]
    for gate in gates:
        lines += [f"topic read {BASE}/{gate}/crossings/#", f"topic read {BASE}/{gate}/positions/#"]
    return "\n" + "\n".join(lines) + "\n"


def gate_config(
    home: Path, gate: str, port: int, mode: str, password: str, offline: str | None = None
) -> SimDevice:
    """Write gate `gate`'s configuration under `home`, enrolled, pointing at `port`."""
    home.mkdir(exist_ok=True)
    device = sim_config(home, broker_port=port)
    text = device.config.read_text(encoding="utf-8")
    text = text.replace('id = "gate-1f-east"', f'id = "{gate}"', 1)
    fallback = f'\nanti_passback_offline = "{offline}"' if offline else ""
    text = text.replace('anti_passback = "hard"', f'anti_passback = "{mode}"{fallback}', 1)
    for reader in ("gate-east-in", "gate-east-out"):  # the same card again within seconds
        text = text.replace(f'id = "{reader}"\n', f'id = "{reader}"\ndebounce_s = 0.0\n', 1)
    secret = home / "mqtt-password"
    secret.write_text(password)
    text = text.replace("[mqtt]\n", f'[mqtt]\nusername = "{gate}"\npassword_file = "{secret}"\n', 1)
    device.config.write_text(text, encoding="utf-8")
    enrol(device.store, CARDS, ["gate-east"])
    return device


@dataclass
class Line:
    """Gates of one line, the broker, a watcher, and each gate's cuttable network path."""

    mode: str
    broker: Broker
    watcher: Subscriber
    devices: dict[str, SimDevice]
    homes: dict[str, Path]
    offline: str | None = None
    gates: dict[str, AgentProcess] = field(default_factory=dict)
    cuts: dict[str, NetCut] = field(default_factory=dict)

    def start(self, gate: str) -> AgentProcess:
        """Start (or start again) gate `gate`'s agent process."""
        self.gates[gate] = AgentProcess(
            self.devices[gate].config, self.homes[gate], log_level="debug"
        )
        return self.gates[gate]

    def stop(self, gate: str) -> None:
        """Stop gate `gate` as systemd would."""
        self.gates.pop(gate).terminate()

    def cross(self, gate: str, reader: str, card: int) -> dict[str, object]:
        """Tap, and walk through if granted; return the tap's reply."""
        agent = self.gates[gate]
        reply = agent.request(op="tap", reader=reader, technology="felica", id=felica(card))
        if reply.get("decision") == "granted":
            agent.request(op="door", door="gate-east", open=True)
            agent.request(op="door", door="gate-east", open=False)
        return reply

    def enter(self, gate: str, card: int) -> dict[str, object]:
        return self.cross(gate, "gate-east-in", card)

    def leave(self, gate: str, card: int) -> dict[str, object]:
        return self.cross(gate, "gate-east-out", card)

    def crossing_ids(self, gate: str) -> list[str]:
        topic = f"{BASE}/{gate}/crossings/staff-area"
        with self.watcher.cond:
            return [json.loads(m.payload)["id"] for m in self.watcher.messages if m.topic == topic]

    def applied(self, target: str, crossing_id: str, timeout: float = 30) -> None:
        """Wait until crossing `crossing_id` has been merged at gate `target`."""
        text = f"peer crossing {crossing_id} applied"
        assert self.gates[target].request(op="wait_log", text=text, timeout=timeout)["ok"], text

    def propagate(self, source: str, target: str, count: int) -> str:
        """Wait until `source`'s `count`-th crossing has been applied at `target`; return its id."""
        self.watcher.wait_for(
            lambda _: len(self.crossing_ids(source)) >= count, what=f"{source}'s crossing"
        )
        crossing = self.crossing_ids(source)[count - 1]
        self.applied(target, crossing)
        return crossing

    def online(self, *gates: str, state: str = "online") -> None:
        """Wait until each gate's retained status says `state` (offline: its last will)."""

        def latest(gate: str) -> str | None:
            found = self.watcher.payloads(f"/{gate}/status")
            return str(found[-1].get("state")) if found else None

        self.watcher.wait_for(
            lambda _: all(latest(g) == state for g in gates), 60, what=f"{gates} {state}"
        )

    def alarms(self, gate: str, type_: str) -> list[dict[str, object]]:
        return [p for p in self.watcher.payloads(f"/{gate}/events/alarm") if p["type"] == type_]

    def access(self, gate: str) -> list[dict[str, object]]:
        return self.watcher.payloads(f"/{gate}/events/access")


def start_line(
    tmp_path: Path,
    gates: tuple[str, ...],
    mode: str,
    *,
    offline: str | None = None,
    cut: tuple[str, ...] = (),
    extra_users: dict[str, str] | None = None,
) -> Iterator[Line]:
    """Run gates `gates` (those in `cut` behind a NetCut) until the caller is done."""
    passwords = {g: f"{g}-secret" for g in gates} | (extra_users or {}) | {"watcher": "w"}
    workdir = tmp_path / "broker"
    workdir.mkdir()
    passwd = workdir / "passwd"
    passwd.touch()
    for user, password in passwords.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, password], check=True)
    port = free_port()
    with ExitStack() as stack:
        cuts = {g: stack.enter_context(NetCut(port)) for g in cut}
        homes = {g: tmp_path / g for g in gates}
        devices = {
            g: gate_config(
                homes[g], g, cuts[g].port if g in cuts else port, mode, passwords[g], offline
            )
            for g in gates
        }
        # The ACL is written from the gates' own configurations, as edge-provision does; the
        # extra users are gates of the same line that the test plays itself.
        zones = {g: served_zones(load_config(d.config)) for g, d in devices.items()}
        extra = {u: zones[gates[0]] for u in extra_users or {}}
        accounts = dict.fromkeys([*devices, *extra], "device")
        rules = acl("edge", SITE, accounts, zones | extra) + watcher_acl(gates)
        broker = start_broker(workdir, acl=rules, passwords=passwd, port=port)
        stack.callback(broker.stop)
        watcher = Subscriber(
            port, f"{BASE}/#", client_id="watcher", username="watcher", password="w"
        )
        stack.callback(watcher.close)
        line = Line(mode, broker, watcher, devices, homes, offline, cuts=cuts)

        def stop_all() -> None:
            for agent in line.gates.values():
                agent.terminate()

        stack.callback(stop_all)
        for gate in gates:
            line.start(gate)
        # A gate's status follows its subscriptions on the same connection: once every gate is
        # online, each hears the others' crossings.
        line.online(*gates)
        yield line
