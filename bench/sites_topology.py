"""The sites bench's topology: provisioned sites bridged through cuttable WAN links to a centre.

Everything is written by `edge-provision` (run in this process through click's runner, an
operator's commands without a process each): `bridge ca` and `bridge central` for the centre
(TLS listener, one bridge account per site, the console accounts `collector-a`,
`collector-b`), and per site `site init`, `broker config` and `bridge site` (MQTT 5 over TLS,
its own bridge account). A site's broker runs `edge.conf` then `bridge.conf`, as Debian's
`include_dir` reads them. The devices' configurations are written as `edge-provision`
keeps them (`devices/{id}.toml`), for the collectors' claims; the devices themselves have no
broker accounts: one bench-only account per site (`bench-publisher`, appended to the site's
generated passwd and ACL) may write every device's events at that site, so one client per
site publishes for all of them.

The WAN links are simulator.netcut.NetCut forwarders (what tests/wan.py's WanLink wraps),
run in a child process of their own so that copying bytes does not compete with the
collectors for this process's interpreter lock; `WanLinks` drives them over a pipe.
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from click.testing import CliRunner

from provisioning.broker import password_hash
from provisioning.cli import cli
from simulator.broker import Broker, free_port
from simulator.netcut import NetCut
from tests.console.test_claims import gate_toml

ROOT = "edge"
COLLECTORS = ("collector-a", "collector-b", "collector-c", "collector-d")
WATCHER = "bench-watch"  # a console account that only watches the bridges' state
PUBLISHER = "bench-publisher"
RECONNECT_S = ("1", "2")  # the bridge's backoff here: a restored link is used within 2 s


def provision(*args: str) -> None:
    """Run `edge-provision ARGS` in this process; raise with its output if it refuses."""
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    if result.exit_code != 0:
        raise RuntimeError(f"edge-provision {' '.join(args)}: {result.output}")


def device_names(site_index: int, sites: int, devices: int) -> list[str]:
    """Return the device ids of site `site_index` when `sites` share `devices` devices
    (unique across sites, so an id names its site)."""
    count = devices // sites + (1 if site_index < devices % sites else 0)
    return [f"s{site_index:02d}-gate-{d:03d}" for d in range(count)]


def write_devices(directory: Path, site: str, devices: Sequence[str]) -> None:
    """Write the devices' configurations where the collector reads their claims."""
    (directory / "devices").mkdir(parents=True, exist_ok=True)
    for device in devices:
        (directory / "devices" / f"{device}.toml").write_text(gate_toml(device, site))


def add_publisher(out: Path, site: str, password: str) -> None:
    """Give a site broker the bench-only account that writes every device's events."""
    with (out / "passwd").open("a") as passwd:
        passwd.write(f"{PUBLISHER}:{password_hash(password)}\n")
    with (out / "acl").open("a") as acl:
        acl.write(f"\n# bench only\nuser {PUBLISHER}\ntopic write {ROOT}/{site}/+/events/#\n")


# -- the WAN links, in a child process ------------------------------------------------------


def _links_process(target_port: int, count: int, conn: Connection) -> None:
    """Forward `count` loopback ports to the centre; obey ("cut"|"heal"|"close", indexes)."""
    links = [NetCut(target_port) for _ in range(count)]
    conn.send([link.port for link in links])
    while True:
        command, indexes = conn.recv()
        if command == "close":
            for link in links:
                link.close()
            conn.send("closed")
            return
        for i in indexes:
            links[i].cut() if command == "cut" else links[i].heal()
        conn.send([repr(links[i]) for i in indexes])


