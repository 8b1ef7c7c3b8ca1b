"""What a publish needs from each device's configuration, validated once per content.

A publish needs little of a configuration: its doors, the zones they join, whether its
readers have keypads, its role, and its zones' anti-passback. Reading and validating a
configuration costs milliseconds, and a publish reads every device's, so the facts are kept
by the SHA-256 of the file's bytes and of the validator's own source (firmware_config and
pydantic's version): the same bytes under the same validator validate the same way, so a
kept entry can never go stale, and a changed file (or an upgraded validator) is read and
validated again in full. Kept in memory for the process (the console's desk publishes
again and again) and in SITE/.config-facts.json for one-shot `edge-provision publish`
runs. That file sits beside the registry and the keys: whoever can write it can already
rewrite the configurations; a file that does not read back exactly as written is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pydantic

import firmware_config
from edge.link.crossings import served_zones
from firmware_config.loader import MAX_BYTES, load_config, parse_config
from firmware_config.model import DeviceConfig

CACHE_FILE = ".config-facts.json"
FORMAT = "edge-provision-config-facts/1"
MEMORY_LIMIT = 100_000  # entries kept in memory; past it the memory starts again

ZoneSetting = tuple[str, str, str, str]  # zone, anti-passback mode, forgive at, offline


@dataclass(frozen=True)
class DeviceFacts:
    """What a publish takes from one device's configuration."""

    doors: frozenset[str]
    zones: frozenset[str]  # both sides of its doors: the zones it shares positions in
    keypads: bool  # a reader with a keypad
    role: str
    readers: bool
    anti_passback: tuple[ZoneSetting, ...]  # of the zones it serves, by zone

    @classmethod
    def of(cls, config: DeviceConfig) -> DeviceFacts:
        """Return the facts of a validated configuration."""
        served = served_zones(config)
        settings = []
        for zone in config.zones:
            if zone.id in served:
                forgive = zone.anti_passback_forgive_at
                text = forgive.strftime("%H:%M") if forgive else "none"
                settings.append((zone.id, zone.anti_passback, text, zone.anti_passback_offline))
        return cls(
            frozenset(d.id for d in config.doors),
            served,
            any(r.keypad is not None for r in config.readers),
            config.device.role,
            bool(config.readers),
            tuple(sorted(settings)),
        )

    def to_json(self) -> dict[str, Any]:
        """Return the facts as JSON data (sorted: the same facts, the same text)."""
        return {
            "doors": sorted(self.doors),
            "zones": sorted(self.zones),
            "keypads": self.keypads,
            "role": self.role,
            "readers": self.readers,
            "anti_passback": [list(s) for s in self.anti_passback],
        }

    @classmethod
    def from_json(cls, data: Any) -> DeviceFacts:
        """Read facts written by `to_json`; ValueError when they are not exactly that."""
        if not isinstance(data, dict) or set(data) != {
            "doors",
            "zones",
            "keypads",
            "role",
            "readers",
            "anti_passback",
        }:
            raise ValueError("not config facts")
        settings = []
        for setting in _list(data["anti_passback"]):
            zone, mode, forgive, offline = _texts(setting)  # ValueError unless four
            settings.append((zone, mode, forgive, offline))
        facts = cls(
            frozenset(_texts(data["doors"])),
            frozenset(_texts(data["zones"])),
            _flag(data["keypads"]),
            str(data["role"]),
            _flag(data["readers"]),
            tuple(settings),
        )
        if facts.to_json() != data:
            raise ValueError("config facts not as written")
        return facts


def _list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError("not a list")
    return value


def _texts(value: Any) -> list[str]:
    if not all(isinstance(v, str) for v in _list(value)):
        raise ValueError("not a list of text")
    return list(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("not true or false")
    return value


_memory: dict[str, DeviceFacts] = {}


def forget() -> None:
    """Drop the facts kept in memory (as a fresh process starts; the bench and tests)."""
    _memory.clear()


@cache
def validator() -> str:
    """Return the SHA-256 of the configuration validator: firmware_config's source, pydantic."""
    digest = hashlib.sha256(f"{FORMAT}\n{pydantic.VERSION}\n".encode())
    package = Path(firmware_config.__file__).parent
    for source in sorted(package.rglob("*.py")):
        digest.update(str(source.relative_to(package)).encode() + b"\0")
        digest.update(source.read_bytes() + b"\0")
    return digest.hexdigest()


class ConfigFacts:
    """The facts of the site's device configurations, validated once per file content."""

    def __init__(self, site_dir: Path) -> None:
        self.path = site_dir / CACHE_FILE
        self.validator = validator()
        self.read = 0  # configurations read and validated in full (not found kept)
        self._kept = self._load()
        self._used: dict[str, DeviceFacts] = {}

    def __repr__(self) -> str:
        return f"<ConfigFacts {self.path} kept={len(self._kept)} read={self.read}>"

    def facts(self, config: Path) -> DeviceFacts:
        """Return the facts of the configuration at `config` (ConfigError when it is invalid)."""
        try:
            with config.open("rb") as file:
                data = file.read(MAX_BYTES + 1)
            text = data.decode("utf-8-sig")
        except (OSError, UnicodeDecodeError):
            return DeviceFacts.of(load_config(config))  # raises the loader's clear error
        if len(data) > MAX_BYTES:
            return DeviceFacts.of(load_config(config))
        content = hashlib.sha256(data).hexdigest()
        key = f"{self.validator}:{content}"
        found = _memory.get(key) or self._kept.get(content)
        if found is None:
            found = DeviceFacts.of(parse_config(text, str(config)))
            self.read += 1
        if len(_memory) >= MEMORY_LIMIT:
            _memory.clear()
        _memory[key] = found
        self._used[content] = found
        return found

    def save(self) -> None:
        """Keep the facts this publish used (only those) for the next one; never raises."""
        if self._used.keys() == self._kept.keys():
            return
        body = {
            "format": FORMAT,
            "validator": self.validator,
            "configs": {k: v.to_json() for k, v in sorted(self._used.items())},
        }
        partial = self.path.with_name(f"{CACHE_FILE}.{os.getpid()}")
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as file:
                json.dump(body, file, separators=(",", ":"))
            os.replace(partial, self.path)
        except OSError:
            partial.unlink(missing_ok=True)  # the next publish validates in full again

    def _load(self) -> dict[str, DeviceFacts]:
        try:
            body = json.loads(self.path.read_bytes())
            if body.get("format") != FORMAT or body.get("validator") != self.validator:
                return {}
            return {
                str(content): DeviceFacts.from_json(data)
                for content, data in body["configs"].items()
            }
        except (OSError, ValueError, TypeError, AttributeError, KeyError):
            return {}
