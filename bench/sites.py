"""Many sites into one central log: a morning rush and a WAN cut, through bridged brokers.

Topology, on loopback (bench/sites_topology.py): --sites site mosquittos, each running what
`edge-provision broker config` and `bridge site` wrote (MQTT 5 bridge over TLS, its own
bridge account) and reaching the central mosquitto (`bridge ca` + `bridge central`: TLS
listener, the generated accounts and ACL) through its own cuttable WAN link
(simulator.netcut.NetCut, in a child process); --collectors console.collector.Collectors,
each taking every site in its own persistent session (its own console account), writing
to one PostgreSQL log (simulator.postgres). One paho client per site publishes for all the
site's devices (a bench-only site account; bench/sites_traffic.py), QoS 1.

1. Morning rush: each of --devices devices sends --per-device crossings (default 30: one a
   minute through a 30-minute peak), the peak compressed into --rush-s seconds (the rate is
   printed). Printed: events/s stored (all of them, from the first publish to the last
   commit) and the end-to-end lag, publish at the site -> committed in PostgreSQL (the
   event's own `ts` against the time Collector.on_stored reported its commit), p50/p95/p99.
   Baseline in the same run: the same rush into the single-site path (one mosquitto, one
   collector, SQLite); the ratios bridged/baseline are printed.
2. WAN cut: traffic continues at --cut-rate events/s over every site; after --warm-s the WAN
   links of --cut-sites sites are cut for --cut-s seconds, then restored; traffic goes on
   --tail-s more. Printed: catch-up time (restore -> the last event those sites published
   before the restore committed), the lag of the other sites meanwhile, and whether every
   event is stored once: stored vs acknowledged by the site brokers, ids missing, duplicate
   rows, log.gaps(), refusals, collector errors, mosquitto's "dropped" lines.

Figures are printed, never asserted. It runs past 500 lines: the three phases (two baselines,
the bridged rush, the cut) share one measuring loop and one report, and read best in one
place; the topology and the traffic are already modules of their own.

    python bench/sites.py [--sites 50 --devices 2000 --collectors 2 --cut-s 600]
    python bench/sites.py --sites 3 --devices 30 --cut-s 5 --rush-s 10   # a quick check
"""

from __future__ import annotations

import argparse
import faulthandler
import logging
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.sites_topology import COLLECTORS as COLLECTOR_NAMES
from bench.sites_topology import (
    PUBLISHER,
    WATCHER,
    Topology,
    build,
    device_names,
    site_slug,
    write_devices,
)
from bench.sites_traffic import BridgeWatch, Publisher, SitePlan, SiteResult
from console.collector import Collector
from console.log import CentralLog, open_log
from simulator.broker import Broker
from simulator.postgres import PostgresCluster

BASELINE_SITE = "hall"


class Commits:
    """When each event id was first reported committed (Collector.on_stored), all collectors."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()

    def listener(self, ids: list[str]) -> None:
        now = time.time()
        with self.lock:
            for event_id in ids:
                self.at.setdefault(event_id, now)

    def wait(self, ids: Iterable[str], timeout_s: float) -> bool:
        """Wait until every one of `ids` is committed (looked at twice a second, not at each
        batch: the collectors' threads share this process's interpreter lock)."""
        pending = list(ids)
        deadline = time.monotonic() + timeout_s
        while True:
            with self.lock:
                pending = [i for i in pending if i not in self.at]
            left = deadline - time.monotonic()
            if not pending or left <= 0:
                return not pending
            time.sleep(min(0.5, left))  # polling a dict other threads fill


class Problems(logging.Handler):
    """Count warnings and errors the collectors log, keeping the first few."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0
        self.first: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        if len(self.first) < 5:
            self.first.append(f"{record.levelname} {record.name}: {record.getMessage()[:300]}")


def pct(samples: list[float]) -> str:
    if not samples:
        return "(no samples)"
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return (
        f"p50 {at(0.50):7.1f} ms  p95 {at(0.95):7.1f} ms  p99 {at(0.99):7.1f} ms  "
        f"max {ordered[-1] * 1000:7.1f} ms  (n={len(ordered):,})"
    )


