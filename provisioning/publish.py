"""Publish credentials: per device a signed snapshot, or a delta on top of its last one.

Each device gets only what it needs. On the broker a device's retained `credentials` topic
holds its last full snapshot (the base) and `credentials/delta` the one cumulative delta
from that base to the current version (empty when the snapshot is current). An emptied
retained message does not reach a site whose bridge was cut off meanwhile, so a site broker
may keep sending a delta on an older base with the new snapshot: a device ignores a delta
that brings nothing newer than the snapshot it holds (`SqliteCredentials.apply_delta`).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from edge.link.mqtt import LinkError, publish_and_watch
from edge.link.topics import credentials as credentials_topic
from edge.link.topics import credentials_delta as delta_topic
from edge.link.topics import status as status_topic
from edge.link.topics import status_filter
from edge.store.connection import write_transaction
from firmware_config.model import MqttConfig
from provisioning import deltas
from provisioning.config_facts import ConfigFacts, DeviceFacts
from provisioning.credential_sets import Built, SetBuilder
from provisioning.deltas import DELTA_SHARE
from provisioning.device_view import DeviceView
from provisioning.keys import SiteKeys
from provisioning.options import status_version
from provisioning.registry import Registry, short_ref
from provisioning.rules import RuleBook, anti_passback_zones

LOCK_FILE = ".publish.lock"


@contextmanager
def publishing(site_dir: Path) -> Iterator[None]:
    """Hold the site's publish lock (SITE/.publish.lock) while building and sending.

    Two publishes at once (two desk actions, a desk action and `edge-provision publish`)
    would interleave versions, and as the same broker account they would also knock each
    other off the broker (the account is the client id): the lock makes them take turns.
    """
    with open(site_dir / LOCK_FILE, "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def next_version(registry: Registry) -> int:
    """Return the site's next credential version (persisted, strictly increasing)."""
    with write_transaction(registry.db) as db:
        row = db.execute("SELECT value FROM settings WHERE key = 'version'").fetchone()
        version = int(row[0]) + 1 if row else 1
        db.execute(
            "INSERT INTO settings (key, value) VALUES ('version', ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [str(version)],
        )
    return version


def device_ids(registry: Registry) -> list[str]:
    """Return every device a publish goes to, by id."""
    return [r[0] for r in registry.db.execute("SELECT id FROM devices ORDER BY id")]


def device_facts(site_dir: Path, devices: list[str]) -> dict[str, DeviceFacts]:
    """Return each device's configuration facts, validating only configurations not seen."""
    kept = ConfigFacts(site_dir)
    found = {d: kept.facts(site_dir / "devices" / f"{d}.toml") for d in devices}
    kept.save()
    return found


def check_zone_settings(
    registry: Registry, site_dir: Path, facts: dict[str, DeviceFacts] | None = None
) -> None:
    """Refuse (ValueError naming the zone, the devices, their values and the fix) when device
    configurations disagree on a zone's anti-passback and the site policy does not set it.

    The gates of a zone share positions; one that refuses what another lets in, or forgets
    at another hour, splits the line. `facts`: every device's, when the caller has them.
    """
    settled = anti_passback_zones(registry)
    if facts is None:
        facts = device_facts(site_dir, device_ids(registry))
    seen: dict[str, dict[tuple[str, str, str], list[str]]] = {}
    for device in device_ids(registry):
        # Only devices with a door into or out of the zone share its positions (a sensor
        # node watching it does not): the facts hold those zones' settings alone.
        for zone, mode, forgive, offline in facts[device].anti_passback:
            seen.setdefault(zone, {}).setdefault((mode, forgive, offline), []).append(device)
    for zone_id, values in sorted(seen.items()):
        if len(values) < 2 or zone_id in settled:
            continue
        if all(mode == "off" for mode, _, _ in values):
            continue  # off everywhere: when it is forgiven, or how it falls back, is moot
        found = "; ".join(
            f"{', '.join(devices)}: anti_passback={mode} forgive_at={forgive} offline={offline}"
            for (mode, forgive, offline), devices in sorted(values.items())
        )
        raise ValueError(
            f"zone {zone_id}: the device configurations disagree on its anti-passback ({found}); "
            f"make them agree, or set it for the whole site with `edge-provision rules "
            f"antipassback {zone_id} --mode hard|soft|off --forgive-at HH:MM --offline hard|soft`"
        )


