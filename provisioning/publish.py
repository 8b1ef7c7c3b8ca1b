"""Publish credentials: one signed snapshot per device, with only what that device needs."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge.core.credentials import CardProfile, Credential, DenyReason
from edge.link.crossings import served_zones
from edge.link.mqtt import LinkError, publish_and_watch
from edge.link.topics import credentials as credentials_topic
from edge.link.topics import status as status_topic
from edge.link.topics import status_filter
from edge.pin_hash import parse_pin
from edge.snapshot import build
from edge.store.connection import write_transaction
from firmware_config.loader import load_config
from firmware_config.model import MqttConfig
from provisioning.card_keys import device_key
from provisioning.keys import SiteKeys
from provisioning.options import status_version
from provisioning.passes import pass_credentials
from provisioning.registry import Registry, short_ref
from provisioning.rules import anti_passback_zones, policy_for


@dataclass(frozen=True)
class Built:
    """One device's snapshot."""

    device: str
    version: int
    cards: int
    data: bytes


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


def check_zone_settings(registry: Registry, site_dir: Path) -> None:
    """Refuse (ValueError naming the zone, the devices, their values and the fix) when device
    configurations disagree on a zone's anti-passback and the site policy does not set it.

    The gates of a zone share positions; one that refuses what another lets in, or forgets
    at another hour, splits the line.
    """
    settled = anti_passback_zones(registry)
    seen: dict[str, dict[tuple[str, str, str], list[str]]] = {}
    for device in device_ids(registry):
        config = load_config(site_dir / "devices" / f"{device}.toml")
        # Only devices with a door into or out of the zone share its positions (a sensor
        # node watching it does not).
        served = served_zones(config)
        for zone in config.zones:
            if zone.id not in served:
                continue
            forgive = zone.anti_passback_forgive_at
            value = (
                zone.anti_passback,
                forgive.strftime("%H:%M") if forgive else "none",
                zone.anti_passback_offline,
            )
            seen.setdefault(zone.id, {}).setdefault(value, []).append(device)
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
) -> list[Built]:
    """Build a snapshot for each device (all by default): its doors' rules and their cards.

    Live day passes go in as their spare cards, valid until the pass ends (`now` decides
    which passes are live; the current time by default).
    """
    site = registry.site()
    check_zone_settings(registry, site_dir)
    keys = SiteKeys(site_dir / "keys")
    private = keys.load_private("credentials")
    version = next_version(registry)
    targets = devices or device_ids(registry)
    now = now or datetime.now(UTC)
    deny = {
        ref: DenyReason.LOST if status == "lost" else DenyReason.REVOKED
        for ref, status in registry.db.execute(
            "SELECT card_ref, status FROM cards WHERE status IN ('revoked', 'lost')"
        )
    }
    built = []
    skipped: set[str] = set()
    for device in targets:
        config = load_config(site_dir / "devices" / f"{device}.toml")
        zones = {z for d in config.doors for z in (d.inside_zone, d.outside_zone)}
        policy = policy_for(registry, {d.id for d in config.doors}, version, zones)
        # The groups the device acts on: its rules, lockdown override, proof and PIN demands.
        wanted = {r.group for r in policy.rules} | set(policy.override_groups)
        wanted |= policy.authenticated_groups | policy.pin_groups
        # A PIN hash goes only to a device with a keypad to key it on.
        keypads = any(r.keypad is not None for r in config.readers)
        credentials = []
        card_keys: dict[str, bytes] = {}
        for (
            ref,
            groups_json,
            valid_from,
            valid_until,
            profile_text,
            keys_json,
            pin,
        ) in registry.db.execute(
            "SELECT c.card_ref, p.groups, p.valid_from, p.valid_until, c.profile, c.card_keys, "
            "p.pin "
            "FROM cards c JOIN people p ON p.staff_no = c.staff_no WHERE c.status = 'active'"
        ):
            groups = frozenset(json.loads(groups_json)) & wanted
            if not groups:
                continue
            profile = CardProfile(profile_text)
            credentials.append(
                Credential(
                    ref,
                    groups,
                    datetime.fromisoformat(valid_from) if valid_from else None,
                    datetime.fromisoformat(valid_until) if valid_until else None,
                    profile,
                    parse_pin(pin) if pin and keypads else None,
                )
            )
            # Only the key this device checks the card with: never the master, never the
            # keys of other kinds of door (a sensor node has no readers and gets none).
            key = device_key(profile, json.loads(keys_json or "{}"), config.device.role)
            if key is not None and config.readers:
                card_keys[ref] = key
        # A card is in a snapshot once (devices key it by reference): a spare that is also
        # someone's own card (a registry from before that was refused) keeps the owner's.
        owned = {c.ref for c in credentials}
        for lent in pass_credentials(registry, now, wanted, keypads):
            if lent.ref in owned:
                skipped.add(lent.ref)
                continue
            owned.add(lent.ref)
            credentials.append(lent)
        data = build(
            private,
            site=site["slug"],
            device=device,
            version=version,
            policy=policy,
            credentials=credentials,
            deny=deny,
            issued_at=now,
            card_keys=card_keys,
        )
        built.append(Built(device, version, len(credentials), data))
    with write_transaction(registry.db) as db:
        for b in built:
            db.execute(
                "INSERT INTO published (device, version, published_at, cards) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(device) DO UPDATE SET version = excluded.version, "
                "published_at = excluded.published_at, cards = excluded.cards",
                [b.device, b.version, now.isoformat(), b.cards],
            )
        detail: dict[str, object] = {"version": version, "devices": [b.device for b in built]}
        if skipped:
            detail["passes_left_out"] = sorted(short_ref(r) for r in skipped)
        registry.record(db, "publish", **detail)
    return built


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
    """Publish built snapshots retained, then wait up to `wait_s` for every device to apply.

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
        [(credentials_topic(config.root, site, b.device), b.data) for b in built],
        status_filter(config.root, site),
        applied,
        wait_s,
    )
    return outcome(version, {device: seen.get(topic) for topic, device in by_topic.items()})