def quantile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def stamps(log: CentralLog) -> dict[str, tuple[str, float]]:
    """Return {id: (site, publish time)} of every stored event, from its own `ts`."""
    found: dict[str, tuple[str, float]] = {}
    for site, event_id, ts in log.db.execute("SELECT site, id, ts FROM events").fetchall():
        found[event_id] = (site, datetime.fromisoformat(ts).timestamp())
    return found


def publish(plans: list[SitePlan], duration_s: float, window: int) -> tuple[Publisher, float]:
    publisher = Publisher(plans, duration_s, window)
    return publisher, publisher.go()


def report_publishers(results: list[SiteResult]) -> int:
    published = sum(r.published for r in results)
    failed = sum(r.failed for r in results)
    late = max((r.late_s for r in results), default=0.0)
    errors = [f"{r.site}: {e}" for r in results for e in r.errors]
    print(
        f"  publishers: {published:,} acknowledged, {failed} refused by the site brokers, "
        f"at most {late:.2f} s behind schedule" + (f"; ERRORS {errors[:5]}" if errors else "")
    )
    return published


def rush(
    label: str,
    plans: list[SitePlan],
    args: argparse.Namespace,
    commits: Commits,
    reader: CentralLog,
) -> tuple[float, list[float]]:
    """Publish the rush, wait until every event is committed; return (stored/s, lags)."""
    total = sum(p.total for p in plans)
    ids = [i for p in plans for i in p.ids()]
    publisher, began = publish(plans, args.rush_s, args.window)
    try:
        results = publisher.wait(args.rush_s + 600)
    finally:
        publisher.kill()
    complete = commits.wait(ids, args.drain_s)
    if not complete:
        print(f"  ({label}: NOT every event committed after {args.drain_s} s more)")
    last = max((commits.at[i] for i in ids if i in commits.at), default=time.time())
    rate = sum(1 for i in ids if i in commits.at) / (last - began)
    found = stamps(reader)
    lags = [commits.at[i] - found[i][1] for i in ids if i in commits.at and i in found]
    print(
        f"{label}: {total:,} crossings offered at {total / args.rush_s:,.0f}/s "
        f"over {args.rush_s:.0f} s"
    )
    report_publishers(results)
    print(
        f"  stored {rate:8.0f} events/s (first publish -> last commit {last - began:.1f} s); "
        f"log holds {reader.count():,}"
    )
    print(f"  lag publish -> committed: {pct(lags)}")
    return rate, lags


def baseline(
    work: Path, target: str | Path, args: argparse.Namespace, devices: list[str], label: str
) -> tuple[float, list[float]]:
    """The same rush into the single-site path: one mosquitto, one collector, `target` log."""
    name = "sqlite" if isinstance(target, Path) else "pg"
    site_dir = work / f"baseline-{name}-site"
    write_devices(site_dir, BASELINE_SITE, devices)
    broker = Broker(work / f"baseline-{name}-broker")
    broker.start()
    commits = Commits()
    collector = Collector(
        target,
        host="127.0.0.1",
        port=broker.port,
        sites={BASELINE_SITE: site_dir},
        client_id="baseline-collector",
    )
    collector.on_stored(commits.listener)
    collector.start()
    reader = open_log(target)
    try:
        plan = SitePlan(BASELINE_SITE, broker.port, None, None, tuple(devices), 1, args.per_device)
        return rush(label, [plan], args, commits, reader)
    finally:
        reader.close()
        collector.close()
        broker.stop()


def ratios(name: str, rate: float, lags: list[float], base: tuple[float, list[float]]) -> None:
    base_rate, base_lags = base
    print(
        f"  ratio bridged/{name}: stored rate {rate / base_rate:.2f}, lag p50 "
        f"{quantile(lags, 0.5) / quantile(base_lags, 0.5):.2f}, p95 "
        f"{quantile(lags, 0.95) / quantile(base_lags, 0.95):.2f}, p99 "
        f"{quantile(lags, 0.99) / quantile(base_lags, 0.99):.2f}"
    )


