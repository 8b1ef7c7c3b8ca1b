"""edge-provision people uc-presence: a person's opt-in to unified-communications presence."""

from __future__ import annotations

from pathlib import Path

import click

from edge.errors import EdgeError
from edge.text import terminal
from provisioning.options import site_dir
from provisioning.registry import Registry
from provisioning.uc_presence import UcOptIn, set_uc_presence, uc_opt_in


@click.command("uc-presence")
@click.argument("staff_no")
@click.option(
    "--on/--off",
    "on",
    default=None,
    help="Opt in (needs --uc-id) or out (the UC id and mail are forgotten). Without either: "
    "show the setting.",
)
@click.option(
    "--uc-id",
    help="The person's UC account: a Matrix user id (@name:server), an Entra object id or a "
    "user principal name.",
)
@click.option(
    "--mail",
    help="The address the person's bookings carry, when it is not the UC id (name@city.example).",
)
@site_dir
@click.pass_context
def uc_presence(
    ctx: click.Context,
    staff_no: str,
    on: bool | None,
    uc_id: str | None,
    mail: str | None,
    directory: Path,
) -> None:
    """Share a person's presence with unified communications (off unless they opt in).

    With --on the rooms service tells the UC server whether the person is in the building,
    in a meeting or on the phone (never where); with --off it clears their status there when
    it next reads the registry.

    \b
    Example:
      edge-provision people uc-presence 10234 --on --uc-id @tanaka:city.example \\
          --mail tanaka@city.example
      edge-provision people uc-presence 10234 --off
    """
    registry = Registry(directory / "registry.db")
    try:
        if on is None:
            if uc_id is not None or mail is not None:
                raise click.UsageError("--uc-id and --mail go with --on", ctx)
            setting = uc_opt_in(registry, staff_no)
        else:
            setting = set_uc_presence(registry, staff_no, on, uc_id, mail)
    except EdgeError as error:
        click.echo(terminal(f"refused: {error}"), err=True)
        ctx.exit(2)
    finally:
        registry.close()
    click.echo(terminal(_describe(setting)))


def _describe(setting: UcOptIn) -> str:
    if not setting.on:
        return f"staff {setting.staff_no}: UC presence off (nothing is sent)"
    mail = f", bookings as {setting.mail}" if setting.mail else ""
    return f"staff {setting.staff_no}: UC presence on as {setting.uc_id}{mail}"