class WanLinks:
    """The sites' WAN links (one NetCut each), in a child process."""

    def __init__(self, target_port: int, count: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._process = ctx.Process(target=_links_process, args=(target_port, count, child))
        self._process.start()
        self.ports: list[int] = self._conn.recv()

    def cut(self, indexes: Sequence[int]) -> list[str]:
        """Drop the links `indexes` at once and refuse new connections through them."""
        self._conn.send(("cut", list(indexes)))
        reply: list[str] = self._conn.recv()
        return reply

    def restore(self, indexes: Sequence[int]) -> list[str]:
        """Let the links `indexes` carry connections again."""
        self._conn.send(("heal", list(indexes)))
        reply: list[str] = self._conn.recv()
        return reply

    def close(self) -> None:
        """Close every link and end the child process; idempotent."""
        if self._process.is_alive():
            self._conn.send(("close", []))
            self._conn.recv()
        self._process.join(20)


# -- the brokers -----------------------------------------------------------------------------


@dataclass
class SiteBroker:
    """One site: its slug, directory, devices, broker and the bench publisher's password."""

    slug: str
    directory: Path
    devices: list[str]
    broker: Broker
    password: str


@dataclass
class Topology:
    """The centre, its sites and their links; `close()` stops every process."""

    central: Broker
    central_dir: Path
    ca: Path
    sites: list[SiteBroker]
    links: WanLinks

    def collector_password(self, name: str) -> str:
        """Return a console account's password at the centre."""
        return (self.central_dir / "accounts" / f"{name}.password").read_text().strip()

    def close(self) -> None:
        """Stop the site brokers, the links and the centre."""
        for site in self.sites:
            site.broker.stop()
        self.links.close()
        self.central.stop()


def site_slug(index: int) -> str:
    """Return the slug of site `index`."""
    return f"site-{index:02d}"


def build(workdir: Path, sites: int, devices: int, collectors: int) -> Topology:
    """Provision and start the centre and `sites` sites sharing `devices` devices."""
    began = time.perf_counter()
    central_dir, sites_dir = workdir / "central", workdir / "sites"
    provision("bridge", "ca", "--dir", str(central_dir), "--host", "127.0.0.1")
    ca = central_dir / "keys" / "ca.crt"
    central_port = free_port()
    links = WanLinks(central_port, sites)
    planned: list[tuple[str, Path, list[str], Path, str]] = []
    try:
        for i in range(sites):
            slug, directory = site_slug(i), sites_dir / site_slug(i)
            provision("site", "init", "--site", slug, "--dir", str(directory))
            out = workdir / "brokers" / slug
            port = str(free_port())
            provision(
                "broker", "config", "--dir", str(directory), "--out", str(out), "--port", port
            )
            provision(
                "bridge", "site", "--dir", str(directory), "--central-host", "127.0.0.1",
                "--central-port", str(links.ports[i]), "--ca-file", str(ca), "--out", str(out),
                "--reconnect-s", *RECONNECT_S,
            )  # fmt: skip
            names = device_names(i, sites, devices)
            write_devices(directory, slug, names)
            password = f"bench-{i}-{time.time_ns()}"
            add_publisher(out, slug, password)
            planned.append((slug, directory, names, out, password))
        central_out = workdir / "brokers" / "central"
        names_ = (*COLLECTORS[:collectors], WATCHER)
        consoles = [a for name in names_ for a in ("--console", name)]
        provision(
            "bridge", "central", "--sites", str(sites_dir), "--dir", str(central_dir),
            "--out", str(central_out), "--port", str(central_port), *consoles,
        )  # fmt: skip
        central = Broker(workdir / "run" / "central", generated=central_out / "edge.conf")
        central.start()
    except BaseException:
        links.close()
        raise
    provisioned = time.perf_counter()
    started: list[SiteBroker] = []
    try:
        for slug, directory, names, out, password in planned:
            conf = out / "site.conf"
            conf.write_text("".join((out / n).read_text() for n in ("edge.conf", "bridge.conf")))
            broker = Broker(workdir / "run" / slug, generated=conf)
            broker.start()
            started.append(SiteBroker(slug, directory, names, broker, password))
    except BaseException:
        for site in started:
            site.broker.stop()
        links.close()
        central.stop()
        raise
    print(
        f"  topology: {sites} sites provisioned in {provisioned - began:.1f} s, "
        f"{sites + 1} mosquittos started in {time.perf_counter() - provisioned:.1f} s"
    )
    return Topology(central, central_dir, ca, started, links)
