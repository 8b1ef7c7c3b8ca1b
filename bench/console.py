"""The console: ingest rate through the collector, and search time on a big central log.

* ingest: N events (default 50,000) from 20 devices, published as fast as QoS 1 allows by a
  few publisher clients (a separate process, a window of unacknowledged messages each) to a
  private mosquitto; events/s until the collector has committed them all to the log. In the
  same run, the same burst to a bare paho subscriber that only counts messages (no storage,
  no manual acknowledgement): the ratio collector/bare is the cost of storing. Goal: the
  collector >= 5,000 events/s.
* search: a log of --rows rows (default 10,000,000) built directly with executemany (not
  through the collector; indexes dropped during the load and rebuilt after), then 200
  searches through console.search.search with a mix of filters: door + day, a door's newest
  page and a deep page of it (`before=`), card prefix (a card in use, and one never seen),
  denied + reason, one hour. p50/p95/p99 in ms, overall and per kind. Goal: p95 < 200 ms.
  The hash chain is computed only with --hash; the build time and the file size are printed.

Figures are printed, never asserted.

    python bench/console.py [--events 50000] [--rows 10000000] [--rows 1000000 for a quick run]
                            [--hash] [--keep] [--db PATH to search an existing log again]
"""

from __future__ import annotations

import argparse
import faulthandler
import multiprocessing
import os
import platform
import shutil
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.log_sample import CARD_REFS, DOORS, iso, pct, queries, rows
from console.collector import Collector
from console.log import CentralLog
from console.mqtt import ConsoleClient
from console.people import Directory
from console.search import search
from edge.link import topics
from simulator.broker import Broker
from tests.console.test_claims import provision

# -- ingest -------------------------------------------------------------------------------


def event_payload(device: str, seq: int, t: float) -> bytes:
    return (
        f'{{"v":1,"id":"{device}:{seq}","seq":{seq},"device":"{device}","ts":"{iso(t)}",'
        f'"clock_synced":true,"kind":"access","type":"granted","door":"{device}",'
        f'"card_ref":"{CARD_REFS[seq % len(CARD_REFS)]}","reason":"granted"}}'
    ).encode()


