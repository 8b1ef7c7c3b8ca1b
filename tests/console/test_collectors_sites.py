"""One collector, many sites: the site directories it is given, each message judged against
its own site's devices and stored with its site's name, the sites' bridge links."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from console import refusals
from console.cli import cli
from console.cli_collect import _shown
from console.collector import Collector
from console.log import open_log
from console.log_pg import PgDatabase
from console.mqtt import ConsoleClient, Message
from console.sites import SitesError, site_dirs
from provisioning.registry import Registry as ProvisioningRegistry
from tests.broker import Broker
from tests.console.collector_fixtures import event
from tests.console.test_claims import provision
from tests.console.test_log import event as event_body
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)


def site_at(parent: Path, site: str, gates: tuple[str, ...] = ()) -> Path:
    """Make an edge-provision site directory: its registry naming the site, its devices."""
    directory = provision(parent / site, gates=(*gates, f"{site}-probe"), site=site)
    registry = ProvisioningRegistry(directory / "registry.db")
    registry.init_site(site, "Asia/Tokyo", {})
    registry.close()
    return directory


def event_topic(site: str, device: str, kind: str = "access") -> str:
    return f"edge/{site}/{device}/events/{kind}"


def subscribed_to(collector: Collector, publisher: ConsoleClient, sites: list[str]) -> None:
    """Wait until the collector has every site's retained probe status: it has subscribed."""
    for site in sites:
        publisher.publish(f"edge/{site}/{site}-probe/status", b'{"state":"online"}', retain=True)
    ok = collector.wait_for(lambda log: all(f"{s}-probe" in log.devices(site=s) for s in sites), 15)
    assert ok, "the collector never subscribed"


@pytest.fixture
def sites_dir(tmp_path: Path) -> Path:
    parent = tmp_path / "sites"
    site_at(parent, "site-a", gates=("gate-a1",))
    site_at(parent, "site-b", gates=("gate-b1",))
    (parent / "notes").mkdir()  # not a site directory: no registry
    return parent


# -- which sites --------------------------------------------------------------------------


