"""The central log on PostgreSQL against SQLite: build time, size and search time, same rows.

The same N rows (default 20,000,000: a year, --sites sites of --devices gates each, one door
per gate, --cards cards, denied reasons; bench/log_sample.py) go in one pass into (a) an
SQLite log, with executemany, its events indexes dropped during the load and rebuilt after
(as bench/console.py builds it), and (b) a PostgreSQL log on a private cluster this bench
starts (simulator.postgres, in a temporary directory), with COPY into the schema and the
month partitions the log itself makes (console.log_pg), its events indexes and event_ids'
key dropped during the load and rebuilt after, then VACUUM (ANALYZE). Both logs number the
rows 1..N in the same order; the hash is a placeholder (the chains are not what is measured).

Then the same searches (bench/log_sample.queries, the sites' kinds included) run through
console.search.search on both, interleaved: p50/p95/p99 overall and per kind for each, the
ratio PostgreSQL/SQLite, and a loud MISMATCH for any query whose page differs. A kind slow
on PostgreSQL (p95 >= 200 ms, or a median over 20 ms and twice SQLite's) gets the EXPLAIN
ANALYZE of its slowest query. The cluster and the files are removed at the end (--keep keeps
them). Figures are printed, never asserted.

    python bench/central_log.py [--rows 20000000] [--rows 200000 for a quick run] [--sites 50]
                                [--devices 40] [--cards 20000] [--searches 200] [--keep]
"""

from __future__ import annotations

import argparse
import faulthandler
import itertools
import os
import platform
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.log_sample import at, card_refs, pct, queries, rows
from console.log import GENESIS, CentralLog, open_log
from console.people import Directory
from console.search import Page, Query, _where, search
from console.site_view import home_site
from simulator.postgres import PostgresCluster

CHUNK = 100_000
PLAN_LINES = 30  # of a slow query's EXPLAIN
EVENT_COLUMNS = (
    "site, id, device, seq, ts, kind, type, door, card_ref, reason, body, received_at, hash"
)
# A server for a big log on a small machine; autovacuum off: VACUUM (ANALYZE) runs after the
# load, and nothing in the background competes with the searches for the two cores.
SETTINGS = {
    "shared_buffers": "1GB",
    "effective_cache_size": "8GB",
    "maintenance_work_mem": "1GB",
    "work_mem": "16MB",
    "max_wal_size": "4GB",  # more filled the disk (WAL of the index builds) at 20M rows
    "checkpoint_timeout": "30min",
    "random_page_cost": "1.1",
    "autovacuum": "off",
}


class SqliteBuild:
    """An SQLite log being loaded: the log's schema, its events indexes dropped."""

    def __init__(self, path: Path) -> None:
        CentralLog(path).close()  # the schema, through the real migrations
        self.path = path
        self.conn = sqlite3.connect(path, isolation_level=None)
        for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-1000000"):
            self.conn.execute(f"PRAGMA {pragma}")
        self.indexes = self.conn.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events' "
            "AND sql IS NOT NULL"
        ).fetchall()
        for name, _ in self.indexes:
            self.conn.execute(f"DROP INDEX {name}")
        self.load_s = 0.0

    def write(self, chunk: list[tuple[Any, ...]]) -> None:
        began = time.perf_counter()
        self.conn.execute("BEGIN")
        self.conn.executemany(
            f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({','.join('?' * 13)})", chunk
        )
        self.conn.execute("COMMIT")
        self.load_s += time.perf_counter() - began

    def finish(self, devices: list[tuple[str, str, int]]) -> None:
        began = time.perf_counter()
        self.conn.execute("BEGIN")
        self.conn.executemany(
            "INSERT INTO devices (site, device, contiguous, max_seq) VALUES (?, ?, ?, ?)",
            [(site, device, seq, seq) for site, device, seq in devices],
        )
        self.conn.execute("COMMIT")
        self.load_s += time.perf_counter() - began
        began = time.perf_counter()
        for name, sql in self.indexes:
            self.conn.execute(sql)
            print(f"    SQLite index {name} made ({time.perf_counter() - began:.0f} s)")
        self.index_s = time.perf_counter() - began
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.close()
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*"))
        print(
            f"  SQLite: loaded in {self.load_s:.1f} s, {len(self.indexes)} indexes rebuilt in "
            f"{self.index_s:.1f} s: {self.load_s + self.index_s:.1f} s; {size / 1e9:.2f} GB"
        )


