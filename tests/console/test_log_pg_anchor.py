"""Anchors of a log with a chain per site (PostgreSQL): every site's head is signed into
the line, and a site's chain rewritten with fresh hashes is named against it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from console.anchor import Anchorer, check_file
from console.chain import GENESIS, row_hash, site_events
from console.log import open_log
from tests.console.test_log import RECEIVED, events
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)


@pytest.mark.services
def test_each_sites_chain_is_anchored_and_a_rewrite_of_one_is_named(
    tmp_path: Path,
    pg_database: str,  # noqa: F811
) -> None:
    log = open_log(pg_database)
    try:
        for site in ("annex", "hall"):
            log.append(events("gate-1", range(1, 6)), RECEIVED, site=site)
        key = Ed25519PrivateKey.generate()
        anchors = tmp_path / "anchors.jsonl"
        Anchorer(anchors, key, every_s=300).anchor(log)

        assert check_file(log, anchors, key.public_key()) == (1, [])

        # Rewrite hall's chain from its first row with fresh, consistent hashes: the chain
        # verifies, the anchor does not.
        rows = list(log.db.query("SELECT * FROM events WHERE site = 'hall' ORDER BY row"))
        head = GENESIS
        with log.transaction() as conn:
            for row in rows:
                row["reason"] = "rewritten"
                head = row_hash(head, site_events("hall"), row)
                conn.execute(
                    "UPDATE events SET reason = ?, hash = ? WHERE row = ?",
                    [row["reason"], head, row["row"]],
                )
            conn.execute("UPDATE chain_heads SET hash = ? WHERE chain = 'events/hall'", [head])
        assert log.verify() == []

        count, problems = check_file(log, anchors, key.public_key())

        assert count == 1
        assert len(problems) == 1, problems
        assert "the log was rewritten" in problems[0]
        assert f"row {rows[-1]['row']} no longer ends in" in problems[0]
    finally:
        log.close()
