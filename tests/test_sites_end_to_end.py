"""Two sites, one security office, end to end as an installer runs it: real agents at each
site's broker, the sites' bridges to the centre over TLS, the collector into PostgreSQL, and
the operator's credentials going down the bridges from the centre.

Each site runs what `edge-provision broker config` and `bridge site` wrote, the centre what
`bridge ca` and `bridge central` wrote (tests/wan.py); a site's WAN link is cut for a few
seconds here (bench/sites.py cuts it for 10 minutes under load and prints the catch-up).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.collector import Collector
from console.log import CentralLog
from firmware_config.model import MqttConfig, TlsConfig
from provisioning.credential_sets import Built
from provisioning.publish import Outcome, build_all, commit_bases, send
from provisioning.registry import Registry
from tests.edge.sim_process import AgentProcess
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)
from tests.provisioning.commands import provision
from tests.provisioning.test_publish import CSV
from tests.provisioning.test_publish_deltas import agent, tap
from tests.wan import Wan, start_wan

pytestmark = pytest.mark.services  # three mosquittos, the WAN links, two agents, PostgreSQL

A, B = "site-a", "site-b"
GATE = "gate-1f-east"  # the same device id at both sites: only the site tells them apart
OPERATOR = "office"  # the centre's operator account (tests/wan.py: bridge central --operator)
CONSOLE = "collector"  # the centre's console account (bridge central --console)
CUT_TAPS = 25
WAIT_S = 30.0
EXAMPLE_SITE = "kamakura-city-hall"  # the site id in the example configuration the gates run
_cards = itertools.count(1)  # a new card for every tap: none falls in a reader's debounce


@dataclass
class Chain:
    """The WAN of two sites, each site provisioned with one gate and its agent running."""

    wan: Wan
    agents: dict[str, AgentProcess]

    def last_seq(self, site: str) -> int:
        """Return the seq of the newest event the site's gate has recorded."""
        stats = self.agents[site].request(op="stats")
        assert stats["ok"], stats
        return int(stats["last_seq"])


def provision_site(directory: Path, tmp_path: Path) -> None:
    """Give a site its gate's configuration, rules and cardholders."""
    csv = tmp_path / "staff.csv"
    csv.write_text(CSV, encoding="utf-8")
    for step in [
        ("device", "add", GATE, "--role", "gate"),
        ("rules", "add", "staff", "--doors", "gate-east"),
        ("rules", "add", "security", "--doors", "gate-east"),
        ("cards", "import", str(csv)),
    ]:
        result = provision(*step, "--dir", str(directory))
        assert result.returncode == 0, (step, result.stderr)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    work = tmp_path_factory.mktemp("sites")
    wan = start_wan(work, (A, B), (GATE,))
    agents: dict[str, AgentProcess] = {}
    try:
        # As an installer does: the console's session at the centre first, then the gates,
        # so the centre keeps their first events for the console.
        prime = collector(wan, work / "prime.db")
        prime.start()
        try:
            assert prime.wait_for(lambda log: all(linked(log, s) for s in (A, B)), WAIT_S)
        finally:
            prime.close()
        for slug, site in wan.sites.items():
            provision_site(site.directory, work)
            home = work / f"agent-{slug}"
            home.mkdir()
            sim = agent(site.directory, home, site.broker.port, GATE)
            config = sim.config.read_text(encoding="utf-8")
            sim.config.write_text(config.replace(f'id = "{EXAMPLE_SITE}"', f'id = "{slug}"', 1))
            agents[slug] = AgentProcess(sim, home / GATE)
        yield Chain(wan, agents)
    finally:
        for process in agents.values():
            process.terminate()
        wan.close()


def collector(wan: Wan, log: str | Path) -> Collector:
    """Return the centre's collector for both sites (its console account, TLS), into `log`."""
    return Collector(
        log,
        host="127.0.0.1",
        port=wan.central.port,
        sites={slug: site.directory for slug, site in wan.sites.items()},
        username=CONSOLE,
        password=wan.central_password(CONSOLE),
        client_id=CONSOLE,
        ca_file=str(wan.ca),
    )


def publish_from_centre(wan: Wan, site: str) -> tuple[list[Built], Outcome]:
    """Publish a site's credentials as the centre's operator, down the site's bridge."""
    config = MqttConfig(
        host="127.0.0.1",
        port=wan.central.port,
        username=OPERATOR,
        password_file=wan.central_dir / "accounts" / f"{OPERATOR}.password",
        tls=TlsConfig(ca_file=wan.ca),
    )
    directory = wan.sites[site].directory
    registry = Registry(directory / "registry.db")
    try:
        # The test site has three cards: a delta is a large share of its snapshot.
        built = build_all(registry, directory, delta_share=1.0)
        outcome = send(config, site, built, f"{OPERATOR}-test", WAIT_S)
        commit_bases(registry, built, outcome)
    finally:
        registry.close()
    return built, outcome


