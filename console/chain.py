"""Hash chains over the console's tables: events, the audit trail, alarm acknowledgements.

Each row's `hash` is SHA-256 over the previous row's hash, a newline and the row's record:
the canonical JSON of `{"chain": name, "scheme": 2, "row": {column: value}}` holding every
column the chain names (a NULL column is left out, so a nullable column added later keeps
older rows' hashes, and a log's events written before sites existed keep theirs). Editing
any chained column, deleting, inserting or reordering a row breaks the chain at that row.
Each chain's head (its newest row and hash) is also kept in `chain_heads`, written in the
same transaction: new rows chain on that head, so rows deleted from the end (or appended
behind the console's back) stay visible after the next append.

On SQLite the events are one chain (`events`) numbered 1, 2, 3, …; on PostgreSQL each site's
events are a chain of their own (`events/{site}`) among rows numbered across every site, so
each row also keeps the row it chained on (`prev`): a row deleted from within shows as
missing there too. The functions take any connection whose `execute` takes `?` placeholders
(console.log_store.Executor).

Events written before every column was chained carry `scheme` 1 (the hash covers `body`
only); they are accepted only before the first scheme 2 row and reported as such, so a
row turned back to the old rule is a break, not a pass.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from console.log_store import Executor, Writer

GENESIS = "0" * 64
SCHEME = 2  # every chained column
BODY_ONLY = 1  # events written before every column was chained
ARCHIVED = 0  # a site's event whose month was archived: its row, prev and hash are kept

# The columns each chain covers: every stored column but the row number and the hash (and
# the events' `scheme`, which is in the record). A column added to a table is added here.
EVENT_COLUMNS = (
    "site",
    "id",
    "device",
    "seq",
    "ts",
    "kind",
    "type",
    "door",
    "card_ref",
    "reason",
    "body",
    "received_at",
    "ts_implausible",
)
AUDIT_COLUMNS = ("at", "username", "action", "detail")
ACK_COLUMNS = ("alarm", "username", "at", "note")


@dataclass(frozen=True, slots=True)
class Chain:
    """One chained table: its name in records and anchors, its row number, its columns."""

    name: str
    table: str
    row: str
    columns: tuple[str, ...]
    label: str  # how a problem names one of its rows
    site: str | None = None  # a site's events chain: its rows among every site's (`prev`)

    @property
    def events(self) -> bool:
        """True for an events chain (its rows carry their `scheme`)."""
        return self.table == "events"

    def describe(self, row: int, values: Mapping[str, Any]) -> str:
        ident = values.get("id") if self.events else values.get("alarm")
        return f"{self.label} {row}" + (f" ({str(ident)[:80]})" if ident else "")

    def where(self) -> tuple[str, list[Any]]:
        """Return the SQL condition (and its parameters) selecting this chain's rows."""
        return ("WHERE site = ?", [self.site]) if self.site is not None else ("", [])


EVENTS = Chain("events", "events", "row", EVENT_COLUMNS, "row")
AUDIT = Chain("audit", "audit", "id", AUDIT_COLUMNS, "audit row")
ACKS = Chain("acks", "alarm_acks", "row", ACK_COLUMNS, "acknowledgement row")
CHAINS = (EVENTS, AUDIT, ACKS)
BY_NAME = {chain.name: chain for chain in CHAINS}
SITE_EVENTS = "events/"  # a site's events chain is named `events/{site}` (PostgreSQL)


def site_events(site: str) -> Chain:
    """Return the chain of one site's events (PostgreSQL keeps one per site)."""
    return Chain(f"{SITE_EVENTS}{site}", "events", "row", EVENT_COLUMNS, "row", site)


def by_name(name: str) -> Chain | None:
    """Return the chain a head or an anchor names, None if no chain has that name."""
    if name.startswith(SITE_EVENTS) and len(name) > len(SITE_EVENTS):
        return site_events(name[len(SITE_EVENTS) :])
    return BY_NAME.get(name)


def chain_hash(previous: str, text: str) -> str:
    """Return SHA-256 (hex) over the previous hash, a newline and a row's record text."""
    return hashlib.sha256(f"{previous}\n{text}".encode()).hexdigest()


def canonical(value: Any) -> str:
    """Return canonical JSON (sorted keys, no spaces, UTF-8 as is)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_blob
    )


def record(chain: Chain, values: Mapping[str, Any]) -> str:
    """Return the text a scheme 2 row's hash covers: every non-NULL chained column."""
    row = {c: values[c] for c in chain.columns if values.get(c) is not None}
    return canonical({"chain": chain.name, "scheme": SCHEME, "row": row})


