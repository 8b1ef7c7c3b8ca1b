"""Device configuration: the schema every part meets at, its loader and its examples."""

from firmware_config.errors import ConfigError, Problem
from firmware_config.loader import (
    config_hash,
    json_schema,
    load_config,
    masked,
    parse_config,
    validate_config,
)
from firmware_config.model import DeviceConfig

__all__ = [
    "ConfigError",
    "DeviceConfig",
    "Problem",
    "config_hash",
    "json_schema",
    "load_config",
    "masked",
    "parse_config",
    "validate_config",
]