def start_collectors(topology: Topology, url: str, count: int, commits: Commits) -> list[Collector]:
    sites = {site.slug: site.directory for site in topology.sites}
    collectors: list[Collector] = []
    try:
        for name in COLLECTOR_NAMES[:count]:
            collector = Collector(
                url,
                host="127.0.0.1",
                port=topology.central.port,
                sites=sites,
                username=name,
                password=topology.collector_password(name),
                client_id=name,
                ca_file=str(topology.ca),
            )
            collector.on_stored(commits.listener)
            collector.start()
            collectors.append(collector)
    except BaseException:
        for collector in collectors:
            collector.close()
        raise
    return collectors


def plans_for(topology: Topology, first_seq: int, per_device: int) -> list[SitePlan]:
    return [
        SitePlan(
            site.slug,
            site.broker.port,
            PUBLISHER,
            site.password,
            tuple(site.devices),
            first_seq,
            per_device,
        )
        for site in topology.sites
    ]


def wan_cut(
    topology: Topology,
    watch: BridgeWatch,
    args: argparse.Namespace,
    commits: Commits,
    reader: CentralLog,
) -> tuple[list[SitePlan], list[SiteResult]]:
    """Traffic at --cut-rate; cut some sites' WAN for --cut-s; restore; measure catch-up."""
    cut = max(1, min(args.cut_sites, len(topology.sites) - 1))
    cut_sites = [site.slug for site in topology.sites[:cut]]
    duration = args.warm_s + args.cut_s + args.tail_s
    per_device = max(1, round(args.cut_rate * duration / args.devices))
    plans = plans_for(topology, args.per_device + 1, per_device)
    total = sum(p.total for p in plans)
    print(
        f"WAN cut: {total:,} events at {total / duration:,.0f}/s over {duration:.0f} s; "
        f"{cut} of {len(topology.sites)} sites cut for {args.cut_s:.0f} s after {args.warm_s:.0f} s "
        f"(the rush uncompressed: {args.per_device * args.devices / 1800:,.0f}/s)"
    )
    publisher, began = publish(plans, duration, args.window)
    try:
        time.sleep(max(0.0, began + args.warm_s - time.time()))  # the scenario's timeline
        cut_at = time.time()
        topology.links.cut(range(cut))
        down = watch.wait(cut_sites, "0", 60)
        said_0 = time.time() - cut_at
        time.sleep(max(0.0, cut_at + args.cut_s - time.time()))
        restored_at = time.time()
        topology.links.restore(range(cut))
        up = watch.wait(cut_sites, "1", 120)
        said_1 = time.time() - restored_at
        results = publisher.wait(duration + 600)
    finally:
        publisher.kill()
    print(
        "  the cut sites' bridges said 0 "
        + (f"{said_0:.1f} s after the cut" if down else "NOT within 60 s")
        + "; said 1 "
        + (f"{said_1:.1f} s after the restore" if up else "NOT within 120 s")
    )
    report_publishers(results)
    ids = [i for p in plans for i in p.ids()]
    complete = commits.wait(ids, args.drain_s + args.cut_s)
    found = stamps(reader)
    held = [
        i
        for p in plans[:cut]
        for i in p.ids()
        if i in found and cut_at <= found[i][1] < restored_at
    ]
    before_restore = [
        i for p in plans[:cut] for i in p.ids() if i in found and found[i][1] < restored_at
    ]
    caught = max((commits.at[i] for i in before_restore if i in commits.at), default=restored_at)
    print(
        f"  catch-up: {len(held):,} events held back at the cut sites; the last of them "
        f"committed {caught - restored_at:.2f} s after the restore"
        + ("" if complete else f" (NOT every event committed {args.drain_s + args.cut_s:.0f} s on)")
    )
    others = [
        commits.at[i] - found[i][1]
        for p in plans[cut:]
        for i in p.ids()
        if i in commits.at and i in found and cut_at <= found[i][1] < restored_at
    ]
    print(f"  the other sites' lag during the cut: {pct(others)}")
    after = [
        commits.at[i] - found[i][1]
        for p in plans[:cut]
        for i in p.ids()
        if i in commits.at and i in found and found[i][1] >= restored_at + 30
    ]
    if after:
        print(f"  the cut sites' lag from 30 s after the restore: {pct(after)}")
    return plans, results