def test_every_site_of_a_sites_directory_is_taken_unless_some_are_chosen(
    sites_dir: Path, tmp_path: Path
) -> None:
    assert site_dirs(sites_dir, []) == {
        "site-a": sites_dir / "site-a",
        "site-b": sites_dir / "site-b",
    }
    assert site_dirs(sites_dir, [], ["site-b"]) == {"site-b": sites_dir / "site-b"}
    other = site_at(tmp_path / "elsewhere", "site-c")
    assert list(site_dirs(sites_dir, [other], ["site-c", "site-a"])) == ["site-c", "site-a"]
    assert list(site_dirs(None, [other])) == ["site-c"]


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("unknown-site", "--site site-z: not among the site directories given (site-a, site-b)"),
        ("site-twice", "site site-a is in both"),
        ("no-site-row", "holds no site: run `edge-provision site init`"),
        ("no-registry", "is not a site directory: it has no registry.db"),
        ("empty-sites-dir", "holds no site directory"),
    ],
)
def test_site_directories_that_cannot_be_used_are_refused_with_the_fix(
    sites_dir: Path, tmp_path: Path, case: str, expected: str
) -> None:
    single: list[Path] = []
    chosen: list[str] = []
    parent: Path | None = sites_dir
    if case == "unknown-site":
        chosen = ["site-z"]
    elif case == "site-twice":
        single = [site_at(tmp_path / "copy", "site-a")]
    elif case == "no-site-row":
        blank = provision(tmp_path / "blank", gates=("gate-1",))
        ProvisioningRegistry(blank / "registry.db").close()  # made, but `site init` never ran
        single, parent = [blank], None
    elif case == "no-registry":
        single, parent = [sites_dir / "notes"], None
    else:
        (tmp_path / "empty").mkdir()
        parent = tmp_path / "empty"
    with pytest.raises(SitesError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        site_dirs(parent, single, chosen)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--group", "collectors"], "Remove --group; give each collector its own --user"),
        (["--site", "site-z"], "--site site-z: not among the site directories given"),
        (["--registry", "REG", "--site", "site-b"], "is the registry of site site-a"),
        (["--registry", "REG"], "--registry names one site: give it with exactly one --site"),
    ],
)
def test_collect_refuses_options_it_cannot_use_before_it_starts(
    sites_dir: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    args = [str(sites_dir / "site-a" / "registry.db") if a == "REG" else a for a in args]
    if "--registry" not in args:
        args += ["--sites-dir", str(sites_dir)]
    result = CliRunner().invoke(
        cli, ["collect", "--log", str(tmp_path / "log.db"), "--no-anchor", *args]
    )
    assert result.exit_code == 2, result.output
    assert expected in " ".join(result.output.split()), result.output
    assert not (tmp_path / "log.db").exists()  # refused before anything was opened


# -- judging and storing by site ----------------------------------------------------------


@pytest.fixture
def unconnected(sites_dir: Path, tmp_path: Path) -> Iterator[Collector]:
    """A collector of site-a and site-b, never connected: its judging path, called directly."""
    made = Collector(
        tmp_path / "log.db",
        sites=site_dirs(sites_dir, []),
        host="127.0.0.1",
        port=1,
    )
    yield made
    made.close()


def test_each_message_is_judged_against_its_own_sites_devices(unconnected: Collector) -> None:
    def message(topic: str, payload: bytes, mid: int) -> Message:
        return Message(topic, payload, False, mid, 1)

    unconnected._store(
        [
            message(event_topic("site-a", "gate-a1"), event("gate-a1", 1), 1),
            message(event_topic("site-b", "gate-b1"), event("gate-b1", 1), 2),
            # Provisioned at site-a only: under site-b it is nobody.
            message(event_topic("site-b", "gate-a1"), event("gate-a1", 2), 3),
            message(event_topic("site-c", "gate-a1"), event("gate-a1", 3), 4),  # not taken
        ],
        {},
    )
    log = unconnected.log
    rows = log.db.execute("SELECT site, id FROM events ORDER BY site").fetchall()
    assert [tuple(r) for r in rows] == [("site-a", "gate-a1:1"), ("site-b", "gate-b1:1")]
    assert unconnected.rejected == 2
    reasons = {r["reason"] for r in refusals.recent(log, "(unknown)")}
    assert reasons == {
        "device 'gate-a1' is not provisioned",
        "not under the topics of a site this collector takes",
    }
    assert set(unconnected.lag_s) == {"site-a", "site-b"}


def test_a_sites_bridge_state_and_stored_count_are_kept_and_nonsense_refused(
    unconnected: Collector,
) -> None:
    batch = [
        Message("edge/site-a/bridge/state", b"1", True, 1, 1),
        Message("edge/site-a/bridge/stored", b"37", False, 2, 1),
        Message("edge/site-b/bridge/state", b"0", True, 3, 1),
        Message("edge/site-b/bridge/stored", b"lots", False, 4, 1),
        Message("edge/site-b/bridge/other", b"1", False, 5, 1),
    ]
    unconnected._store(batch, {})
    sites = unconnected.log.sites()
    assert (sites["site-a"]["connected"], sites["site-a"]["stored"]) == (1, 37)
    assert (sites["site-b"]["connected"], sites["site-b"]["stored"]) == (0, None)
    assert unconnected.rejected == 2
    assert {r.device for r in refusals.totals(unconnected.log)} == {"bridge"}


# -- through mosquitto --------------------------------------------------------------------


def test_one_collector_takes_two_sites_through_the_broker_and_leaves_a_third(
    tmp_path: Path, broker: Broker, sites_dir: Path
) -> None:
    site_at(sites_dir, "site-c", gates=("gate-c1",))
    publisher = ConsoleClient("127.0.0.1", broker.port, client_id="publisher", persistent=False)
    publisher.start()
    collector = Collector(
        tmp_path / "log.db",
        sites=site_dirs(sites_dir, [], ["site-a", "site-b"]),
        host="127.0.0.1",
        port=broker.port,
        client_id="collector-a",
    )
    collector.start()
    try:
        subscribed_to(collector, publisher, ["site-a", "site-b"])
        publisher.publish("edge/site-a/bridge/state", b"1", retain=True)
        for seq in range(1, 11):
            publisher.publish(event_topic("site-a", "gate-a1"), event("gate-a1", seq))
            publisher.publish(event_topic("site-b", "gate-b1"), event("gate-b1", seq))
            publisher.publish(event_topic("site-c", "gate-c1"), event("gate-c1", seq))
        done: Callable[..., bool] = lambda log: log.count() >= 20 and bool(log.sites())  # noqa: E731
        assert collector.wait_for(done, 30), collector
        log = collector.log
        counts = log.db.execute("SELECT site, count(*) FROM events GROUP BY site").fetchall()
        assert sorted(tuple(r) for r in counts) == [("site-a", 10), ("site-b", 10)]
        assert collector.rejected == 0  # site-c's never came: not subscribed
        assert log.sites()["site-a"]["connected"] == 1
        assert log.gaps() == {}
        assert log.verify() == []
    finally:
        collector.close()
        publisher.close()


def test_on_postgresql_two_sites_may_have_the_same_device_id(
    tmp_path: Path,
    broker: Broker,
    pg_database: str,  # noqa: F811 (the fixture)
) -> None:
    parent = tmp_path / "sites"
    for site in ("site-a", "site-b"):
        site_at(parent, site, gates=("gate-1",))
    publisher = ConsoleClient("127.0.0.1", broker.port, client_id="publisher", persistent=False)
    publisher.start()
    collector = Collector(
        pg_database,
        sites=site_dirs(parent, []),
        host="127.0.0.1",
        port=broker.port,
        client_id="collector-a",
    )
    collector.start()
    try:
        subscribed_to(collector, publisher, ["site-a", "site-b"])
        for seq in range(1, 6):
            for site in ("site-a", "site-b"):
                publisher.publish(event_topic(site, "gate-1"), event("gate-1", seq))
        assert collector.wait_for(lambda log: log.count() >= 10, 30), collector
        log = collector.log
        for site in ("site-a", "site-b"):
            assert log.count(site=site) == 5
            assert log.devices(site=site)["gate-1"]["contiguous"] == 5
        assert log.verify() == []
    finally:
        collector.close()
        publisher.close()
    reopened = open_log(pg_database)
    try:
        assert reopened.count() == 10
    finally:
        reopened.close()


@pytest.mark.parametrize(
    "target",
    [
        "postgresql://u@h/db?password=s3cret",
        "postgresql://u:s3cret@h/db",
        "postgres://u@h:5432/db?sslmode=require&password=s3cret",
    ],
)
def test_collect_never_shows_the_logs_password(target: str) -> None:
    shown = _shown(target)
    assert "s3cret" not in shown
    assert shown.split("://")[1].startswith("u")  # who and where stay readable


@pytest.mark.services
def test_a_collector_starts_without_reading_the_events_in_full(
    sites_dir: Path,
    pg_database: str,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = open_log(pg_database)
    log.append([event_body("gate-1", 1)], "2026-11-26T10:00:00.000Z", site="site-a")
    log.close()
    statements: list[tuple[str, Any]] = []
    execute = PgDatabase.execute

    def traced(db: PgDatabase, sql: str, parameters: Any = None, /) -> Any:
        statements.append((sql, parameters))
        return execute(db, sql, parameters)

    monkeypatch.setattr(PgDatabase, "execute", traced)
    made = Collector(pg_database, sites=site_dirs(sites_dir, []), host="127.0.0.1", port=1)
    monkeypatch.undo()
    try:
        assert made._lost_at == datetime(2026, 11, 26, 10, tzinfo=UTC)  # heard from the log
        made.log.db.execute("SET enable_seqscan = off")  # a scan left is one with no index
        plans = [
            " ".join(str(row[0]) for row in made.log.db.execute(f"EXPLAIN {sql}", params))
            for sql, params in statements
            if sql.lstrip().upper().startswith("SELECT") and "events" in sql
        ]
    finally:
        made.close()
    assert plans  # the start-up read the log
    assert not [plan for plan in plans if "Seq Scan on events" in plan], plans