def build_all(
    registry: Registry,
    site_dir: Path,
    devices: list[str] | None = None,
    now: datetime | None = None,
    *,
    full: bool = False,
    delta_share: float = DELTA_SHARE,
) -> list[Built]:
    """Build each device's (all by default) snapshot, or its delta when that is small.

    A device gets a delta on top of its last full snapshot when it has one, its policy and
    the kind of cards it takes are unchanged, and the delta stays under `delta_share` of
    that snapshot's size; otherwise (or with `full`) a full snapshot, its new base. Live
    day passes go in as their spare cards, valid until the pass ends (`now` decides which
    passes are live; the current time by default).

    A full snapshot becomes the device's base only through `commit_bases`, once `send` has
    put it on the broker: deltas are never built on a snapshot no device can hold.
    """
    site = registry.site()
    targets = devices or device_ids(registry)
    facts = device_facts(site_dir, sorted({*device_ids(registry), *targets}))
    check_zone_settings(registry, site_dir, facts)
    deltas.ensure(registry)
    keys = SiteKeys(site_dir / "keys")
    private = keys.load_private("credentials")
    version = next_version(registry)
    now = now or datetime.now(UTC)
    # The journal's position first, then the cards: a change made meanwhile is in the
    # snapshot and comes again in the next delta (harmless), never in neither.
    builder = SetBuilder(
        registry,
        private,
        site=site["slug"],
        version=version,
        now=now,
        journal=deltas.head(registry.db),
    )
    views = Views(RuleBook(registry), version)
    known = {} if full else deltas.bases(registry.db)
    built = []
    for device in targets:
        view, fingerprint = views.view(device, facts[device])
        base = known.get(device)
        one = None if base is None else builder.delta(view, base, delta_share, fingerprint)
        if one is None:
            one = builder.full(view)
            record = deltas.Base(version, builder.journal, fingerprint, len(one.data))
            one = replace(one, new_base=record)
        built.append(one)
    with write_transaction(registry.db) as db:
        for b in built:
            db.execute(
                "INSERT INTO published (device, version, published_at, cards) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(device) DO UPDATE SET version = excluded.version, "
                "published_at = excluded.published_at, cards = excluded.cards",
                [b.device, b.version, now.isoformat(), b.cards],
            )
        detail: dict[str, object] = {"version": version, "devices": [b.device for b in built]}
        detail["deltas"] = sorted(b.device for b in built if b.base is not None)
        if builder.left_out:
            detail["passes_left_out"] = sorted(short_ref(r) for r in builder.left_out)
        registry.record(db, "publish", **detail)
    return built


def commit_bases(registry: Registry, built: list[Built], result: Outcome) -> None:
    """Record the full snapshots `send` put on the broker as the devices' bases.

    Call only after `send` returned. A device whose status shows a version below the base
    its delta was built on does not hold that base (a broker that lost its retained
    snapshot, a device restored from an old copy): its base is dropped, so the next publish
    sends it a full snapshot instead of a delta it would refuse.
    """
    with write_transaction(registry.db) as db:
        for b in built:
            if b.new_base is not None:
                deltas.set_base(db, b.device, b.new_base)
            elif b.base is not None and 0 < result.devices.get(b.device, 0) < b.base:
                deltas.drop_bases(db, [b.device])
        deltas.prune(db)