def stored_once(
    reader: CentralLog, plans: list[SitePlan], published: int, collectors: list[Collector]
) -> None:
    """Print whether every published event is stored exactly once."""
    expected = {i: p.site for p in plans for i in p.ids()}
    rows = reader.db.execute("SELECT site, id FROM events").fetchall()
    stored: dict[tuple[str, str], int] = {}
    for site, event_id in rows:
        stored[(site, event_id)] = stored.get((site, event_id), 0) + 1
    duplicates = sum(n - 1 for n in stored.values() if n > 1)
    missing = [i for i, s in expected.items() if (s, i) not in stored]
    extra = [k for k in stored if k[1] not in expected]
    gaps = {device: seqs for device, seqs in reader.gaps().items() if seqs}
    (refused,) = reader.db.execute("SELECT count(*) FROM refusals").fetchone()
    (deduplicated,) = reader.db.execute(
        "SELECT coalesce(sum(duplicates), 0) FROM devices"
    ).fetchone()
    print(
        f"every event once: {len(expected):,} published ({published:,} acknowledged), "
        f"{len(rows):,} rows stored, {len(missing)} missing, {duplicates} duplicate rows, "
        f"{len(extra)} unexpected, gaps {'none' if not gaps else gaps_text(gaps)}, "
        f"{refused} refusals; {deduplicated:,} arrivals de-duplicated by the log"
    )
    if missing:
        print(f"  MISSING (first 10): {missing[:10]}")
    for collector in collectors:
        print(
            f"  {collector.client.client_id}: received {collector.received:,}, stored "
            f"{collector.stored:,}, rejected {collector.rejected}, over budget {collector.over_budget}"
        )


def gaps_text(gaps: dict[str, list[int]]) -> str:
    first = list(gaps.items())[:5]
    return f"{len(gaps)} devices, e.g. {first}"


def broker_log(work: Path, cut: set[str]) -> tuple[list[str], dict[str, int], list[str]]:
    """Return mosquitto's lines about dropped messages, its error lines counted by where
    (a cut link's TLS and bridge errors are expected at the cut sites and the centre), and
    the first few error lines anywhere else."""
    dropped: list[str] = []
    errors = {"cut sites": 0, "centre": 0, "elsewhere": 0}
    elsewhere: list[str] = []
    for log_file in sorted(work.glob("**/mosquitto.log")):
        broker = log_file.parent.name
        where = "cut sites" if broker in cut else "centre" if broker == "central" else "elsewhere"
        for line in log_file.read_text(errors="replace").splitlines():
            if "dropped" in line.lower():
                dropped.append(f"{broker}: {line[:200]}")
            elif "error" in line.lower():
                errors[where] += 1
                if where == "elsewhere" and len(elsewhere) < 3:
                    elsewhere.append(f"{broker}: {line[:200]}")
    return dropped, errors, elsewhere


