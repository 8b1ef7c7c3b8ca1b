"""A provisioned building whose doors the console acts on, for the doors tests and bench.

Real parts: edge-provision (site, accounts, devices, rules, the console key), mosquitto
with the generated password file and ACL, one agent process per device on the real clock
(so commands signed at the console's time are judged at the same time), the console's
collector, uvicorn serving the app with a broker account and the command key.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from console.cli import cli
from console.collector import Collector
from console.log import CentralLog
from console.users import add_user
from console.web import Settings, create_app
from console.web_context import BrokerAccess
from edge.card_layout import DESFIRE_KEY_NO
from provisioning.card_keys import LITE_S_SLOT
from simulator.broker import free_port
from simulator.building import load_building
from simulator.process import AgentProcess
from simulator.provision import CONSOLE_ACCOUNT, edge_provision, provision, publish
from simulator.staff import Person, make_people
from tests.broker import start_broker
from tests.console.web_fixtures import PASSWORDS, ROLES, serve
from tests.simulator.city import SMALL

WEB_ACCOUNT = "console-doors"  # the web page's broker account (not the collector's)
CLI_ACCOUNT = "console-cli"  # the CLI's, so the two never take each other's session


@dataclass
class DoorsSite:
    """The running site: its files, its agents, the console's URL."""

    site: str
    site_dir: Path
    port: int
    key: Path
    log_path: Path
    url: str
    agents: dict[str, AgentProcess]
    people: list[Person]
    card_keys: Any
    run_dir: Path

    def log(self) -> CentralLog:
        """Open the central log (close it after)."""
        return CentralLog(self.log_path)

    def audit_rows(self, action: str) -> list[tuple[str, str]]:
        """Return (user, detail) of every audit row of `action`, oldest first."""
        log = self.log()
        try:
            return [
                (str(u), str(d))
                for u, d in log.db.execute(
                    "SELECT username, detail FROM audit WHERE action = ? ORDER BY id", [action]
                )
            ]
        finally:
            log.close()

    def cli(self, *args: str, user: str, timeout_s: float = 5.0, port: int = 0) -> Result:
        """Run `edge-console ARGS` as console user `user` through the CLI's broker account."""
        password_file = self.run_dir / f"{user}.password"
        password_file.write_text(PASSWORDS[user])
        common = [
            "--db", str(self.log_path), "--user", user, "--password-file", str(password_file),
            "--site-dir", str(self.site_dir), "--broker-host", "127.0.0.1",
            "--broker-port", str(port or self.port), "--broker-user", CLI_ACCOUNT,
            "--command-key", str(self.key), "--timeout-s", str(timeout_s),
        ]  # fmt: skip
        return CliRunner().invoke(cli, [*args, *common], catch_exceptions=False)

    def tap(self, reader: str, person: Person, pin: str | None = None) -> dict[str, Any]:
        """Hold `person`'s card to `reader` (a proving card proves itself), keying `pin` if
        given; return the reply."""
        device = next(d for d in self.agents if reader.startswith(d))
        body: dict[str, Any] = {"reader": reader, "technology": person.technology}
        if pin is not None:
            body["pin"] = pin
        body["id"] = person.card_id
        keys = self.card_keys.get(person.card_id)
        if keys:
            role = "gate" if device.startswith("gate") else "door"
            slot = LITE_S_SLOT if LITE_S_SLOT in keys else str(DESFIRE_KEY_NO.get(role, 0))
            body["key"] = keys[slot].hex()
        return self.agents[device].request(op="tap", **body)

    def relays(self, device: str, door: str) -> list[bool]:
        """Return the relay read-back of `door` since the last request: unlocked? per change."""
        reply = self.agents[device].request(op="relay", door=door)
        return [bool(u) for _, d, u in reply.get("relays", []) if d == door]


@contextmanager
def doors_site(
    tmp: Path,
    *,
    agents: bool = True,
    timeout_s: float = 5.0,
    only: Sequence[str] = (),
    building_file: Path = SMALL,
    log_level: str = "warning",
    debounce_s: float | None = None,
) -> Iterator[DoorsSite]:
    """Provision a building (the small one), start its broker, agents, collector, console.

    `debounce_s`: every reader's, so a test may tap the same card again at once.
    """
    building = load_building(building_file)
    people = make_people(building, date.today(), seed=1)
    run_dir = tmp / "run"
    run_dir.mkdir()
    port = free_port()
    p = provision(building, people, run_dir, port)
    site_dir, d = p.site_dir, ("--dir", str(p.site_dir))
    if debounce_s is not None:
        for config in (site_dir / "devices").glob("*.toml"):
            text = config.read_text(encoding="utf-8")
            text = text.replace('kind = "sim"\n', f'kind = "sim"\ndebounce_s = {debounce_s}\n')
            config.write_text(text, encoding="utf-8")
    for account in (WEB_ACCOUNT, CLI_ACCOUNT):
        edge_provision(["account", "add", account, "--role", "console", *d], p.log)
    files = ["--out", str(p.broker_files), "--port", str(port)]
    edge_provision(["broker", "config", *d, *files], p.log)
    key = run_dir / "console.key"
    edge_provision(["console-key", *d, "--out", str(key)], p.log)
    site = building.spec.site
    log_path = run_dir / "console" / "log.db"
    with ExitStack() as stack:
        broker = start_broker(run_dir / "broker", generated=p.broker_files / "edge.conf")
        stack.callback(broker.stop)
        collector = Collector(
            log_path,
            site_dir=site_dir,
            host="127.0.0.1",
            port=port,
            site=site,
            username=CONSOLE_ACCOUNT,
            password=p.password(CONSOLE_ACCOUNT),
        )
        collector.start()
        stack.callback(collector.close)
        running: dict[str, AgentProcess] = {}
        stack.callback(_stop, running)
        if agents:
            for device in only or building.devices:
                home = run_dir / "devices" / device
                home.mkdir(parents=True, exist_ok=True)
                config = site_dir / "devices" / f"{device}.toml"
                running[device] = AgentProcess(config, home, log_level=log_level, wait=False)
            for agent in running.values():
                agent.wait_ready(60)
            publish(p, port)
        log = CentralLog(log_path)
        for user, password in PASSWORDS.items():
            add_user(log, user, ROLES[user], password, by="test")
        log.close()
        settings = Settings(
            log_path,
            site_dir / "registry.db",
            tmp / "console-session.key",
            secure_cookies=False,  # plain http on loopback in the test
            site_dir=site_dir,
            broker=BrokerAccess(
                "127.0.0.1",
                port,
                site,
                WEB_ACCOUNT,
                site_dir / "accounts" / f"{WEB_ACCOUNT}.password",
            ),
            command_key=key,
            command_timeout_s=timeout_s,
        )
        url = stack.enter_context(serve(create_app(settings)))
        yield DoorsSite(
            site, site_dir, port, key, log_path, url, running, people, p.card_keys, run_dir
        )


def _stop(agents: dict[str, AgentProcess]) -> None:
    for agent in agents.values():
        if agent.proc.poll() is None:
            agent.proc.terminate()
    for agent in agents.values():
        try:
            agent.terminate()
        except Exception:  # each agent is stopped regardless
            agent.proc.kill()
