"""Run one agent as a service: logging, the effective configuration, signals, the loop."""

from __future__ import annotations

import json
import logging
import signal
from collections.abc import Callable
from types import FrameType

from edge.app import ReaderFactory, build_agent, hardware_reader, require_card_key
from edge.connection import build_connection
from edge.core.clock import Clock
from edge.gpio import PinFactory
from edge.keys import read_card_key
from edge.runtime import Agent
from edge.system import SystemdNotifier
from firmware_config.loader import config_hash, masked
from firmware_config.model import DeviceConfig

log = logging.getLogger("edge.agent")


def device_card_key(config: DeviceConfig) -> bytes | None:
    """Read the site card key if the device has readers; a device without them reads none."""
    key_file = config.site.card_key_file
    return read_card_key(key_file) if config.readers and key_file is not None else None


def serve(
    config: DeviceConfig,
    *,
    card_key: bytes | None,
    pin_factory: PinFactory,
    clock: Clock,
    clock_synced: Callable[[], bool],
    reader_factory: ReaderFactory = hardware_reader,
    prepare: Callable[[Agent], None] | None = None,
    ready: Callable[[Agent], None] | None = None,
    link: bool = True,
) -> int:
    """Build the agent, run it until SIGTERM or SIGINT, then leave every door de-energised.

    `card_key` is None on a device without readers: it never holds the site card key.
    """
    require_card_key(config, card_key)
    log.info(
        "starting device %s (config %s): %s",
        config.device.id,
        config_hash(config),
        json.dumps(masked(config), default=str, ensure_ascii=False, sort_keys=True),
    )
    mqtt, connection = build_connection(config, clock_synced) if link else (None, None)
    agent, startup = build_agent(
        config,
        card_key=card_key,
        pin_factory=pin_factory,
        clock=clock,
        reader_factory=reader_factory,
        clock_synced=clock_synced,
        notifier=SystemdNotifier(),
        connection=connection,
    )

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
        finally:
            agent.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("device %s stopped; relays de-energised, store closed", config.device.id)
    return 0