def row_hash(previous: str, chain: Chain, values: Mapping[str, Any]) -> str:
    """Return the hash of a scheme 2 row chained on `previous`."""
    return chain_hash(previous, record(chain, values))


def stored_head(conn: Executor, chain: Chain) -> tuple[int, str]:
    """Return the (row, hash) new rows chain on: the recorded head, else the newest row."""
    found = conn.execute("SELECT row, hash FROM chain_heads WHERE chain = ?", [chain.name])
    kept = found.fetchone()
    return (int(kept[0]), str(kept[1])) if kept else newest(conn, chain)


def newest(conn: Executor, chain: Chain) -> tuple[int, str]:
    """Return (row, hash) of the chain's newest row, (0, GENESIS) if it has none."""
    where, params = chain.where()
    last = conn.execute(
        f"SELECT {chain.row}, hash FROM {chain.table} {where} "  # noqa: S608  # CHAINS
        f"ORDER BY {chain.row} DESC LIMIT 1",
        params,
    ).fetchone()
    return (int(last[0]), str(last[1])) if last else (0, GENESIS)


def insert(
    conn: Executor, chain: Chain, values: Mapping[str, Any], previous: tuple[int, str]
) -> tuple[int, str]:
    """Store one row chained on `previous` (row, hash), in the caller's transaction; return
    its (row, hash). The caller records the head (`set_head`) once its rows are in."""
    digest = row_hash(previous[1], chain, values)
    columns = [*chain.columns, "hash"]
    params = [values.get(c) for c in chain.columns] + [digest]
    if chain.events:
        columns.append("scheme")
        params.append(SCHEME)
    if chain.site is not None:
        columns.append("prev")
        params.append(previous[0])
    cursor = conn.execute(
        f"INSERT INTO {chain.table} ({', '.join(columns)}) "  # noqa: S608  # names from CHAINS
        f"VALUES ({', '.join('?' * len(columns))}) RETURNING {chain.row}",
        params,
    )
    return int(cursor.fetchone()[0]), digest


def insert_many(
    conn: Writer,
    chain: Chain,
    rows: Sequence[Mapping[str, Any]],
    numbers: Sequence[int],
    previous: tuple[int, str],
) -> tuple[int, str]:
    """Store events as rows `numbers`, each chained on the one before, the first on
    `previous` (row, hash), in the caller's transaction; return the last (row, hash).
    The caller records the head (`set_head`) once its rows are in."""
    row, head = previous
    params: list[list[Any]] = []
    for number, values in zip(numbers, rows, strict=True):
        digest = row_hash(head, chain, values)
        linked = [row] if chain.site is not None else []
        params.append([number, *(values.get(c) for c in chain.columns), digest, SCHEME, *linked])
        row, head = number, digest
    columns = [chain.row, *chain.columns, "hash", "scheme", *(["prev"] if chain.site else [])]
    if params:
        conn.executemany(
            f"INSERT INTO {chain.table} ({', '.join(columns)}) "  # noqa: S608  # names from CHAINS
            f"VALUES ({', '.join('?' * len(columns))})",
            params,
        )
    return row, head


def append_row(conn: Executor, chain: Chain, values: Mapping[str, Any]) -> int:
    """Chain, store and make head one row (the caller's transaction); return its row."""
    row, digest = insert(conn, chain, values, stored_head(conn, chain))
    set_head(conn, chain, row, digest)
    return row


def set_head(conn: Executor, chain: Chain, row: int, digest: str) -> None:
    """Record the chain's head (inside the transaction that wrote the row)."""
    conn.execute(
        "INSERT INTO chain_heads (chain, row, hash) VALUES (?, ?, ?) ON CONFLICT(chain) "
        "DO UPDATE SET row = excluded.row, hash = excluded.hash",
        [chain.name, row, digest],
    )


@dataclass
class Walk:
    """What walking one chain found."""

    problems: list[str]
    body_only: tuple[int, int] | None  # first and last scheme 1 event row, if any
    archived: tuple[int, int] | None = None  # first and last archived event row, if any


