"""What keeps a PostgreSQL log's archived months honest: each drop is recorded on the audit
chain, and an archived row counts only if a drop recorded it.

`drop_month` keeps each dropped event's row, prev and hash in `events_archived` so its
site's chain still verifies; on its own that table would let anyone move a row there and
delete it from `events` unnoticed. So the drop also appends an audit row (action
`month dropped`) holding, per site, how many rows it archived, the first and last, and a
SHA-256 over their hashes in row order; `problems` re-counts the archive against those
records (the audit chain itself is walked like every chain).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any, Final

from console.chain import AUDIT, append_row
from console.log_store import Executor

DROPPED: Final = "month dropped"  # the audit action a drop is recorded by
RECORDER: Final = "edge-console"  # the audit row's user: the log itself, not a person

Summary = tuple[int, int, int, str]  # rows, first row, last row, digest of their hashes


def summaries(rows: Iterable[tuple[Any, Any, Any]]) -> dict[str, Summary]:
    """Return each site's summary of archived (site, row, hash) rows given in row order."""
    counted: dict[str, list[Any]] = {}
    for site, row, digest in rows:
        kept = counted.setdefault(str(site), [0, int(row), int(row), hashlib.sha256()])
        kept[0] += 1
        kept[2] = int(row)
        kept[3].update(f"{digest}\n".encode())
    return {site: (n, first, last, h.hexdigest()) for site, (n, first, last, h) in counted.items()}


def record_drop(conn: Executor, month: str, at: str) -> None:
    """Append the audit row recording the drop of `month` at `at` (the drop's transaction)."""
    archived = conn.execute(
        "SELECT site, row, hash FROM events_archived WHERE month = ? AND archived_at = ? "
        "ORDER BY site, row",
        [month, at],
    )
    sites = {site: list(summary) for site, summary in summaries(archived).items()}
    detail = json.dumps({"month": month, "at": at, "sites": sites}, sort_keys=True)
    conn.execute("SELECT row FROM chain_heads WHERE chain = ? FOR UPDATE", [AUDIT.name])
    append_row(conn, AUDIT, {"at": at, "username": RECORDER, "action": DROPPED, "detail": detail})


def problems(conn: Executor) -> list[str]:
    """Name every archived row no recorded drop accounts for, and every drop whose rows are
    no longer as recorded."""
    recorded: dict[tuple[str, str, str], Summary] = {}
    for (detail,) in conn.execute(
        "SELECT detail FROM audit WHERE action = ? ORDER BY id", [DROPPED]
    ).fetchall():
        try:
            drop = json.loads(detail)
            for site, (count, first, last, digest) in drop["sites"].items():
                recorded[(drop["month"], drop["at"], site)] = (count, first, last, digest)
        except (ValueError, TypeError, KeyError) as error:
            return [f"audit: a record of a dropped month cannot be read ({error}): altered"]
    found: list[str] = []
    seen: set[tuple[str, str, str]] = set()
    drops = conn.execute(
        "SELECT DISTINCT month, archived_at FROM events_archived ORDER BY month, archived_at"
    ).fetchall()
    for month, at in drops:
        rows = conn.execute(
            "SELECT site, row, hash FROM events_archived WHERE month = ? AND archived_at = ? "
            "ORDER BY site, row",
            [month, at],
        )
        for site, summary in summaries(rows).items():
            key = (str(month), str(at), site)
            seen.add(key)
            kept = recorded.get(key)
            rows_of = f"events/{site}: archived rows {summary[1]}..{summary[2]} of {month}"
            if kept is None:
                found.append(
                    f"{rows_of} were never dropped by the console (no drop recorded on the "
                    "audit chain): rows deleted from the log?"
                )
            elif tuple(kept) != summary:
                found.append(
                    f"{rows_of} differ from what their drop recorded ({kept[0]} rows "
                    f"{kept[1]}..{kept[2]}): the archive was altered"
                )
    for month, at, site in sorted(set(recorded) - seen):
        found.append(f"events/{site}: the rows archived from {month} at {at} are gone")
    return found
