"""Credentials at scale: a full publish against a one-card revocation sent as deltas.

A registry of --holders cardholders (1-3 of 50 groups each; written straight into SQLite,
the journal's triggers on; card references are stand-ins of the same shape) and --devices
gates, each guarding one of 199 doors (50 rules of 20 doors), so devices take 199 kinds of
card set. Printed, never asserted:

* build time of a full publish (every device a snapshot) and of a one-card revocation
  (every device a delta), bytes per device and in total, delta vs full;
* the revocation build as a fresh `edge-provision publish` makes it (nothing in memory:
  the configurations' facts come from SITE/.config-facts.json);
* revocation -> denied end to end: the operator's registry change, the build, the publish
  to every device's topic on a private mosquitto, and --stores devices (spread over the
  site, each with its store holding the base and its own agent MQTT link subscribed to its
  topics) applying the delta until the card is denied there: median / p95 / p99 over those
  devices, with the apply alone (verify + one transaction), and the bytes sent (delta vs
  what a full publish sends).

    python bench/credentials_delta.py [--holders 100000] [--devices 2000] [--stores 50]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import queue
import random
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.core.clock import Instant
from edge.link.messages import InboundMessage
from edge.link.mqtt import MqttLink
from edge.remote import SnapshotVerifier
from edge.signing import load_public_key
from edge.store import Store
from edge.store.connection import write_transaction
from edge.store.credentials import SqliteCredentials
from firmware_config.model import MqttConfig
from provisioning import config_facts, deltas
from provisioning.credential_sets import Built
from provisioning.publish import Outcome, build_all, commit_bases, send
from provisioning.registry import Registry, change_cards
from provisioning.rules import add_rule
from simulator.broker import Broker
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


REVOKED = _ref(42)  # S000042's card, revoked end to end


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class BenchDevice:
    """One device: its store (holding the base), its agent link, and a worker applying what
    the link hands over, as an agent's main loop does."""

    def __init__(self, tmp: Path, port: int, public: Ed25519PublicKey, base: Built) -> None:
        self.device = base.device
        self.path = tmp / f"{base.device}.db"
        self.verifier = SnapshotVerifier(public, "bench-site", base.device)
        self.inbox: queue.SimpleQueue[InboundMessage] = queue.SimpleQueue()
        self.ready = threading.Event()
        self.denied_at: float | None = None  # perf_counter() once the card is denied here
        self.apply_ms: float | None = None
        self.error: str | None = None
        self._worker = threading.Thread(target=self._work, args=(base,), daemon=True)
        self._worker.start()
        if not self.ready.wait(120):
            raise RuntimeError(f"{self.device}: the base snapshot was not applied")
        self.link = MqttLink(
            MqttConfig(host="127.0.0.1", port=port),
            site="bench-site",
            device=base.device,
            store_path=self.path,
            status=lambda conn, state: {"state": state},
            on_message=self.inbox.put,
        )

    def __repr__(self) -> str:
        return f"<BenchDevice {self.device}>"

    def _work(self, base: Built) -> None:
        store = Store(self.path)
        try:
            result = self.verifier.apply(base.data, store.db, Instant(0.0, datetime.now(UTC)))
            self.error = result.error
            self.ready.set()
            while self.denied_at is None:
                message = self.inbox.get()
                if not message.topic.endswith("/credentials/delta") or not message.payload:
                    continue
                t0 = time.perf_counter()
                result = self.verifier.apply(
                    message.payload, store.db, Instant(0.0, datetime.now(UTC)), delta=True
                )
                self.apply_ms = (time.perf_counter() - t0) * 1e3
                credentials = SqliteCredentials(store.db)
                if result.error is not None:
                    self.error = result.error
                elif credentials.denied(REVOKED) is not None and credentials.find(REVOKED) is None:
                    self.denied_at = time.perf_counter()
        finally:
            store.close()


