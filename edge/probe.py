"""Probe the hardware and files a configuration names, before the agent is started on a Pi."""

from __future__ import annotations

import glob
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError
from edge.keys import read_card_key
from edge.sensors.ld2410_serial import first_report
from edge.signing import load_public_key
from firmware_config.model import DeviceConfig, Ld2410Presence

LISTEN_S = 1.0
"""How long the probe listens on a radar's serial port (it reports about ten times a second)."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One probe: what was looked for, whether it is there, and what to do if not."""

    item: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.item}: {self.detail}"


def probe(
    config: DeviceConfig, gpio_chips: str = "/dev/gpiochip*", listen_s: float = LISTEN_S
) -> list[Finding]:
    """Look for every reader, radar port, the GPIO chip, the key files and the store directory."""
    return list(_probes(config, gpio_chips, listen_s))


def _probes(config: DeviceConfig, gpio_chips: str, listen_s: float) -> Iterator[Finding]:
    chips = sorted(glob.glob(gpio_chips))
    yield Finding(
        "GPIO",
        bool(chips),
        ", ".join(chips)
        if chips
        else "no /dev/gpiochip*: not a Raspberry Pi, or the kernel lacks GPIO",
    )
    store_dir = config.store.path.parent
    writable = store_dir.is_dir() and os.access(store_dir, os.W_OK)
    yield Finding(
        "store",
        writable,
        f"{store_dir} is writable"
        if writable
        else f"{store_dir} missing or not writable by this user",
    )
    key_file = config.site.card_key_file
    if config.readers and key_file is not None:
        yield _file("card key", lambda: read_card_key(key_file), key_file)
    elif not config.readers:
        yield Finding("card key", True, "none needed: this device has no readers")
    for name, path in (
        ("credentials key", config.site.credentials_key_file),
        ("commands key", config.site.commands_key_file),
    ):
        yield _file(name, lambda p=path: load_public_key(p), path)  # type: ignore[misc]
    pcsc = [r for r in config.readers if r.kind == "pcsc"]
    if pcsc:
        yield from _pcsc(pcsc)
    for reader in config.readers:
        if reader.kind == "nfc":
            yield _nfc(reader.id, reader.path)
    for sensor in config.presence:
        if isinstance(sensor, Ld2410Presence):
            yield _radar(sensor, listen_s)


def _file(item: str, read: Callable[[], object], path: Path) -> Finding:
    try:
        read()
    except EdgeError as exc:
        return Finding(item, False, str(exc))
    return Finding(item, True, f"{path} readable and well-formed")


def _pcsc(readers: list) -> Iterator[Finding]:  # type: ignore[type-arg]
    try:
        from edge.readers.pcsc import reader_names  # noqa: PLC0415 -- pyscard may be missing: a finding

        names = reader_names()
    except Exception as exc:  # pcscd down, pyscard missing: say so, per reader
        for r in readers:
            yield Finding(f"reader {r.id}", False, f"PC/SC unavailable ({exc}); is pcscd running?")
        return
    for r in readers:
        found = [n for n in names if r.match in n]
        detail = (
            f"found {found[0]!r}"
            if len(found) == 1
            else f"{len(found)} readers match {r.match!r}; PC/SC sees {names or 'none'}"
        )
        yield Finding(f"reader {r.id}", len(found) == 1, detail)


def _nfc(reader_id: str, path: str) -> Finding:
    try:
        from edge.readers.nfc import open_frontend  # noqa: PLC0415 -- nfcpy may be missing: a finding

        frontend = open_frontend(path)
    except Exception as exc:  # no device on that path, no permission, nfcpy missing
        return Finding(f"reader {reader_id}", False, f"cannot open {path}: {exc}")
    try:
        return Finding(f"reader {reader_id}", True, f"opened {path}: {frontend}")
    finally:
        frontend.close()


def _radar(sensor: Ld2410Presence, listen_s: float) -> Finding:
    """Open an LD2410's serial port and listen for one report, for at most `listen_s`."""
    item, port = f"radar {sensor.id}", sensor.port
    if not port.exists():
        return Finding(
            item,
            False,
            f"{port} does not exist: enable the UART (raspi-config: serial login shell no, "
            "serial port hardware yes) or set `port` to the USB adapter under /dev/serial/by-id/",
        )
    if not os.access(port, os.R_OK | os.W_OK):
        return Finding(
            item,
            False,
            f"{port} is not readable and writable by this user: add it to the group dialout",
        )
    try:
        report = first_report(port, sensor.baud, listen_s)
    except EdgeError as exc:
        return Finding(item, False, f"cannot read {port}: {exc}")
    if report is None:
        return Finding(
            item,
            False,
            f"{port} opens, but no LD2410 report came within {listen_s:g} s: check the radar's "
            f"power and TX/RX wires, that it is set to {sensor.baud} baud, and that the serial "
            "console is off",
        )
    return Finding(
        item,
        True,
        f"{port} at {sensor.baud} baud: a report arrived (target {report.state.name.lower()})",
    )
