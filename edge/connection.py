"""How an agent meets the network: its MQTT link and its remote side, built before it.

The agent's queue (`Inbox`) is made first and handed to the link and the snapshot worker,
and the link is handed to the remote side and the agent as the narrow `Uplink` they need,
so nothing is wired into an object after it is built.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

import edge
from edge.core.clock import Clock
from edge.inbox import Inbox
from edge.link.crossings import served_zones
from edge.link.mqtt import LinkError, MqttLink
from edge.link.status import status_builder
from edge.peers import PeerCrossings
from edge.remote import (
    InlineSnapshots,
    NoReplies,
    Remote,
    ReplyChannel,
    Snapshots,
    SnapshotVerifier,
    SnapshotWorker,
)
from edge.runtime import Core, InboundHandler, NoRemote
from edge.signing import SignatureError, load_public_key
from firmware_config.loader import config_hash
from firmware_config.model import DeviceConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RemoteKeys:
    """The site's public keys that commands and credential snapshots are checked against."""

    commands: Ed25519PublicKey
    credentials: Ed25519PublicKey


def remote_keys(config: DeviceConfig) -> RemoteKeys | None:
    """Load both public keys; None (each failure logged) if either cannot be read."""
    keys = {}
    for name, path in (
        ("commands", config.site.commands_key_file),
        ("credentials", config.site.credentials_key_file),
    ):
        try:
            keys[name] = load_public_key(path)
        except SignatureError as exc:
            # Local decisions go on; only remote commands or snapshots are refused.
            log.error("%s; %s from the network will be refused", exc, name)
    if len(keys) < 2:
        return None
    return RemoteKeys(commands=keys["commands"], credentials=keys["credentials"])


class Uplink(ReplyChannel, Protocol):
    """What the agent needs from its MQTT link (`edge.link.mqtt.MqttLink`)."""

    def wake(self) -> None:
        """New events are in the outbox."""

    def request_status(self) -> None:
        """What the status shows has changed."""

    @property
    def connected(self) -> threading.Event | None:
        """Set while the broker is reachable (None: this uplink never reaches one)."""


class Offline(NoReplies):
    """The uplink of an agent without a broker: events wait in the outbox."""

    # Never connected: an agent alone is never cut off from peers it does not have.
    connected: threading.Event | None = None

    def __repr__(self) -> str:
        return "<Offline>"

    def wake(self) -> None:
        """Nobody drains the outbox."""

    def request_status(self) -> None:
        """No status to publish."""


@dataclass(frozen=True)
class Connection:
    """How an agent meets the network: its queue, its link, the keys its remote side checks.

    Without keys the agent takes no commands or snapshots. `worker` applies snapshots on a
    thread of their own, so a large set never holds the doors up.
    """

    inbox: Inbox
    uplink: Uplink
    keys: RemoteKeys | None
    worker: bool = True


def build_link(config: DeviceConfig, inbox: Inbox, clock_synced: Callable[[], bool]) -> MqttLink:
    """Build the MQTT link that drains the outbox and puts inbound messages on `inbox`."""
    return MqttLink(
        config.mqtt,
        site=config.site.id,
        device=config.device.id,
        store_path=config.store.path,
        status=status_builder(
            site=config.site.id,
            device=config.device.id,
            software=edge.__version__,
            config_hash=config_hash(config),
            clock_synced=clock_synced,
            stale_after_s=config.device.credentials_stale_after_h * 3600,
        ),
        on_message=inbox.put,
        crossing_zones=served_zones(config),
    )


def build_remote(
    config: DeviceConfig,
    core: Core,
    connection: Connection,
    clock: Clock,
    clock_synced: Callable[[], bool],
) -> InboundHandler:
    """Build the remote side that checks commands and snapshots, or one that ignores them."""
    keys = connection.keys
    if keys is None:
        return NoRemote()
    verifier = SnapshotVerifier(keys.credentials, config.site.id, config.device.id, clock_synced)
    snapshots: Snapshots = (
        SnapshotWorker(verifier, config.store.path, clock, connection.inbox.put)
        if connection.worker
        else InlineSnapshots(verifier, core.store)
    )
    return Remote(
        root=config.mqtt.root,
        site=config.site.id,
        device=config.device.id,
        controller=core.controller,
        store=core.store,
        credentials=core.credentials,
        commands_key=keys.commands,
        clock_synced=clock_synced,
        replies=connection.uplink,
        snapshots=snapshots,
        peers=PeerCrossings(
            root=config.mqtt.root,
            site=config.site.id,
            device=config.device.id,
            zones=served_zones(config),
            tracker=core.controller.passback,
            store=core.store,
            clock_synced=clock_synced,
        ),
    )


def build_connection(
    config: DeviceConfig, clock_synced: Callable[[], bool]
) -> tuple[MqttLink | None, Connection]:
    """Build the MQTT link (None if it cannot be set up) and the agent's side of it."""
    keys = remote_keys(config)
    inbox = Inbox()
    try:
        mqtt = build_link(config, inbox, clock_synced)
    except LinkError as exc:
        log.error("%s: the agent runs without the network; events wait in the outbox", exc)
        return None, Connection(inbox, Offline(), keys)
    return mqtt, Connection(inbox, mqtt, keys)
