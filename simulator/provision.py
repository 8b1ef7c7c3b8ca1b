"""Provision a simulated building the way an operator does: through edge-provision.

Every step is an `edge-provision` command line, run in this process (the same click
commands, arguments and files an operator's shell would give it); what each prints goes
to `provision.log` in the run directory.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import click

from edge.core.credentials import CardProfile
from edge.errors import EdgeError
from provisioning import broker
from provisioning.card_keys import keys_for, load_master
from provisioning.cli import cli
from provisioning.keys import SiteKeys
from simulator import sim_topics
from simulator.building import Building, Wiring, device_config
from simulator.staff import Person, write_hr_csv

SIM_ACCOUNT = "sim"  # the simulation's own account: console rights plus its sim/ topics
# `edge-sim tap` and `edge-sim fault`: the broker uses the account name as the client id, so
# sharing the simulation's account would take its session over.
CONTROL_ACCOUNT = "sim-control"
CONSOLE_ACCOUNT = "console"
ROOMS_ACCOUNT = "rooms"  # the rooms service's own broker account (role rooms)
OPERATOR_ACCOUNT = "operator"


class ProvisionError(EdgeError, RuntimeError):
    """An edge-provision step failed; the message holds the command and what it printed."""


@dataclass(frozen=True)
class Provisioned:
    """Where provisioning left its files."""

    site_dir: Path
    broker_files: Path
    hr_csv: Path
    log: Path
    # The keys each proving card holds, by raw card id (they never leave the simulated cards).
    card_keys: Mapping[str, Mapping[str, bytes]] = field(default_factory=dict, repr=False)

    def password(self, account: str) -> str:
        return (self.site_dir / "accounts" / f"{account}.password").read_text().strip()


def edge_provision(args: Sequence[str], log: Path) -> str:
    """Run one `edge-provision ARGS…` in this process; return what it printed."""
    out = io.StringIO()
    code: int | None = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            cli.main(args=list(args), prog_name="edge-provision", standalone_mode=False)
        except click.exceptions.Exit as exit_:
            code = exit_.exit_code
        except click.ClickException as error:
            error.show()
            code = error.exit_code
    with log.open("a", encoding="utf-8") as f:
        f.write(f"$ edge-provision {' '.join(args)}\n{out.getvalue()}")
    if code:
        raise ProvisionError(f"edge-provision {' '.join(args)} failed ({code}):\n{out.getvalue()}")
    return out.getvalue()


def provision(
    building: Building,
    people: list[Person],
    run_dir: Path,
    broker_port: int,
    ports: Mapping[str, int] | None = None,
) -> Provisioned:
    """Set the site up: keys, accounts, devices, staff, rules, broker files.

    `ports`: the devices that reach the broker through another port (a NetCut).
    """
    site = run_dir / "site"
    log = run_dir / "provision.log"
    d = ("--dir", str(site))
    spec = building.spec
    steps: list[tuple[str, ...]] = [
        ("site", "init", "--site", spec.site, "--timezone", spec.timezone),
        ("account", "add", CONSOLE_ACCOUNT, "--role", "console"),
        ("account", "add", SIM_ACCOUNT, "--role", "console"),
        ("account", "add", OPERATOR_ACCOUNT, "--role", "operator"),
        ("account", "add", ROOMS_ACCOUNT, "--role", "rooms"),
    ]
    for device in building.devices.values():
        steps += [
            ("account", "add", device.id, "--role", "device"),
            ("device", "add", device.id, "--role", device.role),
        ]
    for step in steps:
        edge_provision([*step, *d], log)
    wiring = Wiring(broker_port, site, run_dir / "devices", dict(ports or {}))
    for device in building.devices.values():
        # What an installer does after `device add`: edit the configuration for the wiring.
        path = site / "devices" / f"{device.id}.toml"
        path.write_text(device_config(building, device, wiring), encoding="utf-8")
    csv_path = write_hr_csv(people, run_dir / "hr-export.csv")
    edge_provision(["cards", "import", str(csv_path), "--encoding", "cp932", *d], log)
    for person in people:
        if person.case == "lost":
            edge_provision(["cards", "lost", person.staff_no, *d], log)
    gates = ",".join(g.id for g in building.gates)
    all_doors = ",".join(d.id for d in building.gates + building.stair_doors)
    rules: list[tuple[str, ...]] = [
        ("rules", "schedule", "office", "--days", "mon-fri", "--hours", "07:00-22:00"),
        ("rules", "add", "staff", "--doors", gates, "--schedule", "office"),
        ("rules", "add", "security", "--doors", all_doors),
        ("rules", "override", "security"),
        ("rules", "require-proof", "security"),
        ("rules", "require-pin", "security"),  # at the readers with a keypad
    ]
    for level in sorted({p.floor for p in people if p.floor > 1}):
        doors = ",".join(d.id for d in building.stair_doors if d.floor in (1, level))
        rules.append(("rules", "add", f"floor-{level}", "--doors", doors, "--schedule", "office"))
    for step in rules:
        edge_provision([*step, *d], log)
    files = run_dir / "broker-files"
    edge_provision(["broker", "config", *d, "--out", str(files), "--port", str(broker_port)], log)
    _control_topics(files, site, spec.site)
    return Provisioned(site, files, csv_path, log, proving_keys(people, site))


def proving_keys(people: list[Person], site: Path) -> dict[str, dict[str, bytes]]:
    """Return what each proving card was personalised with, as a card issuer would have it."""
    master = load_master(SiteKeys(site / "keys"))
    return {
        p.card_id: keys_for(CardProfile(p.profile), p.technology, bytes.fromhex(p.card_id), master)
        for p in people
        if CardProfile(p.profile).proves
    }


def _control_topics(files: Path, site_dir: Path, site: str) -> None:
    """Give the simulation and its control account their sim/ topics, nothing more.

    The control account is the simulator's own, not the site's: it goes into the broker's
    files (and its password beside the others) without a registry role.
    """
    control, replies = sim_topics.control_filter(site), sim_topics.reply_filter(site)
    acl = files / "acl"
    text = acl.read_text().replace(
        f"user {SIM_ACCOUNT}\n",
        f"user {SIM_ACCOUNT}\ntopic read {control}\ntopic write {replies}\n",
        1,
    )
    text += (
        f"\n# the simulation's control channel\nuser {CONTROL_ACCOUNT}\n"
        f"topic write {control}\ntopic read {replies}\n"
    )
    acl.write_text(text)
    password = secrets.token_urlsafe(24)
    path = site_dir / "accounts" / f"{CONTROL_ACCOUNT}.password"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    with (files / "passwd").open("a") as f:
        f.write(broker.password_file({CONTROL_ACCOUNT: broker.password_hash(password)}))


def publish(provisioned: Provisioned, broker_port: int, wait_s: float = 120) -> str:
    """Publish every device's signed credentials and wait until each has applied them."""
    return edge_provision(
        [
            "publish",
            "--dir",
            str(provisioned.site_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(broker_port),
            "--wait",
            str(wait_s),
        ],
        provisioned.log,
    )