def revocation_to_denied(
    tmp: Path, site: Path, registry: Registry, bases: list[Built], full_bytes: int, timeout_s: float
) -> None:
    """Revoke a card, build, publish to every device's topic, and time it until denied."""
    broker = Broker(tmp / "broker")
    broker.start()
    public = load_public_key(site / "keys" / "credentials.pub")
    devices = [BenchDevice(tmp, broker.port, public, b) for b in bases]
    try:
        for d in devices:
            d.link.start()
        for d in devices:
            if not d.link.connected.wait(60):
                raise RuntimeError(f"{d.device}: its link did not connect")
        config_facts.forget()  # the operator's publish starts as a fresh process would
        start = time.perf_counter()
        change_cards(registry, "S000042", "revoked", None)
        built = build_all(registry, site)
        t_built = time.perf_counter()
        send(MqttConfig(host="127.0.0.1", port=broker.port), "bench-site", built, "bench-op", 0.0)
        t_sent = time.perf_counter()
        deadline = time.monotonic() + timeout_s
        while any(d.denied_at is None for d in devices) and time.monotonic() < deadline:
            time.sleep(0.01)  # measuring: poll the devices' flags
    finally:
        for d in devices:
            d.link.close()
        broker.stop()
    late = [d.device for d in devices if d.denied_at is None]
    sent = sum(len(b.data) for b in built)
    print(
        f"revocation -> denied on {len(devices)} of {len(built)} devices (spread over the site), "
        f"through mosquitto 127.0.0.1 and each device's agent link:"
    )
    print(
        f"  registry change + build {t_built - start:.2f} s, publish of {len(built)} topics "
        f"{t_sent - t_built:.2f} s ({sum(b.kind == 'delta' for b in built)} deltas)"
    )
    if late:
        errors = {d.device: d.error for d in devices if d.error}
        print(f"  NOT denied within {timeout_s:g} s on {len(late)}: {late[:5]}… errors {errors}")
    denied = [(d.denied_at - start) * 1e3 for d in devices if d.denied_at is not None]
    applied = [d.apply_ms for d in devices if d.apply_ms is not None]
    if denied:
        print(
            f"  revocation -> denied: median {statistics.median(denied):.0f} ms  "
            f"p95 {pct(denied, 0.95):.0f} ms  p99 {pct(denied, 0.99):.0f} ms"
        )
    if applied:
        print(
            f"  delta apply (verify + transaction): median {statistics.median(applied):.2f} ms  "
            f"p95 {pct(applied, 0.95):.2f} ms  p99 {pct(applied, 0.99):.2f} ms"
        )
    print(
        f"  bytes sent: {sent / 1e6:.3f} MB of deltas vs {full_bytes / 1e6:.1f} MB a full "
        f"publish sends ({sent / full_bytes:.5f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--holders", type=int, default=100_000)
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--stores", type=int, default=50, help="devices that apply it")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for them")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-delta-"))
    start = time.perf_counter()
    site = make_site(tmp, args.holders, args.devices)
    print(
        f"# {platform.machine()} {os.cpu_count()} cores, Python {sys.version.split()[0]}; "
        f"{args.holders:,} cardholders, {args.devices:,} gates over 200 doors; "
        f"registry written in {time.perf_counter() - start:.1f} s"
    )
    registry = Registry(site / "registry.db")
    start = time.perf_counter()
    full = build_all(registry, site)
    full_s = time.perf_counter() - start
    commit_bases(registry, full, Outcome(full[0].version, {}))  # as a publish that was sent
    sizes = [len(b.data) for b in full]
    step = max(1, len(full) // max(1, args.stores))
    kept = full[::step][: args.stores]  # spread over the publish order, not its first
    del full
    full_bytes = sum(sizes)
    print(
        f"full publish:  build {full_s:7.1f} s  per device median {statistics.median(sizes) / 1e3:8.1f} kB"
        f"  total {full_bytes / 1e6:9.1f} MB  ({len(sizes)} full)"
    )
    change_cards(registry, "S000041", "revoked", None)
    config_facts.forget()  # as a fresh `edge-provision publish`: facts from the kept file
    start = time.perf_counter()
    revocation = build_all(registry, site)
    delta_s = time.perf_counter() - start
    delta_bytes = sum(len(b.data) for b in revocation)
    print(
        f"revocation:    build {delta_s:7.2f} s  per device median {statistics.median(len(b.data) for b in revocation):8.0f} B "
        f"  total {delta_bytes / 1e6:9.3f} MB  ({sum(b.kind == 'delta' for b in revocation)} deltas)"
    )
    print(f"delta / full: bytes {delta_bytes / full_bytes:.5f}, build time {delta_s / full_s:.4f}")
    del revocation
    # The devices' stores hold the base; the delta they get covers both revocations.
    revocation_to_denied(tmp, site, registry, kept, full_bytes, args.timeout)
    registry.close()


if __name__ == "__main__":
    main()