def forget_bases(registry: Registry, built: list[Built]) -> None:
    """Drop the bases of the devices `built` sent full snapshots to, after a failed `send`.

    What the broker retains for them is unknown (some messages may have gone): their next
    publish is a full snapshot, which every device applies whatever it holds.
    """
    with write_transaction(registry.db) as db:
        deltas.drop_bases(db, [b.device for b in built if b.new_base is not None])


class Views:
    """Each device's view at one version: devices alike in what a view depends on (doors,
    zones, keypads, role, readers) share one policy and one fingerprint."""

    def __init__(self, book: RuleBook, version: int) -> None:
        self.book = book
        self.version = version
        self._shapes: dict[tuple[object, ...], tuple[DeviceView, str]] = {}

    def __repr__(self) -> str:
        return f"<Views v{self.version} shapes={len(self._shapes)}>"

    def view(self, device: str, facts: DeviceFacts) -> tuple[DeviceView, str]:
        """Return the device's view and its fingerprint."""
        key = (facts.doors, facts.zones, facts.keypads, facts.role, facts.readers)
        shape = self._shapes.get(key)
        if shape is None:
            policy = self.book.policy(facts.doors, self.version, facts.zones)
            # The groups the device acts on: its rules, lockdown override, proof and PIN.
            wanted = {r.group for r in policy.rules} | set(policy.override_groups)
            wanted |= policy.authenticated_groups | policy.pin_groups
            view = DeviceView(
                "", policy, frozenset(wanted), facts.keypads, facts.role, facts.readers
            )
            shape = self._shapes[key] = (view, view.fingerprint())
        return replace(shape[0], device=device), shape[1]


@dataclass(frozen=True)
class Outcome:
    """How far a published version got: the version each device's status reports."""

    version: int
    devices: dict[str, int]  # device -> credentials version in its status (0: none seen)

    @property
    def late(self) -> list[str]:
        """Return the devices that have not applied the version, by id."""
        return sorted(d for d, v in self.devices.items() if v < self.version)

    def summary(self) -> str:
        """Return "applied on N of M devices", naming the devices that have not."""
        late = self.late
        text = f"v{self.version} applied on {len(self.devices) - len(late)} of {len(self.devices)}"
        text += " devices"
        return text + (f"; not yet on {', '.join(late)}" if late else "")


def outcome(version: int, statuses: dict[str, dict[str, object] | None]) -> Outcome:
    """Return the outcome of `version` from each device's latest status (None: never seen)."""
    return Outcome(version, {d: status_version(s) for d, s in statuses.items()})


def send(
    config: MqttConfig, site: str, built: list[Built], client_id: str, wait_s: float
) -> Outcome:
    """Publish built snapshots and deltas retained, then wait up to `wait_s` for every device
    to apply them.

    A full snapshot clears the device's retained delta first (the delta was built on the
    snapshot it replaces); a delta replaces the retained one and leaves the snapshot.

    The devices' retained statuses say which have; a device that has not within `wait_s`
    is late in the outcome. Raises LinkError (an EdgeError) when the broker cannot be used
    or there is nothing to send.
    """
    if not built:
        raise LinkError("the site has no devices to publish to; add them with device add")
    version = max(b.version for b in built)
    by_topic = {status_topic(config.root, site, b.device): b.device for b in built}

    def applied(seen: dict[str, dict[str, object]]) -> bool:
        return all(status_version(seen.get(t)) >= version for t in by_topic)

    seen = publish_and_watch(
        config,
        client_id,
        [message for b in built for message in _messages(config.root, site, b)],
        status_filter(config.root, site),
        applied,
        wait_s,
    )
    return outcome(version, {device: seen.get(topic) for topic, device in by_topic.items()})


def _messages(root: str, site: str, built: Built) -> list[tuple[str, bytes]]:
    if built.base is not None:
        return [(delta_topic(root, site, built.device), built.data)]
    return [
        (delta_topic(root, site, built.device), b""),
        (credentials_topic(root, site, built.device), built.data),
    ]