def taps(process: AgentProcess, count: int) -> None:
    """Tap `count` cards the site does not know at the gate: each is an access event."""
    for _ in range(count):
        card = f"0114{0xE0000 + next(_cards):012X}"
        reply = process.request(op="tap", reader="gate-east-in", technology="felica", id=card)
        assert reply.get("decision") == "denied", reply


def seqs(log: CentralLog, site: str) -> list[int]:
    rows = log.db.execute(
        "SELECT seq FROM events WHERE site = ? AND device = ? ORDER BY seq", [site, GATE]
    ).fetchall()
    return [int(seq) for (seq,) in rows]


def stored_all(console: Collector, site: str, last_seq: int) -> bool:
    """Wait until the log holds as many of the site's gate's events as it recorded."""
    return console.wait_for(lambda log: len(seqs(log, site)) >= last_seq, WAIT_S)


def linked(log: CentralLog, site: str) -> bool | None:
    return log.sites().get(site, {}).get("connected")


def test_a_wan_cut_at_one_site_loses_nothing_and_the_other_site_keeps_arriving(
    chain: Chain,
    pg_database: str,  # noqa: F811 (the fixture)
) -> None:
    wan = chain.wan
    console = collector(wan, pg_database)
    console.start()
    try:
        for site in (A, B):
            taps(chain.agents[site], 5)
            assert stored_all(console, site, chain.last_seq(site))
        assert console.wait_for(lambda log: linked(log, A) is True, WAIT_S)
        before = chain.last_seq(A)
        traffic = threading.Thread(target=taps, args=(chain.agents[A], 15))
        traffic.start()  # the cut falls among these taps
        try:
            assert console.wait_for(lambda log: len(seqs(log, A)) >= before + 3, WAIT_S)
            wan.sites[A].link.cut()
        finally:
            traffic.join(WAIT_S)
        assert not traffic.is_alive()
        try:
            assert console.wait_for(lambda log: linked(log, A) is False, WAIT_S), "no cut"
            during = chain.last_seq(A)
            taps(chain.agents[A], CUT_TAPS)
            taps(chain.agents[B], CUT_TAPS)
            assert stored_all(console, B, chain.last_seq(B)), "site B held back by A's cut"
            made = chain.last_seq(A)
            assert made - during >= CUT_TAPS
            assert max(seqs(console.log, A)) <= during, "site A's events crossed a cut link"
        finally:
            wan.sites[A].link.restore()
        taps(chain.agents[A], 5)
        last = {site: chain.last_seq(site) for site in (A, B)}
        for site, n in last.items():
            assert stored_all(console, site, n), f"{site}'s events after the restore"
        log = console.log
        for site, n in last.items():
            found = seqs(log, site)  # every one, once (a gate may have recorded more since)
            assert found == list(range(1, len(found) + 1)), site
            assert len(found) >= n, site
        twice = log.db.execute(
            "SELECT site, id FROM events GROUP BY site, id HAVING count(*) > 1"
        ).fetchall()
        assert twice == []
        assert log.gaps() == {}
        assert log.verify() == []
        assert console.wait_for(lambda log: linked(log, A) is True, WAIT_S)
    finally:
        console.close()


def test_a_revocation_at_the_centre_reaches_both_sites_gates_as_a_delta(chain: Chain) -> None:
    wan = chain.wan
    for site in (A, B):  # the first publish as an operator runs it: edge-provision at the centre
        directory = str(wan.sites[site].directory)
        result = provision(
            "publish",
            "--dir",
            directory,
            "--host",
            "127.0.0.1",
            "--port",
            str(wan.central.port),
            "--user",
            OPERATOR,
            "--password-file",
            str(wan.central_dir / "accounts" / f"{OPERATOR}.password"),
            "--ca-file",
            str(wan.ca),
            "--wait",
            str(WAIT_S),
        )
        assert result.returncode == 0, result.stderr
        result = provision("cards", "revoke", "S001", "--dir", directory)
        assert result.returncode == 0, result.stderr
    for site in (A, B):  # a delta on the base that publish made (in-process: a three-card
        # site's one-card delta is over the CLI's share of a snapshot, so it would go full)
        built, outcome = publish_from_centre(wan, site)
        assert ([(b.kind, b.cards) for b in built], outcome.late) == ([("delta", 1)], []), site
    for site in (A, B):
        denied = tap(chain.agents[site], 6)  # S001's card
        assert (denied["decision"], denied["reason"]) == ("denied", "revoked"), site
        assert tap(chain.agents[site], 7)["decision"] == "granted", site  # S002's card
