"""How a log keys devices, events and chains: by device id alone (SQLite: one site's ids, one
events chain) or by site too (PostgreSQL: two sites may use the same device id, and each site
has its own events chain, `events/{site}`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from console.chain import (
    ACKS,
    AUDIT,
    CHAINS,
    GENESIS,
    SITE_EVENTS,
    Chain,
    canonical,
    site_events,
    stored_head,
)
from console.log_store import Executor, LogError

_CHUNK = 500  # ids in one statement, seqs read at a time
_SITE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # a topic level (edge.link.topics)


class Keys:
    """The statements' keys for a log of one site's device ids, or of several sites'."""

    def __init__(self, by_site: bool) -> None:
        self.by_site = by_site

    def __repr__(self) -> str:
        return f"<Keys by {'site and ' if self.by_site else ''}device>"

    def site(self, site: str | None) -> str | None:
        if site is None and self.by_site:
            raise LogError(
                "this log (PostgreSQL) keeps several sites' events: name the site (site=…)"
            )
        return None if site is None else self.named(site)

    @staticmethod
    def named(site: str) -> str:
        if not isinstance(site, str) or not _SITE.match(site):
            raise LogError(
                f"site {str(site)[:40]!r}: use lower-case letters, digits and hyphens (a topic "
                "level, as the site directory is named)"
            )
        return site

    def key(self, site: str | None, device: str) -> tuple[str, list[Any]]:
        if self.by_site:
            return "site = ? AND device = ?", [site, device]
        return "device = ?", [device]

    def conflict(self, columns: str) -> str:
        return f"(site, {columns})" if self.by_site else f"({columns})"

    def of_site(self, site: str | None, where: str = "") -> tuple[str, list[Any]]:
        if site is None:
            return where, []
        return f"{where} {'AND' if where else 'WHERE'} site = ?", [self.named(site)]

    def device_key(self, row_site: str | None, device: str, site: str | None) -> str:
        return f"{row_site}/{device}" if self.by_site and site is None else device

    def claim(self, conn: Executor, device: str, site: str | None) -> None:
        """Refuse, on a log of one site's device ids, a device id another site holds."""
        if self.by_site or site is None:
            return
        held = conn.execute("SELECT site FROM devices WHERE device = ?", [device]).fetchone()
        if held is None or held[0] is None:
            if held is not None:  # written before sites: the first site to write takes it
                conn.execute("UPDATE devices SET site = ? WHERE device = ?", [site, device])
            return
        if held[0] != site:
            raise LogError(
                f"device {device[:40]!r} of site {site!r} is already site {held[0]!r}'s in "
                "this SQLite log, which holds one site's device ids: keep each site's log "
                "apart, or use PostgreSQL (a postgresql:// log) for several sites"
            )

    def fresh(self, conn: Executor, site: str | None, ids: list[str]) -> set[str]:
        """Return the ids not stored yet (PostgreSQL: and claim them for this transaction)."""
        if self.by_site:
            return {
                event_id
                for (event_id,) in conn.execute(
                    "INSERT INTO event_ids (site, id) SELECT ?, unnest(CAST(? AS text[])) "
                    "ON CONFLICT DO NOTHING RETURNING id",
                    [site, ids],
                )
            }
        stored: set[str] = set()
        for start in range(0, len(ids), _CHUNK):
            chunk = ids[start : start + _CHUNK]
            stored |= {
                event_id
                for (event_id,) in conn.execute(
                    f"SELECT id FROM events WHERE id IN ({', '.join('?' * len(chunk))})",  # noqa: S608
                    chunk,
                )
            }
        return set(ids) - stored

    def allocate(self, conn: Executor, count: int) -> list[int]:
        """Return the row numbers of `count` new events, in order."""
        if not count:
            return []
        if self.by_site:  # one sequence across sites: each collector takes its own numbers
            return sorted(
                int(number)
                for (number,) in conn.execute(
                    "SELECT nextval('events_row') FROM generate_series(1, ?)", [count]
                )
            )
        (last,) = conn.execute("SELECT coalesce(max(row), 0) FROM events").fetchone()
        return list(range(int(last) + 1, int(last) + 1 + count))

    def advance_contiguous(self, conn: Executor, site: str | None, device: str) -> None:
        """Move the device's `contiguous` up past every seq now stored without a hole."""
        key, params = self.key(site, device)
        (contiguous,) = conn.execute(
            f"SELECT contiguous FROM devices WHERE {key}",  # noqa: S608
            params,
        ).fetchone()
        start = contiguous
        while True:
            seqs = [
                int(seq)
                for (seq,) in conn.execute(
                    f"SELECT seq FROM events WHERE {key} AND seq > ? ORDER BY seq LIMIT ?",  # noqa: S608
                    [*params, contiguous, _CHUNK],
                )
            ]
            for seq in seqs:
                if seq != contiguous + 1:
                    break
                contiguous = seq
            if contiguous != (seqs[-1] if seqs else None) or len(seqs) < _CHUNK:
                break
        if contiguous != start:
            conn.execute(
                f"UPDATE devices SET contiguous = ? WHERE {key}",  # noqa: S608
                [contiguous, *params],
            )

    def gaps(self, conn: Executor, limit: int, site: str | None) -> dict[str, list[int]]:
        """Return {device: its first `limit` missing seqs} for every device with a hole."""
        where, params = self.of_site(site, "WHERE contiguous < max_seq")
        missing: dict[str, list[int]] = {}
        for row_site, device, contiguous in conn.execute(
            f"SELECT site, device, contiguous FROM devices {where} ORDER BY site, device",  # noqa: S608
            params,
        ).fetchall():
            key, key_params = self.key(row_site, device)
            spans = self._spans(conn, key, key_params, int(contiguous), limit)
            holes: list[int] = []
            for seq, after in spans:
                holes += range(int(seq) + 1, min(int(after), int(seq) + 1 + limit - len(holes)))
                if len(holes) >= limit:
                    break
            missing[self.device_key(row_site, device, site)] = holes
        return missing

    def _spans(
        self, conn: Executor, key: str, params: list[Any], contiguous: int, limit: int
    ) -> Iterable[tuple[int, int]]:
        """Yield (seq, next seq present) where they are apart, from `contiguous` on.

        PostgreSQL finds them in SQL (a window along the (site, device, seq) index), so only
        the holes cross the network; SQLite walks the seqs in the process, which costs less
        there than its window functions (bench/log_gaps.py)."""
        if self.by_site:
            (first,) = conn.execute(
                f"SELECT min(seq) FROM events WHERE {key} AND seq > ?",  # noqa: S608
                [*params, contiguous],
            ).fetchone()
            if first is not None and first > contiguous + 1:  # before the first seq present
                yield contiguous, int(first)
            yield from conn.execute(
                "SELECT seq, next FROM (SELECT seq, lead(seq) OVER (ORDER BY seq) AS next "  # noqa: S608
                f"FROM events WHERE {key} AND seq > ?) AS spans "
                "WHERE next > seq + 1 ORDER BY seq LIMIT ?",
                [*params, contiguous, limit],
            )
            return
        last = contiguous
        for (seq,) in conn.execute(
            f"SELECT seq FROM events WHERE {key} AND seq > ? ORDER BY seq",  # noqa: S608
            [*params, contiguous],
        ):
            if seq > last + 1:
                yield last, int(seq)
            last = int(seq)

    def lock_head(self, conn: Executor, chain: Chain) -> tuple[int, str]:
        """Return the head new rows chain on; PostgreSQL: lock it till the transaction ends."""
        if chain.site is None:
            return stored_head(conn, chain)
        conn.execute(
            "INSERT INTO chain_heads (chain, row, hash) VALUES (?, 0, ?) "
            "ON CONFLICT (chain) DO NOTHING",
            [chain.name, GENESIS],
        )
        row, digest = conn.execute(
            "SELECT row, hash FROM chain_heads WHERE chain = ? FOR UPDATE", [chain.name]
        ).fetchone()
        return int(row), str(digest)

    def chains(self, conn: Executor, *, every: bool = False) -> list[Chain]:
        """Return the log's chains: PostgreSQL's one per site with a recorded head (and,
        for `every`, per site with any event: a head deleted must not hide a chain)."""
        if not self.by_site:
            return list(CHAINS)
        names = {
            name[len(SITE_EVENTS) :]
            for (name,) in conn.execute(
                "SELECT chain FROM chain_heads WHERE chain LIKE 'events/%'"
            ).fetchall()
        }
        if every:
            names |= {s for (s,) in conn.execute("SELECT DISTINCT site FROM events").fetchall()}
        return [site_events(site) for site in sorted(names)] + [AUDIT, ACKS]

    def newest_deleted(self, conn: Executor) -> list[str]:
        """Name devices whose newest events are gone: their highest seqs are kept apart."""
        same = "e.site = d.site AND " if self.by_site else ""
        archived = (  # a month dropped after its export keeps its events' seqs
            "(SELECT max(seq) FROM events_archived a WHERE a.site = d.site AND a.device = d.device)"
            if self.by_site
            else "NULL"
        )
        problems = []
        for site, device, max_seq, in_events, kept in conn.execute(
            "SELECT d.site, d.device, d.max_seq, (SELECT max(seq) FROM events e "  # noqa: S608
            f"WHERE {same}e.device = d.device), {archived} FROM devices d WHERE d.max_seq > 0 "
            "ORDER BY d.site, d.device"
        ).fetchall():
            stored = max((s for s in (in_events, kept) if s is not None), default=None)
            if stored is None or stored < max_seq:
                problems.append(
                    f"{self.device_key(site, device, None)}: newest events deleted (seq "
                    f"{max_seq} was stored, the log ends at {stored})"
                )
        return problems


