"""Deltas from the registry, without services: the card journal, when a full snapshot goes
instead, and that a device on deltas holds exactly what a full snapshot would give it."""

from __future__ import annotations

import random
from datetime import UTC, timedelta
from pathlib import Path

from edge.core.clock import Instant
from edge.remote import SnapshotVerifier
from edge.signing import load_public_key
from edge.store import Store
from provisioning import deltas
from provisioning.credential_sets import Built
from provisioning.passes import issue_pass
from provisioning.publish import Outcome, build_all, commit_bases
from provisioning.registry import Registry, change_cards, import_people
from provisioning.rules import add_rule
from provisioning.staff_csv import StaffRow
from tests.provisioning.test_passes_unit import NOW, SITE, open_registry, site  # noqa: F401 (the fixture)

WHEN = NOW.astimezone(UTC)


def publish(site_dir: Path, *, sent: bool = True, **options: object) -> Built:
    """Build gate-1's snapshot or delta; `sent`: the broker took it (its bases are kept)."""
    registry = open_registry(site_dir)
    try:
        [built] = build_all(registry, site_dir, now=WHEN, **options)  # type: ignore[arg-type]
        if sent:
            commit_bases(registry, [built], Outcome(built.version, {}))
    finally:
        registry.close()
    return built


def apply(site_dir: Path, store: Store, built: Built) -> None:
    verifier = SnapshotVerifier(
        load_public_key(site_dir / "keys" / "credentials.pub"), SITE, "gate-1"
    )
    result = verifier.apply(built.data, store.db, Instant(0.0, WHEN), delta=built.base is not None)
    assert result.error is None, result.error
    assert result.version == built.version


def held(store: Store) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    cards = store.db.execute("SELECT * FROM credentials ORDER BY ref").fetchall()
    return cards, store.db.execute("SELECT * FROM deny ORDER BY ref").fetchall()


def journal(registry: Registry) -> list[str]:
    return [r for (r,) in registry.db.execute("SELECT card_ref FROM card_journal ORDER BY seq")]


def cards_of(registry: Registry, staff_no: str) -> list[str]:
    rows = registry.db.execute(
        "SELECT card_ref FROM cards WHERE staff_no = ? ORDER BY 1", [staff_no]
    )
    return [r for (r,) in rows]


def test_the_journal_names_the_cards_a_change_touches_and_nothing_else(
    site: Path,  # noqa: F811 (the fixture)
) -> None:
    publish(site)  # creates the journal
    registry = open_registry(site)
    try:
        sato = cards_of(registry, "S001")
        change_cards(registry, "S001", "lost", sato[0][:8])
        assert journal(registry) == [sato[0], sato[0]]
        rows = registry.db.execute(
            "SELECT p.staff_no, c.card_ref, p.valid_until FROM people p JOIN cards c "
            "ON c.staff_no = p.staff_no WHERE p.staff_no = 'S003'"
        ).fetchall()
        (staff_no, ref, _), *_ = rows
        again = StaffRow(1, staff_no, "高橋 健太", "総務課", "felica", ref, ("staff",), None, None)
        import_people(registry, [again], "test")  # valid_until changes: its card is journaled
        import_people(registry, [again], "test")  # the same row again: nothing
        assert journal(registry)[2:] == [ref]
    finally:
        registry.close()


