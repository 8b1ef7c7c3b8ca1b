"""Run one agent as a service: logging, the effective configuration, signals, the loop."""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Callable
from types import FrameType

import edge
from edge.app import ReaderFactory, build_agent, hardware_reader
from edge.core.clock import Clock
from edge.gpio import PinFactory
from edge.link.mqtt import LinkError, MqttLink
from edge.link.status import status_builder
from edge.remote import Remote, SnapshotWorker
from edge.runtime import Agent
from edge.signing import SignatureError, load_public_key
from edge.system import SystemdNotifier
from firmware_config.loader import config_hash, masked
from firmware_config.model import DeviceConfig

log = logging.getLogger("edge.agent")


def serve(
    config: DeviceConfig,
    *,
    card_key: bytes,
    pin_factory: PinFactory,
    clock: Clock,
    clock_synced: Callable[[], bool],
    reader_factory: ReaderFactory = hardware_reader,
    prepare: Callable[[Agent], None] | None = None,
    ready: Callable[[Agent], None] | None = None,
    link: bool = True,
) -> int:
    """Build the agent, run it until SIGTERM or SIGINT, then leave every door de-energised."""
    log.info(
        "starting device %s (config %s): %s",
        config.device.id,
        config_hash(config),
        json.dumps(masked(config), default=str, ensure_ascii=False, sort_keys=True),
    )
    agent, startup = build_agent(
        config,
        card_key=card_key,
        pin_factory=pin_factory,
        clock=clock,
        reader_factory=reader_factory,
        clock_synced=clock_synced,
        notifier=SystemdNotifier(),
    )

    mqtt = connect(config, agent, clock_synced) if link else None

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("%s: finishing the current event, then stopping", signal.Signals(signum).name)
        agent.stop()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if prepare is not None:
            prepare(agent)
        agent.start(startup)
        if mqtt is not None:
            mqtt.start()
        log.info("device %s running: %r", config.device.id, agent)
        if ready is not None:
            ready(agent)
        agent.run()
    finally:
        try:
            if mqtt is not None:
                mqtt.close()
            if agent.remote is not None and agent.remote.worker is not None:
                agent.remote.worker.close()
        finally:
            agent.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("device %s stopped; relays de-energised, store closed", config.device.id)
    return 0


def connect(
    config: DeviceConfig, agent: Agent, clock_synced: Callable[[], bool]
) -> MqttLink | None:
    """Attach the remote side (commands, credentials) and the MQTT link to an agent."""
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
    if agent.credentials is not None and len(keys) == 2:
        remote = Remote(
            root=config.mqtt.root,
            site=config.site.id,
            device=config.device.id,
            controller=agent.controller,
            store=agent.store,
            credentials=agent.credentials,
            commands_key=keys["commands"],
            credentials_key=keys["credentials"],
            refresh=agent.check_credentials,
            clock_synced=clock_synced,
        )
        agent.remote = remote
        remote.worker = SnapshotWorker(remote, config.store.path, agent.clock, agent.emit)
    try:
        link = _link(config, agent, clock_synced)
    except LinkError as exc:
        log.error("%s: the agent runs without the network; events wait in the outbox", exc)
        return None
    if agent.remote is not None:
        agent.remote.reply = link.reply
        agent.remote.resubscribe = link.resubscribe_credentials
    agent.on_committed.append(link.wake)
    agent.on_status_change.append(link.request_status)
    return link


def _link(config: DeviceConfig, agent: Agent, clock_synced: Callable[[], bool]) -> MqttLink:
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
        on_message=agent.emit,
    )
