"""A device's base is the snapshot the broker retains for it: kept only once sent, dropped when
a send fails or the device shows it does not hold it, so no revocation waits on a base no
device has."""

from __future__ import annotations

from pathlib import Path

from edge.core.clock import Instant
from edge.remote import SnapshotVerifier
from edge.signing import load_public_key
from edge.store import Store
from edge.store.credentials import SqliteCredentials
from provisioning import deltas
from provisioning.publish import Outcome, build_all, commit_bases, forget_bases
from provisioning.registry import change_cards
from tests.provisioning.commands import provision
from tests.provisioning.test_deltas_unit import WHEN, apply, cards_of, publish
from tests.provisioning.test_passes_unit import SITE, open_registry, site  # noqa: F401 (the fixture)


def revoke_and_publish(site_dir: Path, device: Store) -> str:
    """Revoke S001's first card, publish, apply on `device`; return the card's reference."""
    registry = open_registry(site_dir)
    try:
        ref = cards_of(registry, "S001")[0]
        change_cards(registry, "S001", "revoked", ref[:8])
    finally:
        registry.close()
    apply(site_dir, device, publish(site_dir, delta_share=1.0))
    return ref


def denied(device: Store, ref: str) -> bool:
    held = device.db.execute("SELECT count(*) FROM credentials WHERE ref = ?", [ref]).fetchone()
    deny = device.db.execute("SELECT count(*) FROM deny WHERE ref = ?", [ref]).fetchone()
    return (held[0], deny[0]) == (0, 1)


def test_a_snapshot_built_but_never_sent_is_no_base(site: Path, tmp_path: Path) -> None:  # noqa: F811
    with Store(tmp_path / "device.db") as device:
        apply(site, device, publish(site))  # v1: on the device and retained on the broker
        unsent = publish(site, full=True, sent=False)  # a send that failed before the broker
        assert (unsent.kind, unsent.version) == ("full", 2)
        registry = open_registry(site)
        assert deltas.bases(registry.db)["gate-1"].version == 1
        registry.close()
        ref = revoke_and_publish(site, device)  # a delta on v1, which the device holds
        assert denied(device, ref)


def test_publish_out_writes_files_and_keeps_the_brokers_base(site: Path, tmp_path: Path) -> None:  # noqa: F811
    with Store(tmp_path / "device.db") as device:
        apply(site, device, publish(site))
        out = provision("publish", "--dir", str(site), "--out", str(tmp_path / "files"))
        assert out.returncode == 0, out.stderr
        assert (tmp_path / "files" / "gate-1.v2.json").is_file()
        ref = revoke_and_publish(site, device)
        assert denied(device, ref)


def test_a_failed_send_drops_the_bases_it_may_have_replaced(site: Path, tmp_path: Path) -> None:  # noqa: F811
    with Store(tmp_path / "device.db") as device:
        apply(site, device, publish(site))
        registry = open_registry(site)
        try:
            built = build_all(registry, site, now=WHEN, full=True)
            # The broker may have taken some of it: the device could hold v1 or v2.
            apply(site, device, built[0])
            forget_bases(registry, built)
            assert deltas.bases(registry.db) == {}
        finally:
            registry.close()
        ref = revoke_and_publish(site, device)  # a full snapshot: whatever it held
        assert denied(device, ref)


def test_a_device_below_its_base_gets_a_full_snapshot_next(site: Path, tmp_path: Path) -> None:  # noqa: F811
    with Store(tmp_path / "device.db") as device:
        apply(site, device, publish(site))  # v1
        publish(site, full=True)  # v2, sent, but the device never gets it (a lost retain)
        registry = open_registry(site)
        try:
            ref = cards_of(registry, "S001")[0]
            change_cards(registry, "S001", "revoked", ref[:8])
            [delta] = build_all(registry, site, now=WHEN, delta_share=1.0)
            assert delta.base == 2
            # Its status still says v1: it does not hold the base this delta needs.
            commit_bases(registry, [delta], Outcome(delta.version, {"gate-1": 1}))
            assert "gate-1" not in deltas.bases(registry.db)
        finally:
            registry.close()
        again = publish(site, delta_share=1.0)
        assert again.kind == "full"
        apply(site, device, again)
        assert denied(device, ref)
        assert publish(site, delta_share=1.0).kind == "delta"  # deltas resume on it


def test_a_stale_delta_under_a_newer_snapshot_is_ignored_quietly(
    site: Path,  # noqa: F811 (the fixture)
    tmp_path: Path,
) -> None:
    verifier = SnapshotVerifier(load_public_key(site / "keys" / "credentials.pub"), SITE, "gate-1")
    at = Instant(0.0, WHEN)
    with Store(tmp_path / "device.db") as device:
        apply(site, device, publish(site))  # v1
        registry = open_registry(site)
        try:
            change_cards(registry, "S002", "lost", None)
        finally:
            registry.close()
        stale = publish(site, delta_share=1.0)  # v1 -> v2
        apply(site, device, stale)
        apply(site, device, publish(site, full=True))  # v3: the broker clears the delta
        # A site broker that missed the clear (a WAN cut) still sends v1 -> v2 with v3.
        ignored = verifier.apply(stale.data, device.db, at, delta=True)
        assert (ignored.version, ignored.error) == (None, None)  # no credentials_refused
        assert SqliteCredentials(device.db).version() == 3
        # Not a stale one: it would bring v4 on top of v1, which this device cannot reach.
        registry = open_registry(site)
        try:
            change_cards(registry, "S001", "revoked", cards_of(registry, "S001")[0][:8])
            unsent = build_all(registry, site, now=WHEN, full=True)  # v4, never sent
        finally:
            registry.close()
        apply(site, device, unsent[0])  # as `publish --out` files loaded on the device
        newer = publish(site, delta_share=1.0)  # v5 on the broker's base v3
        refused = verifier.apply(newer.data, device.db, at, delta=True)
        assert refused.error is not None
        assert "built on snapshot v3, but this device holds v4" in refused.error