def run(work: Path, args: argparse.Namespace, problems: Problems) -> None:
    devices = [d for i in range(args.sites) for d in device_names(i, args.sites, args.devices)]
    sqlite = baseline(
        work, work / "baseline.db", args, devices,
        "baseline: one site, one mosquitto, one collector, SQLite",
    )  # fmt: skip
    # Its own temporary directory: the server runs as user postgres, and `work` is root's.
    pg = PostgresCluster(Path(tempfile.mkdtemp(prefix="bench-sites-pg-")))
    pg.start()  # fsync=off, as every test cluster here
    one_site = None
    if args.pg_baseline:
        with psycopg.connect(pg.url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE hall")
        one_site = baseline(
            work, pg.url.rsplit("/", 1)[0] + "/hall", args, devices,
            "baseline: one site, one mosquitto, one collector, PostgreSQL",
        )  # fmt: skip
    topology: Topology | None = None
    collectors: list[Collector] = []
    watch: BridgeWatch | None = None
    reader: CentralLog | None = None
    try:
        topology = build(work / "wan", args.sites, args.devices, args.collectors)
        slugs = [site.slug for site in topology.sites]
        watch = BridgeWatch(
            topology.central.port, topology.ca, WATCHER, topology.collector_password(WATCHER),
            slugs,
        )  # fmt: skip
        if not watch.wait(slugs, "1", 120):
            missing = [s for s in slugs if watch.state(s) != "1"]
            print(f"  bridges NOT all up after 120 s: {missing[:10]}")
        commits = Commits()
        collectors = start_collectors(topology, pg.url, args.collectors, commits)
        reader = open_log(pg.url)
        label = (
            f"bridged: {args.sites} sites -> central mosquitto (TLS) -> {args.collectors} "
            "collectors -> PostgreSQL"
        )
        rate, lags = rush(label, plans_for(topology, 1, args.per_device), args, commits, reader)
        ratios("SQLite baseline", rate, lags, sqlite)
        if one_site is not None:
            ratios("one-site PostgreSQL", rate, lags, one_site)
        cut_plans, results = wan_cut(topology, watch, args, commits, reader)
        rush_plans = plans_for(topology, 1, args.per_device)
        published = args.per_device * args.devices + sum(r.published for r in results)
        stored_once(reader, rush_plans + cut_plans, published, collectors)
        if args.verify:
            began = time.perf_counter()
            broken = reader.verify()
            print(
                f"  hash chains: {'intact' if not broken else broken[:3]} "
                f"(verified in {time.perf_counter() - began:.1f} s)"
            )
    finally:
        for collector in collectors:
            collector.close()
        if reader is not None:
            reader.close()
        if watch is not None:
            watch.close()
        if topology is not None:
            topology.close()
        pg.remove()
    cut = {site_slug(i) for i in range(max(1, min(args.cut_sites, args.sites - 1)))}
    dropped, errors, elsewhere = broker_log(work, cut)
    print(
        f"mosquitto logs: {len(dropped)} lines about dropped messages"
        + (f" ({dropped[:3]})" if dropped else "")
        + "; error lines: "
        + ", ".join(f"{where} {n}" for where, n in errors.items())
        + (f" ({elsewhere})" if elsewhere else "")
        + " (TLS and bridge errors while a link is cut are expected)"
    )
    print(
        f"collector warnings/errors logged: {problems.count}"
        + (f", first: {problems.first}" if problems.first else "")
    )


def main() -> None:
    faulthandler.dump_traceback_later(3 * 3600, exit=True)  # a hung run says where, then exits
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--collectors", type=int, default=2, choices=range(1, 5))
    parser.add_argument("--per-device", type=int, default=30, help="crossings in the peak")
    parser.add_argument("--rush-s", type=float, default=60.0, help="the 30-min peak, compressed")
    parser.add_argument("--cut-sites", type=int, default=10)
    parser.add_argument("--cut-s", type=float, default=600.0)
    parser.add_argument(
        "--cut-rate", type=float, default=100.0, help="events/s during the cut (all sites)"
    )
    parser.add_argument("--warm-s", type=float, default=10.0)
    parser.add_argument("--tail-s", type=float, default=60.0)
    parser.add_argument("--window", type=int, default=50, help="unacknowledged QoS 1 per site")
    parser.add_argument("--drain-s", type=float, default=900.0, help="wait for commits this long")
    parser.add_argument(
        "--no-pg-baseline",
        dest="pg_baseline",
        action="store_false",
        help="skip the one-site PostgreSQL baseline (one mosquitto, one collector)",
    )
    parser.add_argument("--verify", action="store_true", help="walk the hash chains at the end")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    if args.devices < args.sites:
        parser.error("--devices must be at least --sites (each site has a device)")
    print(
        f"# machine {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}; {args.sites} sites, {args.devices} devices, "
        f"{args.collectors} collectors, all on loopback"
    )
    problems = Problems()
    logging.getLogger("console").addHandler(problems)
    work = Path(tempfile.mkdtemp(prefix="bench-sites-"))
    try:
        run(work, args, problems)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
