"""edge-provision rules and publish."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import click

from edge.errors import EdgeError
from firmware_config.fields import check_slug
from firmware_config.model import MqttConfig, TlsConfig
from provisioning.options import site_dir
from provisioning.publish import build_all, commit_bases, forget_bases, publishing, send
from provisioning.registry import (
    Registry,
)
from provisioning.rules import (
    add_rule,
    add_schedule,
    set_anti_passback,
    set_authenticated_groups,
    set_closure_days,
    set_override_groups,
    set_pin_groups,
)


@click.group()
def rules() -> None:
    """Who may pass which doors, and when."""


@rules.command("schedule")
@click.argument("schedule_id")
@click.option("--days", required=True, help="mon-fri, sat,sun or all.")
@click.option(
    "--hours", required=True, help='Local time, e.g. "07:00-20:00" ("24:00" ends the day).'
)
@click.option("--holidays", help="Hours on public holidays and closure days (default: closed).")
@site_dir
@click.pass_context
def rules_schedule(
    ctx: click.Context,
    schedule_id: str,
    days: str,
    hours: str,
    holidays: str | None,
    directory: Path,
) -> None:
    """Add or replace a weekly schedule."""
    try:
        check_slug(schedule_id)
        add_schedule(Registry(directory / "registry.db"), schedule_id, days, hours, holidays)
    except (EdgeError, ValueError) as error:
        click.echo(f"schedule refused: {error}", err=True)
        ctx.exit(2)
    click.echo(f"schedule {schedule_id}: {days} {hours}, holidays {holidays or 'closed'}")


@rules.command("add")
@click.argument("group")
@click.option("--doors", required=True, help="Door ids, comma-separated.")
@click.option("--schedule", default="always", show_default=True, help="A schedule id, or always.")
@site_dir
@click.pass_context
def rules_add(ctx: click.Context, group: str, doors: str, schedule: str, directory: Path) -> None:
    """Let a group pass doors while a schedule is open."""
    try:
        check_slug(group)
        door_ids = [check_slug(d.strip()) for d in doors.split(",") if d.strip()]
        add_rule(Registry(directory / "registry.db"), group, door_ids, schedule)
    except (EdgeError, ValueError) as error:
        click.echo(f"rule refused: {error}", err=True)
        ctx.exit(2)
    click.echo(f"rule: {group} may pass {', '.join(door_ids)} ({schedule})")


@rules.command("override")
@click.argument("groups", nargs=-1, required=True)
@site_dir
def rules_override(groups: tuple[str, ...], directory: Path) -> None:
    """Set the groups that pass through a lockdown (security staff)."""
    set_override_groups(Registry(directory / "registry.db"), list(groups))
    click.echo(f"lockdown override groups: {', '.join(groups)}")


@rules.command("require-proof")
@click.argument("groups", nargs=-1)
@site_dir
def rules_require_proof(groups: tuple[str, ...], directory: Path) -> None:
    """Set the groups whose cards must prove themselves (Lite-S, DESFire) at every door.

    With no group, no group needs it (a card enrolled as proving always does).
    """
    set_authenticated_groups(Registry(directory / "registry.db"), list(groups))
    click.echo(f"groups that need proven cards: {', '.join(groups) or '(none)'}")


@rules.command("require-pin")
@click.argument("groups", nargs=-1)
@site_dir
def rules_require_pin(groups: tuple[str, ...], directory: Path) -> None:
    """Set the groups that key their PIN after the card at every door with a keypad.

    With no group, no group needs it (a reader set to pin = "always" still asks everyone).
    PINs come with the staff CSV (columns pin, duress_pin).
    """
    set_pin_groups(Registry(directory / "registry.db"), list(groups))
    click.echo(f"groups that key a PIN: {', '.join(groups) or '(none)'}")


@rules.command("closure")
@click.argument("days", nargs=-1, required=True)
@site_dir
@click.pass_context
def rules_closure(ctx: click.Context, days: tuple[str, ...], directory: Path) -> None:
    """Set the site's closure days as MM-DD (e.g. 12-29 … 01-03); treated as holidays."""
    try:
        set_closure_days(Registry(directory / "registry.db"), list(days))
    except (EdgeError, ValueError) as error:
        click.echo(f"closure days refused: {error}", err=True)
        ctx.exit(2)
    click.echo(f"closure days: {', '.join(sorted(days))}")


@rules.command("antipassback")
@click.argument("zone")
@click.option("--mode", type=click.Choice(["off", "soft", "hard"]), required=True)
@click.option("--forgive-at", help='Local time positions are forgotten each day, e.g. "03:00".')
@click.option(
    "--offline",
    type=click.Choice(["hard", "soft"]),
    default="hard",
    show_default=True,
    help="While a gate cannot hear the zone's other gates for over 10 s: hard keeps refusing "
    "on what it knows; soft lets refused cards in, flagged, and raises anti_passback_degraded.",
)
@site_dir
@click.pass_context
def rules_antipassback(
    ctx: click.Context,
    zone: str,
    mode: str,
    forgive_at: str | None,
    offline: str,
    directory: Path,
) -> None:
    """Set anti-passback for a zone, overriding the devices' configuration."""
    try:
        check_slug(zone)
        set_anti_passback(Registry(directory / "registry.db"), zone, mode, forgive_at, offline)
    except (EdgeError, ValueError) as error:
        click.echo(f"anti-passback refused: {error}", err=True)
        ctx.exit(2)
    click.echo(
        f"anti-passback in {zone}: {mode}"
        + (f", forgiven at {forgive_at}" if forgive_at else "")
        + f", {offline} when cut off"
    )