class PostgresBuild:
    """A PostgreSQL log being loaded: the log's schema and partitions, its indexes dropped."""

    def __init__(self, url: str, months: Sequence[str]) -> None:
        log = open_log(url)  # the schema, through the real migrations
        # The partitions the log itself makes before storing a month's first event.
        log._store.prepare([{"ts": month} for month in months])
        log.close()
        self.conn = psycopg.connect(url, autocommit=True)
        self.indexes = self.conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'events'"
        ).fetchall()
        for name, _ in self.indexes:
            self.conn.execute(f"DROP INDEX {name}".encode())
        self.conn.execute("ALTER TABLE event_ids DROP CONSTRAINT event_ids_pkey")
        self.partitions = self.conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
        ).fetchone()[0]  # type: ignore[index]
        self.rows = 0
        self.last: dict[str, int] = {}  # each site's newest row: the next one's `prev`
        self.load_s = 0.0

    def write(self, chunk: list[tuple[Any, ...]]) -> None:
        began = time.perf_counter()
        cursor = self.conn.cursor()
        with cursor.copy(f"COPY events (row, prev, {EVENT_COLUMNS}) FROM STDIN".encode()) as copy:
            for values in chunk:
                self.rows += 1
                site = values[0]
                copy.write_row((self.rows, self.last.get(site, 0), *values))
                self.last[site] = self.rows
        with cursor.copy(b"COPY event_ids (site, id) FROM STDIN") as copy:
            for values in chunk:
                copy.write_row(values[:2])
        self.load_s += time.perf_counter() - began

    def finish(self, devices: list[tuple[str, str, int]]) -> None:
        began = time.perf_counter()
        with self.conn.cursor().copy(
            b"COPY devices (site, device, contiguous, max_seq) FROM STDIN"
        ) as copy:
            for site, device, seq in devices:
                copy.write_row((site, device, seq, seq))
        self.conn.cursor().executemany(
            "INSERT INTO chain_heads (chain, row, hash) VALUES (%s, %s, %s)",
            [(f"events/{site}", row, GENESIS) for site, row in self.last.items()],
        )
        self.conn.execute("SELECT setval('events_row', %s)", [max(self.rows, 1)])
        self.load_s += time.perf_counter() - began
        began = time.perf_counter()
        for _, sql in self.indexes:
            # pg_indexes gives a partitioned index as made ON ONLY the parent (an empty
            # shell); made on the table, it is built on every partition.
            self.conn.execute(sql.replace(" ON ONLY ", " ON ", 1).encode())
            print(
                f"    PostgreSQL index {sql.split()[2]} made ({time.perf_counter() - began:.0f} s)"
            )
        self.conn.execute("ALTER TABLE event_ids ADD PRIMARY KEY (site, id)")
        self.index_s = time.perf_counter() - began
        began = time.perf_counter()
        self.conn.execute("VACUUM (ANALYZE)")
        self.vacuum_s = time.perf_counter() - began
        sizes = self.conn.execute(
            "SELECT pg_database_size(current_database()), (SELECT sum(pg_total_relation_size("
            "inhrelid)) FROM pg_inherits WHERE inhparent = 'events'::regclass), "
            "pg_total_relation_size('event_ids')"
        ).fetchone()
        assert sizes is not None
        self.conn.close()
        total = self.load_s + self.index_s + self.vacuum_s
        print(
            f"  PostgreSQL: COPY in {self.load_s:.1f} s, {len(self.indexes)} indexes and "
            f"event_ids' key rebuilt in {self.index_s:.1f} s, VACUUM (ANALYZE) "
            f"{self.vacuum_s:.1f} s: {total:.1f} s; database {sizes[0] / 1e9:.2f} GB "
            f"(events in {self.partitions} partitions {int(sizes[1]) / 1e9:.2f} GB with "
            f"indexes, event_ids {sizes[2] / 1e9:.2f} GB)"
        )