def test_a_device_on_deltas_holds_what_a_full_snapshot_gives(
    site: Path,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    with Store(tmp_path / "deltas.db") as on_deltas, Store(tmp_path / "full.db") as fresh:
        first = publish(site)
        assert first.kind == "full"
        apply(site, on_deltas, first)
        registry = open_registry(site)
        sato = cards_of(registry, "S001")
        change_cards(registry, "S001", "revoked", sato[1][:8])
        registry.close()
        second = publish(site, delta_share=1.0)
        apply(site, on_deltas, second)
        registry = open_registry(site)
        issue_pass(registry, "S002", "07", NOW, NOW + timedelta(hours=2), actor="desk")
        change_cards(registry, "S001", "active", sato[1][:8], may_unrevoke=True)
        change_cards(registry, "S001", "lost", sato[0][:8])
        registry.close()
        third = publish(site, delta_share=1.0)
        assert [(b.kind, b.base) for b in (second, third)] == [("delta", 1), ("delta", 1)]
        apply(site, on_deltas, third)
        fourth = publish(site, full=True)
        assert fourth.kind == "full"
        apply(site, fresh, fourth)
        assert held(on_deltas) == held(fresh)
        assert third.cards == fourth.cards


def test_a_new_rule_or_a_large_delta_sends_a_full_snapshot(
    site: Path,  # noqa: F811 (the fixture)
) -> None:
    publish(site)
    registry = open_registry(site)
    change_cards(registry, "S002", "revoked")
    registry.close()
    assert publish(site).kind == "full"  # a 3-card site: any delta is over 20 % of it
    registry = open_registry(site)
    change_cards(registry, "S002", "active", may_unrevoke=True)
    add_rule(registry, "visitors", ["gate-1"], "always")
    registry.close()
    assert publish(site, delta_share=1.0).kind == "full"  # the policy changed
    registry = open_registry(site)
    try:
        assert deltas.bases(registry.db)["gate-1"].version == 3
        assert journal(registry) == []  # every base covers it: pruned
    finally:
        registry.close()


def test_a_device_whose_configuration_changed_gets_a_full_snapshot_of_its_new_doors(
    site: Path,  # noqa: F811 (the fixture)
) -> None:
    assert publish(site).kind == "full"
    assert publish(site, delta_share=1.0).kind == "delta"  # nothing changed: an empty delta
    config = site / "devices" / "gate-1.toml"
    text = config.read_text()
    moved = text.replace('id = "gate-1"\nout', 'id = "gate-9"\nout').replace(
        'door = "gate-1"', 'door = "gate-9"'
    )
    assert moved.count("gate-9") == 3
    config.write_text(moved)  # the same process: what it kept of the old file must not count
    built = publish(site, delta_share=1.0)
    assert (built.kind, built.cards) == ("full", 0)  # no rule lets anyone through gate-9


def test_the_kept_card_counts_follow_every_kind_of_change_to_cards_and_people(
    site: Path,  # noqa: F811 (the fixture)
) -> None:
    registry = open_registry(site)
    deltas.ensure(registry)
    db = registry.db.conn
    rng = random.Random(5)
    groups = ['["staff"]', '["a","staff"]', '["b"]', None]
    statuses = ["active", "revoked", "lost"]
    try:
        for step in range(400):
            staff = f"R{rng.randint(0, 15):03d}"
            card = f"card-{rng.randint(0, 30):03d}"
            with db:
                match rng.randint(0, 6):
                    case 0:
                        db.execute(
                            "INSERT OR IGNORE INTO people (staff_no, name, groups) "
                            "VALUES (?, ?, ?)",
                            [staff, "x", rng.choice(groups)],
                        )
                    case 1:
                        db.execute(
                            "UPDATE people SET groups = ? WHERE staff_no = ?",
                            [rng.choice(groups), staff],
                        )
                    case 2:
                        db.execute(
                            "UPDATE OR IGNORE people SET staff_no = ? WHERE staff_no = ?",
                            [f"R{rng.randint(0, 15):03d}", staff],
                        )
                    case 3:
                        db.execute("DELETE FROM people WHERE staff_no = ?", [staff])
                    case 4:
                        db.execute(
                            "INSERT OR IGNORE INTO cards (card_ref, staff_no, technology, status) "
                            "VALUES (?, ?, 'felica', ?)",
                            [card, staff, rng.choice(statuses)],
                        )
                    case 5:
                        db.execute(
                            "UPDATE cards SET status = ?, staff_no = ? WHERE card_ref = ?",
                            [rng.choice(statuses), staff, card],
                        )
                    case _:
                        db.execute("DELETE FROM cards WHERE card_ref = ?", [card])
            counted = dict(
                db.execute(
                    "SELECT coalesce(p.groups, '[]'), count(*) FROM cards c JOIN people p "
                    "ON p.staff_no = c.staff_no WHERE c.status = 'active' "
                    "GROUP BY coalesce(p.groups, '[]')"
                )
            )
            assert dict(deltas.group_counts(registry.db)) == counted, step
        assert db.execute("SELECT count(*) FROM card_counts WHERE cards < 0").fetchone() == (0,)
    finally:
        registry.close()
