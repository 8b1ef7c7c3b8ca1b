"""`edge-console door`, `lockdown` and `fire-reset`: signed commands to the doors.

Each command names its console user (console.cli_auth), signs with the console's command
key (edge-provision console-key), publishes through a broker account of role console (one
of its own: the broker takes the account name as the client id), and prints one line per
device: `DEVICE: accepted`, `DEVICE: refused: REASON` or `DEVICE: no answer`. Exit 1 names
the devices that refused or did not answer; exit 2 is bad input or a refused user.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import click

from console.actions import (
    DOOR_ACTIONS,
    TIMEOUT_S,
    ActionError,
    ActionResult,
    Commander,
    Site,
    console_client,
    load_command_key,
    password_file_of,
    perform,
    site_slug,
)
from console.claims import Registry
from console.cli_auth import acting_user, acting_user_options
from console.cli_options import broker_options, site_dir_option
from console.cli_users import db_option, log_at
from console.log import CentralLog
from console.safe_output import terminal
from console.users import audit
from console.web_context import BrokerAccess


def acting_options(f: Any) -> Any:
    """Add the site, broker and command key options of an acting door command."""
    options = [
        site_dir_option(
            "edge-provision's site directory: SITE/devices/*.toml say which device "
            "drives which door."
        ),
        click.option("--site", help="Site id [default: the one in SITE/registry.db]."),
        broker_options,
        click.option(
            "--broker-user",
            required=True,
            help="A broker account of role console, used by nothing else at the same time.",
        ),
        click.option(
            "--broker-password-file",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="File with the broker account's password "
            "[default: SITE/accounts/BROKER_USER.password].",
        ),
        click.option(
            "--command-key",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            required=True,
            help="The console's command key (edge-provision console-key; mode 0600).",
        ),
        click.option(
            "--timeout-s",
            type=click.FloatRange(min=0.5, max=60),
            default=TIMEOUT_S,
            show_default=True,
            help="How long each device has to answer.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return db_option(acting_user_options(f))


@click.group("door")
def door_group() -> None:
    """Unlock a door once, hold it open, put it back to normal, reset its alarms."""


def _door_command(verb: str, text: str) -> click.Command:
    known = DOOR_ACTIONS[verb]

    @click.command(verb, help=text)
    @click.argument("door")
    @acting_options
    @click.pass_context
    def command(ctx: click.Context, /, door: str, **options: Any) -> None:
        log = log_at(options["db"])
        user = acting_user(ctx, log, options["user"], options["password_file"], known.action)
        site = acting_site(ctx, options)
        try:
            devices = [site.device_of(door)]
        except ActionError as error:
            refuse(ctx, str(error))
        args = {"door": door, **known.args}
        _run(ctx, log, options, user, known.action, door, devices, known.command, args, site)

    return command


for _verb, _text in (
    ("unlock", "Unlock DOOR once (as a card would; it relocks by itself)."),
    ("hold", "Hold DOOR open (unlocked) until put back to normal."),
    ("normal", "Put DOOR back to normal (cards again)."),
    ("reset", "Reset DOOR's alarms (forced, held open) once it is closed."),
):
    door_group.add_command(_door_command(_verb, _text))


@click.group("lockdown")
def lockdown() -> None:
    """Lock the site (or chosen zones or doors) down, or lift it."""


def _lockdown_command(on: bool) -> click.Command:
    @click.command("on" if on else "off")
    @click.option("--zone", "zones", multiple=True, help="Only the doors into this zone.")
    @click.option("--door", "doors", multiple=True, help="Only the device of this door.")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @acting_options
    @click.pass_context
    def command(
        ctx: click.Context,
        /,
        zones: tuple[str, ...],
        doors: tuple[str, ...],
        yes: bool,
        **options: Any,
    ) -> None:
        log = log_at(options["db"])
        user = acting_user(ctx, log, options["user"], options["password_file"], "lockdown")
        site = acting_site(ctx, options)
        try:
            devices = site.lockdown_devices(zones, doors)
        except ActionError as error:
            refuse(ctx, str(error))
        scope = " ".join([*(f"zone {z}" for z in zones), *(f"door {d}" for d in doors)]) or "site"
        word = "lock down" if on else "lift lockdown on"
        if not yes and not _confirmed(f"{word} {len(devices)} devices ({', '.join(devices)})?"):
            refuse(ctx, "not confirmed; nothing sent (answer y, or give --yes)")
        target = f"lockdown {'on' if on else 'off'}: {scope}"
        args = {"on": on}
        _run(ctx, log, options, user, "lockdown", target, devices, "lockdown", args, site, True)

    command.help = (
        "Lock the site down (only override cards open its doors)."
        if on
        else "Lift the lockdown (cards and schedules again)."
    )
    return command


lockdown.add_command(_lockdown_command(True))
lockdown.add_command(_lockdown_command(False))


@click.command("fire-reset")
@click.option("--door", help="Only the device of this door (default: every fire input).")
@acting_options
@click.pass_context
def fire_reset(ctx: click.Context, /, door: str | None, **options: Any) -> None:
    """Reset doors released by a fire input once the input has cleared."""
    log = log_at(options["db"])
    user = acting_user(ctx, log, options["user"], options["password_file"], "door.fire_reset")
    site = acting_site(ctx, options)
    try:
        devices = site.fire_devices(door)
    except ActionError as error:
        refuse(ctx, str(error))
    target = door or "site"
    every = door is None
    _run(ctx, log, options, user, "door.fire_reset", target, devices, "fire-reset", {}, site, every)


def _confirmed(question: str) -> bool:
    try:
        return click.confirm(terminal(question))
    except click.Abort:  # no terminal, or ^C / end of input: not a yes
        return False


def acting_site(ctx: click.Context, options: dict[str, Any]) -> Site:
    """Return the site an acting command works on (its slug from the registry unless given)."""
    site_dir: Path = options["site_dir"]
    if not options["site"]:
        options["site"] = site_slug(site_dir / "registry.db")
        if options["site"] is None:
            refuse(ctx, f"no site in {site_dir}/registry.db; give --site")
    return Site(Registry(site_dir, options["site"]))


def acting_commander(ctx: click.Context, options: dict[str, Any]) -> Commander:
    """Return the commander an acting command signs and sends with (the caller closes it)."""
    try:
        key = load_command_key(options["command_key"])
    except ActionError as error:
        refuse(ctx, str(error))
    account = options["broker_user"]
    password_file = password_file_of(options["site_dir"], account, options["broker_password_file"])
    client = console_client(
        options["broker_host"], options["broker_port"], account, password_file, options["ca_file"]
    )
    return Commander(
        client,
        key,
        site=options["site"],
        account=account,
        root=options["root"],
        timeout_s=options["timeout_s"],
    )


def _run(
    ctx: click.Context,
    log: CentralLog,
    options: dict[str, Any],
    user: str,
    action: str,
    target: str,
    devices: Sequence[str],
    command: str,
    args: dict[str, Any],
    site: Site,
    site_wide: bool = False,
) -> None:
    """Send the action, print each device's outcome; exit 1 if one was not done or reached.

    `site_wide`: the action is meant for every device that fits, so a device whose
    configuration is unusable is named as not reached.
    """
    if not devices:
        refuse(ctx, str(site.none_to_send(action)))
    unreached = site.unreached() if site_wide else ""
    commander = acting_commander(ctx, options)
    try:
        result = perform(
            log,
            commander,
            user=user,
            action=action,
            target=target,
            devices=devices,
            name=command,
            args=args,
        )
    except ActionError as error:
        click.echo(terminal(f"{action} not sent: {error}"), err=True)
        ctx.exit(1)
    finally:
        commander.close()
    if unreached:
        audit(log, user, action, f"{target}: {unreached}")
    _report(ctx, result, unreached)


def _report(ctx: click.Context, result: ActionResult, unreached: str) -> None:
    for outcome in result.outcomes:
        click.echo(terminal(outcome.text()))
    if result.failed:
        click.echo(terminal(f"{result.action}: not done on {', '.join(result.failed)}"), err=True)
    if unreached:
        click.echo(terminal(f"{result.action}: {unreached}"), err=True)
    if result.failed or unreached:
        ctx.exit(1)


def refuse(ctx: click.Context, message: str) -> NoReturn:
    """Say why a command is refused and exit 2 (bad input, nothing sent)."""
    click.echo(terminal(message), err=True)
    ctx.exit(2)


def serve_acting_options(f: Any) -> Any:
    """Add to `serve` what the doors page needs to act: the site, a broker account, the key."""
    options = [
        site_dir_option(
            "edge-provision's site directory [default: the one holding --registry].",
            required=False,
        ),
        click.option("--site", help="Site id [default: the one in SITE/registry.db]."),
        broker_options,
        click.option(
            "--broker-user",
            help="A broker account of role console for the doors page's commands, used by "
            "nothing else (not the collector's). Without it the page only watches.",
        ),
        click.option(
            "--broker-password-file",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="File with that account's password [default: SITE/accounts/USER.password].",
        ),
        click.option(
            "--command-key",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="The console's command key (edge-provision console-key; mode 0600).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def serve_acting(
    options: dict[str, Any], registry: Path | None
) -> tuple[Path | None, BrokerAccess | None, Path | None]:
    """Return the site directory, broker access and command key `serve` was given."""
    site_dir: Path | None = options["site_dir"] or (registry.parent if registry else None)
    account, key = options["broker_user"], options["command_key"]
    if not account or key is None or site_dir is None:
        if account or key is not None:
            raise click.UsageError(
                "the doors page acts with --site-dir (or --registry), --broker-user and "
                "--command-key together; give all of them or none"
            )
        return site_dir, None, None
    slug = options["site"] or site_slug(site_dir / "registry.db")
    if slug is None:
        raise click.UsageError(f"no site in {site_dir}/registry.db; give --site")
    try:
        load_command_key(key)  # refuse a loose or wrong key now, not at the first click
    except ActionError as error:
        raise click.UsageError(str(error)) from None
    password_file = password_file_of(site_dir, account, options["broker_password_file"])
    broker = BrokerAccess(
        options["broker_host"],
        options["broker_port"],
        slug,
        account,
        password_file=password_file,
        root=options["root"],
        ca_file=options["ca_file"],
    )
    return site_dir, broker, key
