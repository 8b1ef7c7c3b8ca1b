"""Credentials at scale: a full publish against a one-card revocation sent as deltas.

A registry of --holders cardholders (1-3 of 50 groups each; written straight into SQLite,
the journal's triggers on; card references are stand-ins of the same shape) and --devices
gates, each guarding one of 199 doors (50 rules of 20 doors), so devices take 199 kinds of
card set. Printed, never asserted:

* build time of a full publish (every device a snapshot) and of a one-card revocation
  (every device a delta), bytes per device and in total, delta vs full;
* the revocation applied to device stores in-process (verify + one transaction), per
  device: median / p95 / p99, and revocation -> denied (apply, then the card looks denied).

    python bench/credentials_delta.py [--holders 100000] [--devices 2000] [--stores 50]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.core.clock import Instant
from edge.remote import SnapshotVerifier
from edge.signing import load_public_key
from edge.store import Store
from edge.store.connection import write_transaction
from edge.store.credentials import SqliteCredentials
from provisioning import deltas
from provisioning.publish import build_all
from provisioning.registry import Registry, change_cards
from provisioning.rules import add_rule
from tests.provisioning.commands import provision

DOORS = ["gate-east", *[f"door-{d:03d}" for d in range(199)]]


def make_site(tmp: Path, holders: int, devices: int) -> Path:
    site = tmp / "site"
    assert provision("site", "init", "--site", "bench-site", "--dir", str(site)).returncode == 0
    registry = Registry(site / "registry.db")
    deltas.ensure(registry)
    rng = random.Random(2)
    for g in range(50):
        add_rule(
            registry, f"group-{g:02d}", [*sorted(rng.sample(DOORS, 20)), "gate-east"], "always"
        )
    now = datetime.now(UTC).isoformat()
    with write_transaction(registry.db):  # one transaction: not an fsync per row
        registry.db.conn.executemany(
            "INSERT INTO people (staff_no, name, department, groups, updated_at) VALUES (?, ?, ?, ?, ?)",
            (
                (f"S{i:06d}", f"staff {i}", "dept", json.dumps(_groups(i)), now)
                for i in range(holders)
            ),
        )
        registry.db.conn.executemany(
            "INSERT INTO cards (card_ref, staff_no, technology, status, updated_at) "
            "VALUES (?, ?, 'felica', 'active', ?)",
            ((_ref(i), f"S{i:06d}", now) for i in range(holders)),
        )
        registry.db.conn.executemany(
            "INSERT INTO devices (id, role, added_at) VALUES (?, 'gate', ?)",
            ((f"gate-{d:04d}", now) for d in range(devices)),
        )
    registry.close()
    assert (
        provision("device", "add", "gate-template", "--role", "gate", "--dir", str(site)).returncode
        == 0
    )
    template = (site / "devices" / "gate-template.toml").read_text()
    for d in range(devices):
        door = DOORS[1 + d % 199]
        text = template.replace("gate-template", f"gate-{d:04d}").replace(
            '"gate-east"', f'"{door}"'
        )
        (site / "devices" / f"gate-{d:04d}.toml").write_text(text)
    registry = Registry(site / "registry.db")
    with registry.db.conn:
        registry.db.conn.execute("DELETE FROM devices WHERE id = 'gate-template'")
    registry.close()
    return site


def _groups(i: int) -> list[str]:
    rng = random.Random(i)
    return sorted(rng.sample([f"group-{g:02d}" for g in range(50)], rng.randint(1, 3)))


def _ref(i: int) -> str:
    # A stand-in of the same shape: edge.cardref's scrypt would take 6 minutes for 100,000.
    return hashlib.sha256(f"felica:0114{i:012X}".encode()).hexdigest()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def apply_revocation(
    stores: list[tuple[Store, SnapshotVerifier, str]], data: dict[str, bytes]
) -> None:
    """Apply the revocation delta to each store; print apply and revocation -> denied times."""
    applied, denied = [], []
    ref = _ref(42)
    for store, verifier, device in stores:
        t0 = time.perf_counter()
        result = verifier.apply(data[device], store.db, Instant(0.0, datetime.now(UTC)), delta=True)
        t1 = time.perf_counter()
        assert result.error is None, result.error
        credentials = SqliteCredentials(store.db)
        ok = credentials.denied(ref) is not None and credentials.find(ref) is None
        t2 = time.perf_counter()
        applied.append((t1 - t0) * 1e3)
        denied.append((t2 - t0) * 1e3 if ok else float("nan"))
        store.close()
    if applied:
        print(
            f"delta apply on {len(applied)} device stores (verify + transaction): median "
            f"{statistics.median(applied):.2f} ms  p95 {pct(applied, 0.95):.2f} ms  p99 {pct(applied, 0.99):.2f} ms"
        )
        print(
            f"revocation -> denied (apply, then the card is denied): median {statistics.median(denied):.2f} ms  "
            f"p95 {pct(denied, 0.95):.2f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--holders", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--stores", type=int, default=50, help="device stores to apply it to")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-delta-"))
    start = time.perf_counter()
    site = make_site(tmp, args.holders, args.devices)
    print(
        f"# {platform.machine()} Python {sys.version.split()[0]}; {args.holders:,} cardholders, "
        f"{args.devices:,} gates over 200 doors; registry written in {time.perf_counter() - start:.1f} s"
    )
    registry = Registry(site / "registry.db")
    public = load_public_key(site / "keys" / "credentials.pub")
    start = time.perf_counter()
    full = build_all(registry, site)
    full_s = time.perf_counter() - start
    sizes = [len(b.data) for b in full]
    kept = full[: args.stores]
    del full
    full_bytes = sum(sizes)
    print(
        f"full publish:  build {full_s:7.1f} s  per device median {statistics.median(sizes) / 1e3:8.1f} kB"
        f"  total {full_bytes / 1e6:9.1f} MB  ({len(sizes)} full)"
    )
    stores = []
    for b in kept:
        store = Store(tmp / f"{b.device}.db")
        verifier = SnapshotVerifier(public, "bench-site", b.device)
        assert verifier.apply(b.data, store.db, Instant(0.0, datetime.now(UTC))).version
        stores.append((store, verifier, b.device))
    del kept
    change_cards(registry, "S000042", "revoked", None)
    start = time.perf_counter()
    revocation = build_all(registry, site)
    delta_s = time.perf_counter() - start
    delta_bytes = sum(len(b.data) for b in revocation)
    print(
        f"revocation:    build {delta_s:7.1f} s  per device median {statistics.median(len(b.data) for b in revocation):8.0f} B "
        f"  total {delta_bytes / 1e6:9.3f} MB  ({sum(b.kind == 'delta' for b in revocation)} deltas)"
    )
    print(f"delta / full: bytes {delta_bytes / full_bytes:.5f}, build time {delta_s / full_s:.4f}")
    apply_revocation(stores, {b.device: b.data for b in revocation})
    registry.close()


if __name__ == "__main__":
    main()