def walk(conn: Executor, chain: Chain) -> Walk:
    """Re-hash every row of `chain` in order; name each break, hole and downgrade."""
    problems: list[str] = []
    body_only: tuple[int, int] | None = None  # the first and the last scheme 1 row
    archived: tuple[int, int] | None = None
    head, expected, seen_full = GENESIS, 1, False
    scheme = "scheme" if chain.events else str(SCHEME)
    prev = "prev" if chain.site is not None else "NULL"
    names = ", ".join(chain.columns)
    where, params = chain.where()
    rows = f"SELECT {chain.row}, hash, {scheme}, {prev}, {names} FROM {chain.table} {where}"  # noqa: S608
    if chain.site is not None:  # with the rows of its months archived, as they were chained
        blanks = ", ".join("NULL" for _ in chain.columns)
        rows += (
            f" UNION ALL SELECT row, hash, {ARCHIVED}, prev, {blanks} FROM events_archived {where}"  # noqa: S608
        )
        params = params * 2
    cursor = conn.execute(f"{rows} ORDER BY 1", params)
    for row, stored, rule, chained_on, *columns in cursor:
        values = dict(zip(chain.columns, columns, strict=True))
        where = chain.describe(row, values)
        if chained_on is None and row != expected:  # numbered 1, 2, 3, …: a hole shows
            missing = f"{chain.label} {expected}..{row - 1} missing"
            problems.append(f"{missing} (deleted?) before {where}")
        elif chained_on is not None and expected <= chained_on < row:  # its row is gone
            missing = f"{chain.label} {expected}..{chained_on} missing"
            problems.append(f"{missing} (deleted?) before {where}")
        expected = row + 1
        if rule == ARCHIVED and chain.site is not None:  # its columns are gone: its hash stays
            archived = (archived[0] if archived else row, row)
            head = stored
            continue
        if rule == SCHEME:
            seen_full = True
            head = row_hash(head, chain, values)
        elif rule == BODY_ONLY and chain.events and not seen_full:
            body_only = (body_only[0] if body_only else row, row)
            head = chain_hash(head, str(values["body"]))
        else:
            problems.append(
                f"{where}: chained by rule {rule!r} where rule {SCHEME} (every column) applies: "
                "its columns would go unchecked (downgraded)"
            )
            head = stored
            continue
        if head != stored:
            problems.append(f"{where}: hash does not match: edited or reordered")
            head = stored  # report each break once, then follow the stored chain
    problems += _check_head(conn, chain, expected - 1, head)
    return Walk(problems, body_only, archived)


def ack_columns_migration(conn: Executor) -> None:
    """Give the audit trail and the acknowledgements their chains, sealing the rows so far.

    Acknowledgements become append-only (a row per acknowledgement, the newest per alarm
    counts) with their own row number, so a row is never replaced under its hash.
    """
    conn.execute("ALTER TABLE audit ADD COLUMN hash TEXT")
    head = GENESIS
    audit_columns = ", ".join(AUDIT_COLUMNS)
    rows = conn.execute(f"SELECT id, {audit_columns} FROM audit ORDER BY id")  # noqa: S608
    for row, *columns in rows.fetchall():
        head = row_hash(head, AUDIT, dict(zip(AUDIT_COLUMNS, columns, strict=True)))
        conn.execute("UPDATE audit SET hash = ? WHERE id = ?", [head, row])
        set_head(conn, AUDIT, row, head)
    conn.execute("ALTER TABLE alarm_acks RENAME TO alarm_acks_unchained")
    conn.execute(
        "CREATE TABLE alarm_acks (row INTEGER PRIMARY KEY, alarm TEXT NOT NULL, "
        "username TEXT NOT NULL, at TEXT NOT NULL, note TEXT, hash TEXT NOT NULL)"
    )
    conn.execute("CREATE INDEX alarm_acks_alarm ON alarm_acks (alarm, row)")
    head = GENESIS
    ack_columns = ", ".join(ACK_COLUMNS)
    acks = conn.execute(
        f"SELECT {ack_columns} FROM alarm_acks_unchained ORDER BY at"  # noqa: S608
    )
    for columns in acks.fetchall():
        row, head = insert(conn, ACKS, dict(zip(ACK_COLUMNS, columns, strict=True)), (0, head))
        set_head(conn, ACKS, row, head)
    conn.execute("DROP TABLE alarm_acks_unchained")


def _check_head(conn: Executor, chain: Chain, last: int, head: str) -> list[str]:
    kept = conn.execute("SELECT row, hash FROM chain_heads WHERE chain = ?", [chain.name])
    recorded = kept.fetchone()
    if recorded is None:
        return [f"{chain.name}: no head recorded (chain_heads deleted?)"] if last else []
    row, digest = int(recorded[0]), str(recorded[1])
    if row > last:
        return [f"{chain.name}: rows after {last} deleted (the recorded head is row {row})"]
    if row < last:
        return [f"{chain.name}: rows {row + 1}..{last} were not written by the console"]
    if digest != head:
        return [f"{chain.name}: the newest row does not match the recorded head: rewritten"]
    return []


def _blob(value: object) -> object:
    if isinstance(value, bytes):  # never stored by the console: keep it distinct from text
        return {"blob": value.hex()}
    raise TypeError(f"{type(value).__name__} cannot be chained")
