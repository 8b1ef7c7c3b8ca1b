"""The central log: every device's events, once each, hash-chained so tampering shows.

Each stored event gets the next `row` and a hash over the previous row's hash and every
column it is stored with (console/chain.py), so editing any column, deleting, inserting or
reordering a row breaks the chain at that row (`verify`); the audit trail and the alarm
acknowledgements are chained the same way, each its own chain. Events are de-duplicated by
their `id` ({device}:{seq}) within their site; per device the log knows the highest seq
below which nothing is missing (`contiguous`) and the highest seen, so a gap in seq is
reported until it is filled. Card references stay references here; names come from the
provisioning registry when a person asks.

Two stores hold a log (`open_log`): an SQLite file (the default; one site's device ids, one
events chain) and PostgreSQL (many sites and collectors at once: device and event ids keyed
by site, one events chain per site, `events/{site}`). Everything here is written in the SQL
both run (`?` placeholders, `ON CONFLICT`, ISO-8601 text times, `CASE` for max); each store
holds the statements that differ.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console import log_archive as archive
from console.chain import (
    ACKS,
    AUDIT,
    EVENTS,
    GENESIS,
    Chain,
    by_name,
    canonical,
    chain_hash,
    insert_many,
    newest,
    set_head,
    site_events,
    walk,
)
from console.log_keys import Keys, event_row, identity
from console.log_schema import BASELINES, MOVES, migrations
from console.log_sqlite import SqliteStore
from console.log_store import LogDatabase, LogError, LogUnavailable, Store, Writer, is_url

__all__ = [
    "BASELINES",
    "GENESIS",
    "MOVES",
    "CentralLog",
    "Entry",
    "LogError",
    "LogUnavailable",
    "Verification",
    "canonical",
    "chain_hash",
    "identity",
    "migrations",
    "open_log",
]


@dataclass(frozen=True, slots=True)
class Entry:
    """One event as stored."""

    row: int
    id: str
    device: str
    seq: int
    ts: str
    kind: str
    type: str
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Verification:
    """What `CentralLog.check` found: `problems` (tampering) and `notes` (what is not covered)."""

    problems: list[str]
    notes: list[str]


def open_log(target: str | Path) -> CentralLog:
    """Open the log at `target`: a file path (SQLite) or a `postgresql://…` URL."""
    return CentralLog(target)


class CentralLog:
    """The console's log; one or more writers (collectors), any number of readers."""

    def __init__(self, target: str | Path) -> None:
        self._store: Store = _postgres(str(target)) if is_url(target) else SqliteStore(Path(target))
        self._keys = Keys(self._store.keys_sites)
        self.path: Path | None = target if isinstance(target, Path) else None
        if self.path is None and not is_url(target):
            self.path = Path(target)

    @property
    def db(self) -> LogDatabase:
        """This thread's connection: the collector writes on one, readers read on theirs."""
        return self._store.db()

    @property
    def keys_sites(self) -> bool:
        """True if device and event ids are kept per site (PostgreSQL), so two sites may
        use the same device id; False for one site's ids (SQLite)."""
        return self._store.keys_sites

    def __repr__(self) -> str:
        return f"<CentralLog {self._store.target}>"

    def close(self) -> None:
        """Close every thread's connection; idempotent."""
        self._store.close()

    def outage(self, error: BaseException) -> bool:
        """True if `error` is a failure of the database itself (down, full, locked), to be
        retried; False if the log refused one row or event."""
        return self._store.outage(error)

    @contextmanager
    def transaction(self) -> Iterator[Writer]:
        """Write in one transaction on this thread's connection; inside one, join it."""
        with self._store.transaction() as conn:
            yield conn

    # -- writing --------------------------------------------------------------------------

    def append(
        self,
        events: Iterable[dict[str, Any]],
        received_at: str,
        implausible: Mapping[str, str] | None = None,
        *,
        site: str | None = None,
    ) -> list[str]:
        """Store new events of one site in one transaction; return the ids stored
        (duplicates skipped).

        `implausible` maps the id of an event whose own `ts` cannot be believed to the time
        it is ordered by instead: stored as `ts` and flagged (`ts_implausible`); the body
        stays as the device sent it.

        The chain's head is re-read (PostgreSQL: locked) inside the write transaction, so
        two collectors writing the same site never fork its chain.
        """
        site = self._keys.site(site)
        events = list(events)
        ids = [identity(event) for event in events]  # all or nothing: check each first
        later = implausible or {}
        self._store.prepare([{"ts": later.get(e["id"], e.get("ts"))} for e in events])
        with self._store.transaction() as conn:
            chain = site_events(site) if site is not None and self.keys_sites else EVENTS
            head = self._keys.lock_head(conn, chain)
            for device in sorted({device for _, device, _ in ids}):
                self._keys.claim(conn, device, site)
            fresh = self._keys.fresh(conn, site, [event_id for event_id, _, _ in ids])
            rows: list[dict[str, Any]] = []
            duplicates: Counter[str] = Counter()
            highest: dict[str, int] = {}
            for event, (event_id, device, seq) in zip(events, ids, strict=True):
                if event_id not in fresh:  # stored before, or earlier in this batch
                    duplicates[device] += 1
                    continue
                fresh.discard(event_id)
                highest[device] = max(seq, highest.get(device, 0))
                rows.append(event_row(event, site, received_at, later))
            numbers = self._keys.allocate(conn, len(rows))
            row, digest = insert_many(conn, chain, rows, numbers, head)
            for device, seq in sorted(highest.items()):
                conn.execute(
                    "INSERT INTO devices (site, device, contiguous, max_seq) VALUES (?, ?, 0, ?) "  # noqa: S608
                    f"ON CONFLICT {self._keys.conflict('device')} DO UPDATE SET max_seq = "
                    "CASE WHEN excluded.max_seq > devices.max_seq THEN excluded.max_seq "
                    "ELSE devices.max_seq END",
                    [site, device, seq],
                )
            for device, count in sorted(duplicates.items()):
                key, params = self._keys.key(site, device)
                conn.execute(
                    f"UPDATE devices SET duplicates = duplicates + ? WHERE {key}",  # noqa: S608
                    [count, *params],
                )
            for device in sorted(highest):
                self._keys.advance_contiguous(conn, site, device)
            if rows:
                set_head(conn, chain, row, digest)
        return [values["id"] for values in rows]

    def set_status(
        self, device: str, body: str, received_at: str, *, site: str | None = None
    ) -> None:
        """Keep a device's latest retained status."""
        site = self._keys.site(site)
        with self._store.transaction() as conn:
            self._keys.claim(conn, device, site)
            conn.execute(
                "INSERT INTO devices (site, device, contiguous, max_seq, status, status_at) "  # noqa: S608
                f"VALUES (?, ?, 0, 0, ?, ?) ON CONFLICT {self._keys.conflict('device')} DO UPDATE "
                "SET status = excluded.status, status_at = excluded.status_at",
                [site, device, body, received_at],
            )

    def set_occupancy(
        self,
        device: str,
        zone: str,
        count: int,
        occupied: bool,
        ts: str,
        *,
        site: str | None = None,
    ) -> None:
        """Keep a zone's latest occupancy as a device reports it."""
        site = self._keys.site(site)
        with self._store.transaction() as conn:
            self._keys.claim(conn, device, site)
            conn.execute(
                "INSERT INTO occupancy (site, device, zone, count, occupied, ts) "  # noqa: S608
                f"VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT {self._keys.conflict('device, zone')} "
                "DO UPDATE SET site = excluded.site, count = excluded.count, "
                "occupied = excluded.occupied, ts = excluded.ts",
                [site, device, zone, count, int(occupied), ts],
            )

    def set_rooms(self, what: str, body: str, received_at: str, *, site: str | None = None) -> None:
        """Keep a site's rooms service's newest `view` or `status` (None: the log's own)."""
        self.db.execute(
            "INSERT INTO rooms (site, what, body, received_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (site, what) DO UPDATE SET body = excluded.body, "
            "received_at = excluded.received_at",
            [_room_site(site), what, body, received_at],
        )

    def set_site_link(
        self,
        site: str,
        *,
        connected: bool | None = None,
        stored: int | None = None,
        at: str,
    ) -> None:
        """Keep what a site's bridge last said: linked or not, and its broker's stored count
        (None: unchanged)."""
        site = self._keys.named(site)
        self.db.execute(
            "INSERT INTO sites (site, connected, stored, link_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (site) DO UPDATE SET "
            "connected = COALESCE(excluded.connected, sites.connected), "
            "stored = COALESCE(excluded.stored, sites.stored), link_at = excluded.link_at",
            [site, None if connected is None else int(connected), stored, at],
        )

    # -- reading --------------------------------------------------------------------------

    def gaps(self, limit: int = 1000, *, site: str | None = None) -> dict[str, list[int]]:
        """Return {device: missing seqs (the first `limit`)} for every device with a hole
        (keyed `site/device` on a log keyed by site, unless `site` is given).

        The holes are found between the seqs present, never by listing the whole range: a
        device whose store was replaced continues from a far larger seq.
        """
        return self._keys.gaps(self.db, limit, site)

    def devices(self, *, site: str | None = None) -> dict[str, dict[str, Any]]:
        """Return each device's site, seq bookkeeping and latest status (keyed as `gaps`)."""
        where, params = self._keys.of_site(site)
        return {
            self._keys.device_key(row["site"], row["device"], site): row
            for row in self.db.query(
                "SELECT site, device, contiguous, max_seq, duplicates, status, status_at "  # noqa: S608
                f"FROM devices {where}",
                params,
            )
        }

    def count(self, *, site: str | None = None) -> int:
        """Return the number of stored events (of one site, if given)."""
        where, params = self._keys.of_site(site)
        found = self.db.execute(f"SELECT count(*) FROM events {where}", params)  # noqa: S608
        return int(found.fetchone()[0])

    def entries(self, where: str = "", params: Iterable[Any] = ()) -> Iterator[Entry]:
        """Yield stored events in log order, optionally filtered by an SQL condition."""
        clause = f"WHERE {where}" if where else ""
        query = (
            "SELECT row, id, device, seq, ts, kind, type, body FROM events "  # noqa: S608
            f"{clause} ORDER BY row"
        )
        for row, id_, device, seq, ts, kind, type_, body in self.db.execute(query, list(params)):
            yield Entry(row, id_, device, seq, ts, kind, type_, json.loads(body))

    def occupancy(self, *, site: str | None = None) -> dict[str, dict[str, Any]]:
        """Return the latest occupancy per zone (the newest report among devices), of one
        site if given (zones are named per site).

        Each device counts only what it saw: console.headcount adds up the zones with doors.
        """
        zones: dict[str, dict[str, Any]] = {}
        where, params = self._keys.of_site(site)
        for row in self.db.query(
            "SELECT site, device, zone, count, occupied, ts FROM occupancy "  # noqa: S608
            f"{where} ORDER BY ts",
            params,
        ):
            zones[row["zone"]] = row
        return zones

    def rooms(self, site: str | None = None) -> dict[str, tuple[str, str]]:
        """Return a site's rooms service's kept {what: (body, received_at)} (None: the
        log's own)."""
        rows = self.db.execute(
            "SELECT what, body, received_at FROM rooms WHERE site = ?", [_room_site(site)]
        ).fetchall()
        return {what: (body, at) for what, body, at in rows}

    def last_received_at(self, site: str | None = None) -> str | None:
        """Return when the newest stored event (of one site, if given) was received, read
        off the chains' heads (SQLite, for a site: its newest row), never by scanning."""
        heads = "chain_heads.chain = 'events' OR chain_heads.chain LIKE 'events/%'"
        params: list[Any] = []
        if site is not None and self.keys_sites:
            heads, params = "chain_heads.chain = ?", [site_events(self._keys.named(site)).name]
        elif site is not None:  # read back by row: `|| ''` keeps it off the (site, ts) index
            found = self.db.execute(
                "SELECT received_at FROM events WHERE site || '' = ? ORDER BY row DESC LIMIT 1",
                [self._keys.named(site)],
            ).fetchone()
            return None if found is None else str(found[0])
        (newest_at,) = self.db.execute(
            "SELECT max(events.received_at) FROM chain_heads JOIN events "  # noqa: S608
            f"ON events.row = chain_heads.row WHERE {heads}",
            params,
        ).fetchone()
        return None if newest_at is None else str(newest_at)

    def sites(self) -> dict[str, dict[str, Any]]:
        """Return each site's link (`connected`, `stored`, `link_at`), its `devices`, its
        newest event's `last_received_at` and the newest event time from it (`newest_ts`)."""
        found: dict[str, dict[str, Any]] = {}
        for site, connected, stored, at in self.db.execute(
            "SELECT site, connected, stored, link_at FROM sites"
        ).fetchall():
            link = {"connected": None if connected is None else bool(connected)}
            found[site] = {**link, "stored": stored, "link_at": at}
        counted = dict(
            self.db.execute(
                "SELECT site, count(*) FROM devices WHERE site IS NOT NULL GROUP BY site"
            ).fetchall()
        )
        for site in sorted({*found, *counted}):
            (newest_ts,) = self.db.execute(
                "SELECT max(ts) FROM events WHERE site = ?", [site]
            ).fetchone()
            found[site] = {
                "site": site,
                **found.get(site, {"connected": None, "stored": None, "link_at": None}),
                "devices": int(counted.get(site, 0)),
                "last_received_at": self.last_received_at(site),
                "newest_ts": newest_ts,
            }
        return {site: found[site] for site in sorted(found)}

    def marker(self) -> tuple[tuple[str, int], ...]:
        """Return a value that differs after each batch of events committed: every events
        chain's head row. (On PostgreSQL rows are numbered when written and committed in
        that order only within a site, so `max(row)` can miss another site's batch.)"""
        return tuple(
            (str(chain), int(row))
            for chain, row in self.db.execute(
                "SELECT chain, row FROM chain_heads WHERE chain = 'events' OR chain LIKE "
                "'events/%' ORDER BY chain"
            ).fetchall()
        )

    def head(self, chain: str = "events") -> tuple[int, str]:
        """Return (row, hash) of a chain's newest row: kept elsewhere, it anchors the chain."""
        return newest(self.db, self._chain(chain))

    def heads(self) -> dict[str, tuple[int, str]]:
        """Return every chain's (row, hash) by name: what an anchor line keeps."""
        return {chain.name: newest(self.db, chain) for chain in self._keys.chains(self.db)}

    def anchored(self, row: int, expected: str, chain: str = "events") -> str | None:
        """Check a head written down earlier; return the problem, or None if it still holds.

        The chain alone cannot tell a log rewritten from start to end, hashes and all, from
        the real one; a head kept outside the database (printed, mailed, signed into an
        anchor file) can.
        """
        try:
            spec = self._chain(chain)
        except LogError as error:
            return str(error)
        if row == 0:
            return None if expected == GENESIS else f"{chain}: an anchor at row 0 is {GENESIS}"
        where, params = spec.where()
        rows = f"SELECT hash FROM {spec.table} {where} {'AND' if where else 'WHERE'} {spec.row} = ?"  # noqa: S608
        values = [*params, row]
        if spec.site is not None:  # a site's rows include those of its archived months
            rows += " UNION ALL SELECT hash FROM events_archived WHERE site = ? AND row = ?"
            values += values
        found = self.db.execute(rows, values).fetchone()
        what = f"{spec.label} {row}"
        if found is None:
            return f"{what} of the anchor is gone: rows were deleted"
        if found[0] != expected:
            return f"{what} no longer ends in {expected[:16]}…: the log was rewritten"
        return None

    def drop_month(self, month: str, at: str) -> int:
        """Drop a month's events (YYYY-MM, before this one) from a PostgreSQL log once they
        are exported; each keeps its place in its site's chain (row, hash, seq), so `verify`
        still walks every chain. Return how many were dropped."""
        return self._store.drop_month(month, at)

    def verify(self) -> list[str]:
        """Re-walk every chain; return a line per problem (empty: the log is intact)."""
        return self.check().problems

    def check(self) -> Verification:
        """Re-walk every chain in one snapshot: problems, and notes on what is not covered."""
        problems: list[str] = []
        notes: list[str] = []
        errors = self._store.errors
        unreadable: set[str] = set()
        with self._store.snapshot() as conn:
            chains: list[Chain] = [AUDIT, ACKS]
            try:
                with self._store.attempt(conn):
                    chains = self._keys.chains(conn, every=True)
            except errors as error:
                problems.append(f"events: cannot be read ({_first_line(error)}): altered")
            for chain in chains:
                try:
                    with self._store.attempt(conn):
                        found = walk(conn, chain)
                except errors as error:  # a column dropped, a table gone
                    problems.append(f"{chain.name}: cannot be read ({_first_line(error)}): altered")
                    unreadable.add(chain.name)
                    continue
                problems += found.problems
                if found.archived:
                    first, last = found.archived
                    notes.append(
                        f"{chain.name}: rows {first}..{last} of months archived (dropped after "
                        "their export) are checked by their kept hashes only"
                    )
                if found.body_only:
                    first, last = found.body_only
                    notes.append(
                        f"rows {first}..{last} are chained by their body only (written before "
                        "every column was chained): an edit of their other columns would not show"
                    )
            try:
                with self._store.attempt(conn):
                    problems += self._keys.newest_deleted(conn)
            except errors as error:
                problems.append(f"devices: cannot be read ({_first_line(error)}): altered")
            if self.keys_sites and AUDIT.name not in unreadable:  # drops are audit rows
                try:
                    with self._store.attempt(conn):
                        problems += archive.problems(conn)
                        notes += self._store.notes(conn)
                except errors as error:
                    problems.append(f"events_archived: cannot be read ({_first_line(error)})")
        return Verification(problems, notes)

    def _chain(self, name: str) -> Chain:
        spec = by_name(name)
        if spec is None or (spec.site is not None) != (self.keys_sites and spec.events):
            raise LogError(
                f"chain {name[:80]!r}: this log's chains are "
                f"{', '.join(c.name for c in self._keys.chains(self.db))}"
            )
        return spec


def _room_site(site: str | None) -> str:
    """Key the rooms table by site; '' is the log's own (a key column cannot be NULL)."""
    return "" if site is None else Keys.named(site)


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _postgres(url: str) -> Store:
    """Open a PostgreSQL store; psycopg is imported only when a log is on PostgreSQL, so a
    console on SQLite (every command's start) never pays for loading it."""
    from console.log_pg import PostgresStore  # noqa: PLC0415  # see the docstring

    return PostgresStore(url)