def build(args: argparse.Namespace, sqlite_path: Path, url: str) -> tuple[list[str], ...]:
    """Load both logs with the same rows; return the sites, doors and cards."""
    sites = [f"site-{s:02d}" for s in range(1, args.sites + 1)]
    places = [(site, f"{site}-gate-{d:02d}") for site in sites for d in range(1, args.devices + 1)]
    doors = [door for _, door in places]
    cards = card_refs(args.cards)
    print(
        f"building {args.rows:,} rows over 365 days: {len(sites)} sites x {args.devices} "
        f"gates = {len(doors):,} doors, {len(cards):,} cards",
        flush=True,
    )
    lite = SqliteBuild(sqlite_path)
    pg = PostgresBuild(url, [f"2026-{m:02d}" for m in range(1, 13)])
    seqs = dict.fromkeys(doors, 0)
    generated = rows(args.rows, 365, seqs, False, seed=26, places=places, cards=cards)
    began = time.perf_counter()
    generate_s, done, shown = 0.0, 0, 0
    while True:
        tick = time.perf_counter()
        chunk = list(itertools.islice(generated, CHUNK))
        generate_s += time.perf_counter() - tick
        if not chunk:
            break
        lite.write(chunk)
        pg.write(chunk)
        done += len(chunk)
        if done - shown >= max(CHUNK, args.rows // 20) or done == args.rows:
            shown = done
            elapsed = time.perf_counter() - began
            print(
                f"  {done:>12,} rows  {elapsed:6.0f} s (generating {generate_s:.0f} s, SQLite "
                f"{lite.load_s:.0f} s, PostgreSQL {pg.load_s:.0f} s), about "
                f"{elapsed * (args.rows - done) / done:.0f} s to go; load {load()}",
                flush=True,
            )
    devices = [(site, door, seqs[door]) for site, door in places]
    print(f"  rows generated in {generate_s:.1f} s (Python, counted in neither)")
    lite.finish(devices)
    pg.finish(devices)
    return sites, doors, cards


def statement(log: CentralLog, query: Query, people: Directory) -> tuple[str, list[Any]]:
    """The SQL console.search.search runs for `query` (to EXPLAIN it)."""
    where, params = _where(query, people, home_site(log, people.site) if query.site else None)
    if query.before is not None:
        where += " AND row < ?"
        params.append(query.before)
    return (
        "SELECT row, id, device, seq, ts, kind, type, body, site FROM events "
        f"WHERE {where} ORDER BY row DESC LIMIT ?",
        [*params, query.limit + 1],
    )


def timed(log: CentralLog, query: Query, people: Directory) -> tuple[Page, float]:
    began = time.perf_counter()
    page = search(log, query, people)
    return page, (time.perf_counter() - began) * 1000


def compare(args: argparse.Namespace, lite: CentralLog, pg: CentralLog, mix: Any) -> None:
    people = Directory(None)
    times: dict[str, dict[str, list[float]]] = {"SQLite": {}, "PostgreSQL": {}}
    slowest: dict[str, tuple[float, Query]] = {}
    hits: dict[str, list[int]] = {}
    mismatches = 0
    for i, (kind, query) in enumerate(mix):
        if i % 2:  # each goes first half the time: a cache or a neighbour's burst favours none
            pg_page, pg_ms = timed(pg, query, people)
            lite_page, lite_ms = timed(lite, query, people)
        else:
            lite_page, lite_ms = timed(lite, query, people)
            pg_page, pg_ms = timed(pg, query, people)
        times["SQLite"].setdefault(kind, []).append(lite_ms)
        times["PostgreSQL"].setdefault(kind, []).append(pg_ms)
        hits.setdefault(kind, []).append(len(lite_page.entries))
        if pg_ms > slowest.get(kind, (-1.0, query))[0]:
            slowest[kind] = (pg_ms, query)
        if (lite_page.entries, lite_page.next_before, lite_page.sites) != (
            pg_page.entries,
            pg_page.next_before,
            pg_page.sites,
        ):
            mismatches += 1
            differ = next(
                (
                    f"row {a.row} {a.id} / row {b.row} {b.id}"
                    for a, b in zip(lite_page.entries, pg_page.entries, strict=False)
                    if a != b
                ),
                "same rows as far as the shorter",
            )
            print(
                f"  !!! MISMATCH {kind}: {query}: SQLite {len(lite_page.entries)} rows (next "
                f"{lite_page.next_before}), PostgreSQL {len(pg_page.entries)} rows (next "
                f"{pg_page.next_before}); first difference {differ}",
                flush=True,
            )
    print(
        f"  {len(mix)} searches, one page (50) each, the same Query objects on both: "
        + (f"!!! {mismatches} MISMATCHES !!!" if mismatches else "every page identical")
    )
    for backend, kinds in times.items():
        everything = [t for samples in kinds.values() for t in samples]
        print(f"  {backend:10s} all kinds                {pct(everything)}")
        for kind, samples in kinds.items():
            print(f"    {kind:34s} {pct(samples)}  mean hits {sum(hits[kind]) / len(samples):4.1f}")
    print("  ratio PostgreSQL/SQLite (p50, p95, p99):")
    for kind in ["all kinds", *times["SQLite"]]:
        both = [
            sorted(t for s in ks.values() for t in s) if kind == "all kinds" else sorted(ks[kind])
            for ks in times.values()
        ]
        ratios = "  ".join(
            f"{at(both[1], q) / max(at(both[0], q), 0.01):6.2f}" for q in (0.5, 0.95, 0.99)
        )
        print(f"    {kind:34s} {ratios}")
    for kind, samples in times["PostgreSQL"].items():
        p95, p50 = at(sorted(samples), 0.95), at(sorted(samples), 0.5)
        if p95 >= 200 or (p50 > 20 and p50 > 2 * at(sorted(times["SQLite"][kind]), 0.5)):
            ms, query = slowest[kind]
            sql, params = statement(pg, query, people)
            print(
                f"  slow on PostgreSQL: {kind} (p95 {p95:.1f} ms), its slowest ({ms:.1f} ms): {query}"
            )
            plan = [line for (line,) in pg.db.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql, params)]
            for line in plan[:PLAN_LINES]:
                print(f"    {line}")
            if len(plan) > PLAN_LINES:
                print(f"    … {len(plan) - PLAN_LINES} lines more (one scan per partition)")
            for *_, detail in lite.db.execute("EXPLAIN QUERY PLAN " + sql, params):
                print(f"    SQLite: {detail}")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    faulthandler.dump_traceback_later(6 * 3600, exit=True)  # a hung run says where, then exits
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # kill PID: still clean up
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--devices", type=int, default=40, help="gates (and doors) per site")
    parser.add_argument("--cards", type=int, default=20_000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="keep the logs and the cluster's files")
    args = parser.parse_args()
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    print(
        f"# machine {platform.platform()}, {platform.machine()}, {os.cpu_count()} cores, "
        f"{memory / 2**30:.0f} GiB; Python {sys.version.split()[0]}, SQLite "
        f"{sqlite3.sqlite_version}, psycopg {psycopg.__version__}; load average {load()}"
    )
    work = Path(tempfile.mkdtemp(prefix="bench-central-log-"))
    cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="bench-central-log-pg-")))
    logs: list[CentralLog] = []
    began = time.perf_counter()
    try:
        cluster.start()
        with psycopg.connect(cluster.url, autocommit=True) as conn:
            for name, value in SETTINGS.items():
                conn.execute(f"ALTER SYSTEM SET {name} = '{value}'".encode())
            version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        cluster.stop()
        cluster.start()  # shared_buffers takes a restart
        print(
            f"# PostgreSQL {version} on loopback (fsync off, as simulator.postgres runs it), "
            + ", ".join(f"{k}={v}" for k, v in SETTINGS.items())
        )
        sites, doors, cards = build(args, work / "central.db", cluster.url)
        logs += [open_log(work / "central.db"), open_log(cluster.url)]
        counts = [log.count() for log in logs]
        print(f"  rows: SQLite {counts[0]:,}, PostgreSQL {counts[1]:,}; load {load()}")
        mix = queries(logs[0], args.searches, seed=7, doors=doors, cards=cards, sites=sites)
        compare(args, logs[0], logs[1], mix)
        print(f"# done in {time.perf_counter() - began:.0f} s; load average {load()}")
    finally:
        for log in logs:
            log.close()
        if args.keep:
            print(f"  kept {work / 'central.db'} and the cluster in {cluster.workdir} (stopped)")
            cluster.stop()
        else:
            cluster.remove()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
