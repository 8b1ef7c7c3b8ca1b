"""edge-provision device: add, bundle, list, status."""

from __future__ import annotations

import os
from pathlib import Path

import click

from edge.errors import EdgeError
from edge.link.mqtt import publish_and_watch
from edge.link.topics import status as status_topic
from edge.link.topics import status_filter
from edge.store.connection import write_transaction
from edge.text import terminal, terminal_lines
from firmware_config.model import MqttConfig
from provisioning.devices import EXAMPLES, bundle, check_device_id, config_from_example
from provisioning.files import private_dir, write_file
from provisioning.options import site_dir, status_version
from provisioning.registry import (
    Registry,
    add_device,
    device_role,
)

MAX_FIELD = 40
"""The most characters of one status field shown."""


@click.group()
def device() -> None:
    """Devices: add one from its role's example, make the bundle for its installer."""


@device.command("add")
@click.argument("device_id")
@click.option("--role", type=click.Choice(sorted(EXAMPLES)), required=True, help="What it is.")
@site_dir
@click.pass_context
def device_add(ctx: click.Context, device_id: str, role: str, directory: Path) -> None:
    """Register a device and write its configuration, from the role's example, to edit.

    \b
    Example:
      edge-provision device add gate-1f-east --role gate
    """
    try:
        check_device_id(device_id)
        registry = Registry(directory / "registry.db")
        slug = registry.site()["slug"]
        add_device(registry, device_id, role)
        registry.close()
    except (EdgeError, ValueError) as error:
        click.echo(terminal(f"device add refused: {error}"), err=True)
        ctx.exit(2)
    path = private_dir(directory / "devices") / f"{device_id}.toml"
    write_file(path, config_from_example(role, slug, device_id).encode())
    click.echo(
        terminal(
            f"device {device_id} ({role}); edit {path}, then: "
            f"edge-provision device bundle {device_id}"
        )
    )


@device.command("bundle")
@click.argument("device_id")
@site_dir
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), help="Default: DIR/bundles/ID.tar.gz"
)
@click.pass_context
def device_bundle(ctx: click.Context, device_id: str, directory: Path, out: Path | None) -> None:
    """Write the one archive an installer copies to the Pi (0600: it holds secrets).

    It holds the validated configuration, the card key, the broker password, the public
    keys, the systemd unit and the install steps.
    """
    target = out or directory / "bundles" / f"{device_id}.tar.gz"
    try:
        registry = Registry(directory / "registry.db")
        device_role(registry, device_id)
        members = bundle(directory, device_id, target)
        with write_transaction(registry.db) as db:
            registry.record(db, "device bundle", device=device_id, out=str(target))
        registry.close()
    except (EdgeError, OSError) as error:
        click.echo(terminal_lines(f"device bundle refused: {error}"), err=True)
        ctx.exit(2)
    click.echo(terminal(f"wrote {target} (0600): {', '.join(members)}"))


@device.command("list")
@site_dir
def device_list(directory: Path) -> None:
    """List the devices with the credential version last published to each."""
    registry = Registry(directory / "registry.db")
    rows = registry.db.execute(
        "SELECT d.id, d.role, p.version, p.published_at, p.cards FROM devices d "
        "LEFT JOIN published p ON p.device = d.id ORDER BY d.id"
    ).fetchall()
    for device_id, role, version, published_at, count in rows:
        sent = (
            f"v{version} ({count} cards) at {published_at[:19]}" if version else "never published"
        )
        click.echo(terminal(f"{device_id:<20} {role:<12} {sent}"))


@device.command("status")
@site_dir
@click.option("--host", default="localhost", show_default=True, help="Broker host.")
@click.option("--port", default=1883, show_default=True, help="Broker port.")
@click.option("--user", default="operator", show_default=True, help="Broker account.")
@click.option("--root", default="edge", show_default=True, help="MQTT topic root.")
@click.option("--wait", "wait_s", default=3.0, show_default=True, help="Seconds to listen.")
@click.pass_context
def device_status(
    ctx: click.Context, directory: Path, host: str, port: int, user: str, root: str, wait_s: float
) -> None:
    """Read every device's retained status from the broker; flag offline and stale ones.

    Exit status 1 when any device is offline, silent, behind the published credentials, or
    reports stale credentials, an unsynchronised clock or a backlog.
    """
    registry = Registry(directory / "registry.db")
    slug = registry.site()["slug"]
    published = dict(registry.db.execute("SELECT device, version FROM published").fetchall())
    devices = [r[0] for r in registry.db.execute("SELECT id FROM devices ORDER BY id")]
    password = directory / "accounts" / f"{user}.password"
    config = MqttConfig(host=host, port=port, root=root, username=user, password_file=password)
    try:
        seen = publish_and_watch(
            config,
            f"edge-provision-{os.getpid()}",
            [],
            status_filter(root, slug),
            lambda s: False,
            wait_s,
        )
    except (EdgeError, OSError) as error:
        click.echo(terminal(f"device status failed: {error}"), err=True)
        ctx.exit(2)
    trouble = 0
    for device_id in devices:
        found = seen.get(status_topic(root, slug, device_id))
        status = found if isinstance(found, dict) or found is None else {"state": "unreadable"}
        problems = _status_problems(status, published.get(device_id, 0))
        trouble += bool(problems)
        line = _status_line(status)
        warning = "  ⚠ " + "; ".join(problems) if problems else ""
        click.echo(terminal(f"{device_id:<20} {line}{warning}"))
    if trouble:
        ctx.exit(1)


def _status_line(status: dict[str, object] | None) -> str:
    if status is None:
        return "no status"
    creds = status.get("credentials") if isinstance(status.get("credentials"), dict) else {}
    assert isinstance(creds, dict)
    age = creds.get("age_s")
    age_text = "age unknown"
    if isinstance(age, int | float) and not isinstance(age, bool) and abs(age) < 1e12:
        age_text = f"{age / 3600:.1f} h old"
    clock = "synced" if status.get("clock_synced") else "NOT synced"
    return (
        f"{_field(status.get('state'))} software {_field(status.get('software'))} "
        f"config {_field(status.get('config_hash'))} "
        f"credentials v{_field(creds.get('version'))} ({age_text}) "
        f"clock {clock} backlog {_field(status.get('backlog'))}"
    )


def _field(value: object) -> str:
    """Show one field of a device's status: a device may send anything, of any length."""
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value) if abs(value) < 10**18 else "(too large)"
    elif isinstance(value, str | float | bool) or value is None:
        text = str(value)
    else:
        text = f"({type(value).__name__})"
    text = terminal(text)
    return text if len(text) <= MAX_FIELD else text[: MAX_FIELD - 1] + "…"


def _status_problems(status: dict[str, object] | None, published: int) -> list[str]:
    if status is None:
        return ["never reported"]
    problems = []
    if status.get("state") != "online":
        problems.append("offline")
    if status_version(status) < published:
        problems.append(f"runs v{status_version(status)}, v{published} was published")
    creds = status.get("credentials")
    if isinstance(creds, dict) and creds.get("stale"):
        problems.append("credentials stale")
    if status.get("clock_synced") is False:
        problems.append("clock not synchronised")
    return problems
