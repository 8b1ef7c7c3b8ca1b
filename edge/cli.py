"""The `edge-agent` command line: check a configuration, print its schema, run the agent."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import click

from edge import __version__
from edge.cli_store import config_option, credentials, status
from edge.errors import EdgeError
from edge.gpio import default_pin_factory
from edge.keys import KeyFileError
from edge.link.payloads import mqtt_schemas
from edge.probe import probe as run_probe
from edge.service import device_card_key, serve
from edge.system import SystemClock, clock_synchronised
from edge.text import terminal
from firmware_config.errors import ConfigError
from firmware_config.loader import config_hash, json_schema, load_config
from firmware_config.model import DeviceConfig, Ld2410Presence, MmwavePresence, PresenceConfig

EXIT_INVALID_CONFIG: Final = 2
"""Exit status when the configuration is invalid (nothing was started)."""
MAX_SHOWN: Final = 50
"""The most problems listed; a file with more is rarely a configuration at all."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="edge-agent")
def cli() -> None:
    """The agent on each Raspberry Pi at a card door, security gate or sensor node.

    A device is described by one TOML configuration file; firmware_config/examples/ has
    one for each role (gate, door, sensor-node).
    """


@cli.command()
@config_option
@click.option(
    "--probe",
    is_flag=True,
    help="Also look for the readers, the GPIO chip, the key files and the store directory "
    "(run it on the device).",
)
@click.pass_context
def check(ctx: click.Context, config_path: Path, probe: bool) -> None:
    """Validate a configuration file and summarise it; start nothing.

    Every mistake is listed on standard error, one per line, with its place in the file,
    the value found and how to fix it. Exit status 0 when the file is valid, 2 when not.
    With --probe, also look for the hardware and files it names: exit status 1 if any is
    missing.

    \b
    Example:
      edge-agent check --config /etc/edge/agent.toml
    """
    try:
        config = load_config(config_path)
    except ConfigError as error:
        _report(config_path, error)
        ctx.exit(EXIT_INVALID_CONFIG)
    click.echo(terminal(summary(config)))
    if probe:
        findings = run_probe(config)
        for finding in findings:
            click.echo(terminal(f"  {finding}"))
        failed = [f for f in findings if not f.ok]
        if failed:
            click.echo(
                f"{len(failed)} of {len(findings)} probes failed; the agent would start, "
                "but with those parts missing.",
                err=True,
            )
            ctx.exit(1)


@cli.command()
@config_option
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
    help="How much to log (to standard error; journald keeps it under systemd).",
)
@click.pass_context
def run(ctx: click.Context, config_path: Path, log_level: str) -> None:
    """Run the agent: read cards, drive the doors, record every event.

    Stops cleanly on SIGTERM (systemd) or Ctrl-C: the current event is finished, every
    relay is de-energised (each lock falls into its own fail state) and the store is
    closed. A bad configuration or card key file exits with status 2 before anything
    is started.

    \b
    Example:
      edge-agent run --config /etc/edge/agent.toml
    """

    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(config_path)
        card_key = device_card_key(config)
    except ConfigError as error:
        _report(config_path, error)
        ctx.exit(EXIT_INVALID_CONFIG)
    except KeyFileError as error:
        click.echo(terminal(f"{config_path}: {error}"), err=True)
        ctx.exit(EXIT_INVALID_CONFIG)
    try:
        status = serve(
            config,
            card_key=card_key,
            pin_factory=default_pin_factory(),
            clock=SystemClock(),
            clock_synced=clock_synchronised,
        )
    except EdgeError as error:
        click.echo(terminal(f"{config_path}: cannot start: {error}"), err=True)
        ctx.exit(EXIT_INVALID_CONFIG)
    ctx.exit(status)


@cli.command()
@click.option("--mqtt", is_flag=True, help="Print the MQTT payload schemas instead.")
def schema(mqtt: bool) -> None:
    """Print the JSON Schema of the device configuration (or of the MQTT payloads).

    It lists every key with its type, default, allowed values and description; editors
    that understand JSON Schema can use it to check TOML files as they are typed. With
    --mqtt: status, events, occupancy, commands and command replies, by name.
    """
    if mqtt:
        click.echo(json.dumps(mqtt_schemas(), indent=2, sort_keys=True, ensure_ascii=False))
        return
    click.echo(json.dumps(json_schema(), indent=2, sort_keys=True, ensure_ascii=False))


cli.add_command(status)
cli.add_command(credentials)


def summary(config: DeviceConfig) -> str:
    """Describe a valid configuration in one paragraph.

    Room doors and radars are named only where the device has them.
    """
    parts = [_count(len(config.doors), "door")]
    if config.room_doors:
        parts.append(_count(len(config.room_doors), "room door"))
    parts += [
        _count(len(config.readers), "reader"),
        _count(len(config.presence), "presence sensor"),
    ]
    radars = [_radar(sensor) for sensor in config.presence]
    named = [radar for radar in radars if radar]
    return (
        f"Configuration valid: site {config.site.id}, device {config.device.id} "
        f"(role {config.device.role}) with {', '.join(parts)} and "
        f"{_count(len(config.zones), 'zone')}; "
        + (f"radars: {', '.join(named)}; " if named else "")
        + f"config hash {config_hash(config)}. Nothing was started."
    )


def _radar(sensor: PresenceConfig) -> str:
    """Return how a radar presence sensor is read ("" for a sensor that is not a radar)."""
    if isinstance(sensor, MmwavePresence):
        return f"{sensor.id} (OUT pin on GPIO {sensor.pin})"
    if isinstance(sensor, Ld2410Presence):
        return f"{sensor.id} (serial {sensor.port} at {sensor.baud} baud)"
    return ""


def _report(config_path: Path, error: ConfigError) -> None:
    """List a configuration's problems on standard error, at most MAX_SHOWN of them."""
    problems = error.problems
    click.echo(terminal(f"{config_path}: {_count(len(problems), 'problem')}:"), err=True)
    for problem in problems[:MAX_SHOWN]:
        click.echo(terminal(f"  {problem}"), err=True)
    if len(problems) > MAX_SHOWN:
        click.echo(f"  … and {len(problems) - MAX_SHOWN} more; fix these first", err=True)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def main(argv: Sequence[str] | None = None) -> None:
    """Run the `edge-agent` command line; `argv` defaults to the process arguments."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="edge-agent")


if __name__ == "__main__":
    main()