def event_row(
    event: dict[str, Any], site: str | None, received_at: str, later: Mapping[str, str]
) -> dict[str, Any]:
    """Return the columns an event is stored with (`later`: the times of events whose own
    cannot be believed, by id)."""
    event_id, device, seq = identity(event)
    nested = event.get("data")
    data: dict[str, Any] = nested if isinstance(nested, dict) else event
    return {
        "site": site,
        "id": event_id,
        "device": device,
        "seq": seq,
        "ts": _clean(later.get(event_id, str(event.get("ts", "")))),
        "kind": _clean(str(event.get("kind", ""))),
        "type": _clean(str(event.get("type", ""))),
        "door": _text(data.get("door")),
        "card_ref": _text(data.get("card_ref")),
        "reason": _text(data.get("reason")),
        "body": canonical(event),
        "received_at": received_at,
        "ts_implausible": int(event_id in later),
    }


def identity(event: dict[str, Any]) -> tuple[str, str, int]:
    """Return (id, device, seq) of an event, or raise LogError naming what is wrong."""
    event_id, seq = event.get("id"), event.get("seq")
    if (
        not isinstance(event_id, str)
        or ":" not in event_id
        or not isinstance(seq, int)
        or isinstance(seq, bool)
        or not 0 < seq < 2**53
    ):
        raise LogError(f"event without a valid id/seq: id={event_id!r} seq={seq!r}")
    device = event_id.rsplit(":", 1)[0]
    if event_id != f"{device}:{seq}":
        raise LogError(f"event id {event_id!r} does not match its seq {seq}")
    return event_id, device, seq


def _text(value: object) -> str | None:
    return _clean(value) if isinstance(value, str) else None


def _clean(text: str) -> str:
    """Return a column's text without NUL (U+FFFD instead), which PostgreSQL cannot store;
    the body keeps what the device sent."""
    return text.replace("\x00", "\ufffd")