@click.command()
@site_dir
@click.option("--device", "devices", multiple=True, help="Only these devices (default: all).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write snapshot files here instead of publishing (for edge-agent credentials load).",
)
@click.option(
    "--full",
    is_flag=True,
    help="Send every device a full snapshot, no delta (after the broker lost its retained ones).",
)
@click.option("--host", default="localhost", show_default=True, help="Broker host.")
@click.option("--port", default=1883, show_default=True, help="Broker port.")
@click.option(
    "--user",
    default="operator",
    show_default=True,
    help="Broker account that may publish credentials.",
)
@click.option(
    "--password-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="The account's password file (default: SITE/accounts/USER.password); at the centre, "
    "the operator account `bridge central` made.",
)
@click.option(
    "--ca-file",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="TLS: the CA that signed the broker's certificate (the central broker's: bridge ca).",
)
@click.option("--root", default="edge", show_default=True, help="MQTT topic root.")
@click.option(
    "--wait",
    "wait_s",
    default=30.0,
    show_default=True,
    help="Seconds to wait for devices to apply it.",
)
@click.pass_context
def publish(
    ctx: click.Context,
    directory: Path,
    devices: tuple[str, ...],
    out: Path | None,
    full: bool,
    host: str,
    port: int,
    user: str,
    password_file: Path | None,
    ca_file: Path | None,
    root: str,
    wait_s: float,
) -> None:
    """Build each device's signed credential snapshot (or delta) and publish it retained.

    Each device gets only its doors' rules and the cards allowed there, by reference: a
    delta on top of its last snapshot when only cards changed and the delta is small. Then
    the devices' status shows which applied the new version; any that did not in --wait
    seconds is named (exit status 1). Sites bridged to a central broker are published to
    from the centre, one site directory at a time, with the centre's operator account
    (--password-file) over TLS (--ca-file).
    """
    account = Account(user, password_file or directory / "accounts" / f"{user}.password", ca_file)
    with publishing(directory):  # one publish at a time per site, the console's desk too
        _publish(ctx, directory, devices, out, host, port, account, root, wait_s, full=full)


@dataclass(frozen=True)
class Account:
    """Who publishes: the broker account, its password file, and the CA for TLS if any."""

    user: str
    password_file: Path
    ca_file: Path | None


def _publish(
    ctx: click.Context,
    directory: Path,
    devices: tuple[str, ...],
    out: Path | None,
    host: str,
    port: int,
    account: Account,
    root: str,
    wait_s: float,
    *,
    full: bool = False,
) -> None:
    try:
        registry = Registry(directory / "registry.db")
        site_row = registry.site()
        # Files are loaded alone on a device: always full snapshots, and never a base (the
        # broker keeps retaining the one the devices on it hold).
        built = build_all(registry, directory, list(devices) or None, full=full or out is not None)
    except (EdgeError, ValueError, OSError) as error:
        click.echo(f"publish refused: {error}", err=True)
        ctx.exit(2)
    if not built:
        click.echo("no devices to publish to; add them with edge-provision device add", err=True)
        ctx.exit(2)
    version = built[0].version
    with click.progressbar(built, label=f"building v{version}") as bar:
        for b in bar:
            what = "" if b.base is None else f" (delta on v{b.base})"
            click.echo(f"  {b.device}: {b.cards} cards, {len(b.data):,} bytes{what}", err=True)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for b in built:
            (out / f"{b.device}.v{b.version}.json").write_bytes(b.data)
        click.echo(f"wrote {len(built)} snapshots (v{version}) to {out}")
        return
    config = MqttConfig(
        host=host,
        port=port,
        root=root,
        username=account.user,
        password_file=account.password_file,
        tls=None if account.ca_file is None else TlsConfig(ca_file=account.ca_file),
    )
    try:
        result = send(config, site_row["slug"], built, f"edge-provision-{os.getpid()}", wait_s)
    except (EdgeError, OSError) as error:
        forget_bases(registry, built)
        click.echo(f"publish failed: {error}", err=True)
        ctx.exit(2)
    commit_bases(registry, built, result)
    for device, seen in result.devices.items():
        mark = "applied" if seen >= version else f"NOT applied (has v{seen})"
        click.echo(f"  {device}: {mark}")
    if result.late:
        late = result.late
        click.echo(
            f"{len(late)} devices did not apply v{version} within {wait_s:g} s: {', '.join(late)}",
            err=True,
        )
        ctx.exit(1)
    click.echo(f"published v{version} to {len(built)} devices; all applied it")
