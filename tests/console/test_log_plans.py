"""The central log's indexes and statistics that searches rely on, on both stores."""

from __future__ import annotations

from pathlib import Path

from console.log import open_log
from tests.console.test_log import RECEIVED, event
from tests.pg import pg_database, postgres  # noqa: F401 (the fixtures)


def test_a_sites_newest_page_is_read_off_an_index_on_sqlite(tmp_path: Path) -> None:
    log = open_log(tmp_path / "log.db")
    log.append([event("g1", seq) for seq in range(1, 6)], RECEIVED, site="kamakura")
    sql = "SELECT row FROM events WHERE site = ? ORDER BY row DESC LIMIT 50"
    plan = " ".join(str(row[3]) for row in log.db.execute(f"EXPLAIN QUERY PLAN {sql}", ["x"]))
    log.close()
    assert "USING INDEX events_site_row" in plan or "USING COVERING INDEX" in plan, plan
    assert "TEMP B-TREE" not in plan, plan  # no sort: the index gives the row order


def test_every_month_keeps_a_fine_histogram_of_event_times(pg_database: str) -> None:  # noqa: F811
    log = open_log(pg_database)
    log.append([event("g1", 1)], RECEIVED, site="kamakura")
    targets = {
        table: target
        for table, target in log.db.execute(
            "SELECT c.relname, a.attstattarget FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid WHERE a.attname = 'ts' "
            "AND c.relname LIKE 'events%' AND c.relkind IN ('r', 'p')"
        )
    }
    log.close()
    months = {t for t in targets if t.startswith("events_y")}
    assert len(months) >= 3, targets  # this month and the next two, made ahead
    assert {targets[t] for t in [*months, "events"]} == {1000}, targets
