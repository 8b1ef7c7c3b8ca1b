"""The composition root: build one agent, complete, from a validated configuration.

Its network side (the queue, the MQTT link, the remote side) comes in ready-made from
`edge.connection`; without it the agent runs alone.

Hardware comes in through two factories — gpiozero's pin factory and a reader factory —
so the same wiring serves a Raspberry Pi (lgpio, PC/SC and nfcpy readers) and the
simulator (MockFactory, simulated readers).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import edge
from edge.calendar import site_calendar
from edge.card_layout import DESFIRE_KEY_NO
from edge.cardref import card_reference
from edge.connection import Connection, Offline, build_remote
from edge.core.clock import Clock, Instant
from edge.core.controller import Controller
from edge.core.events import PresenceSensorStatus
from edge.core.outputs import EventKind, Output, record
from edge.core.spec import DeviceSpec
from edge.credentials_freshness import CredentialRefresh
from edge.errors import EdgeError
from edge.gpio import (
    GpioIndicator,
    GpioInput,
    GpioRelay,
    HardwareError,
    InputKind,
    PinFactory,
    UnavailableRelay,
)
from edge.inbox import Inbox
from edge.keypad import Keypad, MatrixKeypad, open_usb_keypad
from edge.ports import CardKeys, CardReader, CardReferencer, Indicator, Input, Relay
from edge.runtime import Agent, Core, Hardware, Network, Pace
from edge.sensors.ld2410 import PresenceRule
from edge.store import Store
from edge.store import state as saved_state
from edge.store.card_keys import CardKeyLookup
from edge.store.connection import LOOP_BUSY_TIMEOUT_MS
from edge.store.credentials import SqliteCredentials
from edge.system import SystemdNotifier
from edge.wiring import device_spec
from firmware_config.loader import config_hash
from firmware_config.model import DeviceConfig, Ld2410Presence, ReaderConfig
from firmware_config.readers import MatrixKeypad as MatrixKeypadConfig

log = logging.getLogger(__name__)

ReaderFactory = Callable[[ReaderConfig, CardReferencer, CardKeys], CardReader]


def hardware_reader(
    config: ReaderConfig, referencer: CardReferencer, card_keys: CardKeys
) -> CardReader:
    """Build a real reader: PC/SC through pyscard, or nfcpy."""
    match config.kind:
        case "pcsc":
            from edge.readers.pcsc import PcscCardReader  # noqa: PLC0415 -- pyscard is optional (the pcsc extra)

            return PcscCardReader(
                config.id, config.match, referencer, config.debounce_s, card_keys=card_keys
            )
        case "nfc":
            from edge.readers.nfc import NfcCardReader  # noqa: PLC0415 -- nfcpy is optional (the nfc extra)

            return NfcCardReader(
                config.id, config.path, referencer, config.debounce_s, card_key=card_keys
            )
    raise EdgeError(
        f'reader {config.id}: kind "sim" runs only under the simulator '
        "(python -m simulator.agent); on a Pi use pcsc or nfc"
    )


def require_card_key(config: DeviceConfig, card_key: bytes | None) -> None:
    """Refuse a device with readers but no site card key (EdgeError names the fix)."""
    if card_key is None and config.readers:
        raise EdgeError(
            f"device {config.device.id} has readers but no card key; set site.card_key_file"
        )


def build_agent(
    config: DeviceConfig,
    *,
    card_key: bytes | None,
    pin_factory: PinFactory,
    clock: Clock,
    reader_factory: ReaderFactory = hardware_reader,
    clock_synced: Callable[[], bool] = lambda: True,
    notifier: SystemdNotifier | None = None,
    connection: Connection | None = None,
) -> tuple[Agent, list[Output]]:
    """Return the agent and the start-up outputs to hand to `Agent.start`.

    Without a connection the agent runs alone: no link, no commands, no snapshots.
    """
    connection = connection or Connection(Inbox(), Offline(), keys=None)
    # The loop waits at most 200 ms for another writer (a `credentials load`): a commit that
    # times out keeps its events in memory, and the doors never wait behind a long write.
    store = Store(config.store.path, busy_timeout_ms=LOOP_BUSY_TIMEOUT_MS)
    credentials = SqliteCredentials(store.db)
    spec = device_spec(config)
    controller = Controller(
        spec, credentials.policy(), credentials, site_calendar(config.site.closure_days)
    )
    now = clock.now()
    startup = _startup(config, store, credentials, controller, now)
    faults: list[HardwareError] = []
    broken: dict[str, str] = {}  # presence sensor -> why it cannot be read
    require_card_key(config, card_key)
    # A device without readers holds no card key, and nothing asks it for a reference.
    referencer: CardReferencer = partial(card_reference, card_key or b"")
    card_keys = CardKeyLookup(
        config.store.path, DESFIRE_KEY_NO.get(config.device.role, DESFIRE_KEY_NO["door"])
    )
    hardware = Hardware(
        relays=_relays(config, spec, pin_factory, faults),
        indicators=_indicators(config, pin_factory, faults),
        inputs=_inputs(config, pin_factory, faults, broken),
        readers=[reader_factory(r, referencer, card_keys) for r in config.readers],
        card_keys=card_keys,
        keypads=_keypads(config, pin_factory, faults),
    )
    for problem in faults:
        log.error("hardware fault: %s", problem)
        startup.append(
            record(EventKind.ALARM, "hardware_fault", now.utc, state="raised", detail=str(problem))
        )
    # A sensor that cannot be read is in fault from the start: its zone never reads vacant
    # on its silence, and its occupancy says sensor_ok false.
    for sensor_id, detail in broken.items():
        startup += controller.handle(PresenceSensorStatus(sensor_id, ok=False, detail=detail), now)
    refresh = CredentialRefresh(
        controller,
        credentials,
        stale_after_s=config.device.credentials_stale_after_h * 3600,
        changed=connection.uplink.request_status,
    )
    core = Core(controller, store, refresh)
    network = Network(
        inbox=connection.inbox,
        remote=build_remote(config, core, connection, clock, clock_synced),
        committed=connection.uplink.wake,
        link_up=connection.uplink.connected,
    )
    pace = Pace(clock, clock_synced, notifier or SystemdNotifier(""))
    return Agent(core, hardware, network, pace), startup


def _startup(
    config: DeviceConfig,
    store: Store,
    credentials: SqliteCredentials,
    controller: Controller,
    now: Instant,
) -> list[Output]:
    """Records of the start (and of a store moved aside), then the restored door state."""
    modes, positions, counts = saved_state.load(store.db)
    startup: list[Output] = []
    if store.moved_aside is not None:
        startup.append(
            record(
                EventKind.ALARM,
                "store_corrupt",
                now.utc,
                state="raised",
                moved_to=store.moved_aside.name,
            )
        )
    startup.append(
        record(
            EventKind.SYSTEM,
            "started",
            now.utc,
            software=edge.__version__,
            config_hash=config_hash(config),
            credentials=credentials.count(),
            policy_version=controller.policy.version,
        )
    )
    # Alarms raised before a restart are cleared now; the inputs, read again at start,
    # raise them again if the condition still holds (a door still open, a reader still gone).
    for alarm in saved_state.active_alarms(store.db):
        detail = {k: alarm[k] for k in ("door", "reader", "zone", "sensor") if alarm.get(k)}
        startup.append(
            record(
                EventKind.ALARM,
                str(alarm["type"]),
                now.utc,
                state="cleared",
                cause="restart",
                **detail,
            )
        )
    startup += controller.restore(now, modes, positions, counts)
    return startup


def _relays(
    config: DeviceConfig, spec: DeviceSpec, factory: PinFactory, faults: list[HardwareError]
) -> dict[str, Relay]:
    relays: dict[str, Relay] = {}
    for d, spec_door in zip(config.doors, spec.doors, strict=True):
        try:
            relays[d.id] = GpioRelay(
                d.id,
                d.relay.pin,
                active_high=d.relay.active_high,
                fail=spec_door.fail,
                factory=factory,
            )
        except HardwareError as fault:
            faults.append(fault)
            relays[d.id] = UnavailableRelay(d.id, str(fault))
    return relays


def _indicators(
    config: DeviceConfig, factory: PinFactory, faults: list[HardwareError]
) -> dict[str, list[Indicator]]:
    indicators: dict[str, list[Indicator]] = {}
    for i in config.indicators:
        try:
            indicator = GpioIndicator(
                i.reader,
                green=i.green_pin,
                red=i.red_pin,
                buzzer=i.buzzer_pin,
                active_high=i.active_high,
                factory=factory,
            )
        except HardwareError as fault:
            faults.append(fault)
            continue
        indicators.setdefault(i.reader, []).append(indicator)
    return indicators


def _keypads(
    config: DeviceConfig, factory: PinFactory, faults: list[HardwareError]
) -> list[Keypad]:
    keypads: list[Keypad] = []
    for r in config.readers:
        try:
            if isinstance(r.keypad, MatrixKeypadConfig):
                keypads.append(MatrixKeypad(r.id, r.keypad.rows, r.keypad.cols, factory=factory))
            elif r.keypad is not None:
                keypads.append(open_usb_keypad(r.id, str(r.keypad.device)))
        except HardwareError as fault:  # its reader's PIN cannot be keyed: denied by timeout
            faults.append(fault)
    return keypads


def _inputs(
    config: DeviceConfig,
    factory: PinFactory,
    faults: list[HardwareError],
    broken: dict[str, str],
) -> list[Input]:
    """Build the inputs; a presence sensor that cannot be built goes into `broken` too."""
    wired: list[tuple[InputKind, str, Any, str]] = []
    for d in config.doors:
        wired += [
            ("contact", d.id, d.contact, "open_when"),
            ("exit_button", d.id, d.exit_button, "pressed_when"),
            ("fire_input", d.id, d.fire_input, "alarm_when"),
        ]
    wired += [
        ("presence", p.id, p, "occupied_when")
        for p in config.presence
        if not isinstance(p, Ld2410Presence)
    ]
    wired += [("room_door", d.id, d, "open_when") for d in config.room_doors]
    inputs: list[Input] = []
    for sensor in config.presence:
        if isinstance(sensor, Ld2410Presence):
            try:
                inputs.append(_radar(sensor))
            except HardwareError as fault:
                faults.append(fault)
                broken[sensor.id] = _detail(fault)
    for kind, target, part, level in wired:
        if part is None:
            continue
        try:
            inputs.append(
                GpioInput(
                    kind,
                    target,
                    part.pin,
                    asserted_when=getattr(part, level),
                    pull=part.pull,
                    bounce_ms=getattr(part, "bounce_ms", 0),
                    factory=factory,
                )
            )
        except HardwareError as fault:
            faults.append(fault)
            if kind == "presence":
                broken[target] = _detail(fault)
    return inputs


def _detail(fault: HardwareError) -> str:
    """Return the fault's text cut to the length a presence_sensor_fault carries."""
    return str(fault)[:200]


def _radar(config: Ld2410Presence) -> Input:
    """Build an LD2410 read on its serial port (its silence is a fault, not an error here)."""
    try:
        from edge.sensors.ld2410_serial import Ld2410SerialSensor  # noqa: PLC0415 -- pyserial is needed only by a device with a radar on a serial port
    except ImportError as exc:
        raise HardwareError(
            f"presence sensor {config.id}: cannot read an LD2410 without pyserial ({exc}); "
            "install it in the agent's environment: /opt/edge/venv/bin/pip install pyserial"
        ) from exc

    rule = PresenceRule(config.max_gate, config.moving_energy_min, config.still_energy_min)
    return Ld2410SerialSensor(config.id, config.port, config.baud, rule)