def publisher_process(
    port: int,
    site: str,
    n: int,
    devices: int,
    clients: int,
    window: int,
    ready: Any,
    go: Any,
    results: Any,
) -> None:
    """Publish n events from `devices` devices over `clients` connections (a child process)."""
    names = [f"gate-{d:02d}" for d in range(devices)]
    per_device = n // devices
    plans: list[list[tuple[str, bytes]]] = [[] for _ in range(clients)]
    now = time.time()
    access = {name: topics.event(topics.DEFAULT_ROOT, site, name, "access") for name in names}
    for seq in range(1, per_device + 1):
        for d, name in enumerate(names):
            topic = access[name]
            plans[d % clients].append((topic, event_payload(name, seq, now + seq)))
    connections = []
    for k in range(clients):
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{site}-{k}", protocol=mqtt.MQTTv5
        )
        client.max_inflight_messages_set(window)
        client.max_queued_messages_set(0)
        client.connect("127.0.0.1", port)
        client.loop_start()
        connections.append(client)
    ready.set()
    go.wait()
    start = time.perf_counter()
    threads = [
        threading.Thread(target=publish_plan, args=(c, p, window))
        for c, p in zip(connections, plans, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results.put((sum(len(p) for p in plans), time.perf_counter() - start))
    for client in connections:
        client.disconnect()
        client.loop_stop()


def publish_plan(client: mqtt.Client, plan: list[tuple[str, bytes]], window: int) -> None:
    free = threading.Semaphore(window)  # at most `window` unacknowledged (and mids never wrap)
    done = threading.Event()
    acked = 0

    def on_publish(c: object, userdata: object, mid: int, reason: object, props: object) -> None:
        nonlocal acked
        acked += 1
        free.release()
        if acked == len(plan):
            done.set()

    client.on_publish = on_publish
    for topic, payload in plan:
        free.acquire()
        client.publish(topic, payload, qos=1)
    done.wait(600)


class BareCounter:
    """A plain paho subscriber that counts event messages and stores nothing."""

    def __init__(self, port: int, site: str, n: int) -> None:
        self.n = n
        self.count = 0
        self.done = threading.Event()
        subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-bare", protocol=mqtt.MQTTv5
        )
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *a: subscribed.set()
        self.client.on_connect = lambda c, *a: c.subscribe(
            topics.events_filter(topics.DEFAULT_ROOT, site), qos=1
        )
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        if not subscribed.wait(10):
            print("bare subscriber: no SUBACK in 10 s")

    def _on_message(self, client: object, userdata: object, message: object) -> None:
        self.count += 1
        if self.count >= self.n:
            self.done.set()

    def wait(self, timeout_s: float) -> bool:
        return self.done.wait(timeout_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def burst(port: int, site: str, args: argparse.Namespace, wait: Any) -> tuple[float, float]:
    """Publish the burst from a child process; return (consumer events/s, publish events/s)."""
    ctx = multiprocessing.get_context("spawn")  # not fork: this process runs paho threads
    ready, go, results = ctx.Event(), ctx.Event(), ctx.Queue()
    n = args.events // args.devices * args.devices
    proc = ctx.Process(
        target=publisher_process,
        args=(port, site, n, args.devices, args.publishers, args.window, ready, go, results),
    )
    proc.start()
    if not ready.wait(120):
        print("publishers did not connect in 120 s")
    start = time.perf_counter()
    go.set()
    complete = wait(600)
    elapsed = time.perf_counter() - start
    published, publish_s = results.get(timeout=600)
    proc.join(60)
    if not complete:
        print(f"  ({site}: not complete after 600 s)")
    return n / elapsed, published / publish_s


def ingest(broker: Broker, args: argparse.Namespace) -> None:
    n = args.events // args.devices * args.devices
    bare = BareCounter(broker.port, "bench-bare", n)
    try:
        bare_rate, bare_pub = burst(broker.port, "bench-bare", args, bare.wait)
    finally:
        bare.close()

    work = Path(tempfile.mkdtemp(prefix="bench-console-ingest-"))
    site = "bench-collector"
    probe = ConsoleClient("127.0.0.1", broker.port, client_id="bench-probe", persistent=False)
    probe.start()
    probe.publish(
        topics.status(topics.DEFAULT_ROOT, site, "probe"), b'{"state":"online"}', retain=True
    )
    probe.close()
    names = tuple(f"gate-{d:02d}" for d in range(args.devices))
    site_dir = provision(work / "site", gates=(*names, "probe"), site=site)
    collector = Collector(
        work / "central.db", site_dir=site_dir, host="127.0.0.1", port=broker.port, site=site
    )
    collector.start()
    try:
        # The retained status arrives once the collector's subscriptions are in place.
        collector.wait_for(lambda _: collector.received >= 1, 10)
        rate, pub = burst(
            broker.port,
            site,
            args,
            lambda t: collector.wait_for(lambda _: collector.stored >= n, t),
        )
        count, gaps = collector.log.count(), collector.log.gaps()
        rejected = f", {collector.rejected} rejected" if collector.rejected else ""
    finally:
        collector.close()
        shutil.rmtree(work, ignore_errors=True)
    print(
        f"ingest {n:,} events from {args.devices} devices ({args.publishers} publisher clients, "
        f"window {args.window}, QoS 1):"
    )
    print(
        f"  collector {rate:8.0f} events/s until all committed ({n / rate:5.1f} s); "
        f"log holds {count:,}, gaps {'none' if not gaps else len(gaps)}{rejected}"
    )
    print(
        f"  bare paho subscriber (counts only) {bare_rate:8.0f} events/s ({n / bare_rate:5.1f} s)"
    )
    print(
        f"  ratio collector/bare {rate / bare_rate:.2f}; publishers alone reached "
        f"{pub:.0f} / {bare_pub:.0f} events/s; goal >= 5,000 events/s: "
        f"{'met' if rate >= 5000 else 'NOT met'}"
    )


# -- search -------------------------------------------------------------------------------


def build(path: Path, count: int, with_hash: bool) -> None:
    CentralLog(path).close()  # the schema, through the real migrations
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-1000000")
    indexes = conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' "
        "AND sql IS NOT NULL"
    ).fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    insert = (
        "INSERT INTO events (site, id, device, seq, ts, kind, type, door, card_ref, reason, "
        "body, received_at, hash) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
    )
    began = time.perf_counter()
    seqs = dict.fromkeys(DOORS, 0)
    chunk: list[tuple[Any, ...]] = []
    for row in rows(count, 365, seqs, with_hash, seed=26):
        chunk.append(row)
        if len(chunk) == 200_000:
            conn.execute("BEGIN")
            conn.executemany(insert, chunk)
            conn.execute("COMMIT")
            chunk.clear()
    conn.execute("BEGIN")
    conn.executemany(insert, chunk)
    conn.executemany(
        "INSERT INTO devices (device, contiguous, max_seq) VALUES (?, ?, ?)",
        [(device, seq, seq) for device, seq in seqs.items()],
    )
    conn.execute("COMMIT")
    loaded = time.perf_counter()
    for _, sql in indexes:
        conn.execute(sql)
    indexed = time.perf_counter()
    conn.execute("PRAGMA journal_mode=WAL")
    conn.close()
    print(
        f"  built in {indexed - began:.1f} s: {count / (loaded - began):,.0f} rows/s inserted "
        f"({loaded - began:.1f} s), {len(indexes)} indexes rebuilt in {indexed - loaded:.1f} s"
    )


def search_bench(args: argparse.Namespace) -> None:
    work: Path | None = None
    if args.db:
        path = Path(args.db)
        print(f"search: reusing {path}")
    else:
        work = Path(tempfile.mkdtemp(prefix="bench-console-search-"))
        path = work / "central.db"
        print(
            f"search: building a log of {args.rows:,} rows over 365 days, {len(DOORS)} doors, "
            f"{len(CARD_REFS):,} cards (executemany, not through the collector); hash chain "
            + ("computed" if args.hash else "NOT computed (placeholder; pass --hash)")
        )
        build(path, args.rows, args.hash)
    size = path.stat().st_size
    log = CentralLog(path)
    people = Directory(None)
    try:
        rows_in_log = log.count()
        print(
            f"  log: {rows_in_log:,} rows, {size / 1e9:.2f} GB on disk ({size / rows_in_log:.0f} B/row)"
        )
        times: dict[str, list[float]] = {}
        hits: dict[str, list[int]] = {}
        for kind, query in queries(log, args.searches, seed=7):
            began = time.perf_counter()
            page = search(log, query, people)
            times.setdefault(kind, []).append((time.perf_counter() - began) * 1000)
            hits.setdefault(kind, []).append(len(page.entries))
        everything = [t for ts in times.values() for t in ts]
        print(f"  {len(everything)} searches, one page (50) each:  {pct(everything)}")
        for kind, samples in times.items():
            print(f"    {kind:26s} {pct(samples)}  mean hits {statistics.mean(hits[kind]):4.1f}")
        p95 = sorted(everything)[min(len(everything) - 1, int(0.95 * len(everything)))]
        print(f"  goal p95 < 200 ms: {'met' if p95 < 200 else 'NOT met'}")
    finally:
        log.close()
        if work is not None and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        elif work is not None:
            print(f"  kept {path} (search it again with --db {path})")


def main() -> None:
    faulthandler.dump_traceback_later(3600, exit=True)  # a hung run says where, then exits
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--devices", type=int, default=20)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--window", type=int, default=100)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--hash", action="store_true", help="compute the hash chain too")
    parser.add_argument("--keep", action="store_true", help="keep the built log")
    parser.add_argument("--db", help="search this existing log instead of building one")
    parser.add_argument("--no-ingest", action="store_true")
    parser.add_argument("--no-search", action="store_true")
    args = parser.parse_args()
    print(
        f"# machine {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, mosquitto on loopback"
    )
    if not args.no_ingest:
        broker = Broker(Path(tempfile.mkdtemp(prefix="bench-console-broker-")))
        broker.start()
        try:
            ingest(broker, args)
        finally:
            broker.stop()
            shutil.rmtree(broker.workdir, ignore_errors=True)
    if not args.no_search:
        search_bench(args)


if __name__ == "__main__":
    main()
