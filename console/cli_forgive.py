"""`edge-console forgive`: forget one person's or one card's anti-passback position.

A manager's signed `forgive` command goes to every device that may hold the card's position
(those serving --zone, or every door device), one command per card; the device puts the card
in no zone as of the command's time. One line per card and device; exit 1 names the devices
that refused or did not answer, exit 2 is bad input or a refused user.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from console import forgive as forgiving
from console.actions import (
    ActionError,
    Outcome,
    perform,
)
from console.cli_auth import acting_user
from console.cli_doors import acting_commander, acting_options, acting_site, refuse
from console.cli_users import log_at
from console.forgive import ACTION
from console.log import CentralLog
from console.safe_output import terminal


@click.command("forgive")
@click.option("--staff-no", help="Forgive every card of this person (their staff number).")
@click.option(
    "--card",
    help="Forgive one card: the first 4 or more digits of its reference as the cards page "
    "or `edge-provision cards list` shows it.",
)
@click.option("--zone", help="Only if the card is in this zone; only the devices serving it.")
@acting_options
@click.pass_context
def forgive(
    ctx: click.Context, /, staff_no: str | None, card: str | None, zone: str | None, **options: Any
) -> None:
    """Forget a card's anti-passback position, so it may enter again (a manager)."""
    if (staff_no is None) == (card is None):
        refuse(ctx, "give --staff-no or --card (one of them)")
    log = log_at(options["db"])
    try:
        _forgive(ctx, log, staff_no, card, zone, options)
    finally:
        log.close()


def _forgive(
    ctx: click.Context,
    log: CentralLog,
    staff_no: str | None,
    card: str | None,
    zone: str | None,
    options: dict[str, Any],
) -> None:
    user = acting_user(ctx, log, options["user"], options["password_file"], ACTION)
    site_dir: Path = options["site_dir"]
    site = acting_site(ctx, options)
    try:
        refs = forgiving.cards(site_dir / "registry.db", staff_no, card)
        devices = forgiving.devices(site, zone)
    except ActionError as error:
        refuse(ctx, str(error))
    commander = acting_commander(ctx, options)
    failed: list[str] = []
    try:
        for ref in refs:
            shown = forgiving.shown(ref)

            def said(outcome: Outcome, shown: str = shown) -> None:
                click.echo(terminal(f"{shown}: {outcome.text()}"))

            result = perform(
                log,
                commander,
                user=user,
                action=ACTION,
                target=forgiving.target(ref, zone),
                devices=devices,
                name=forgiving.COMMAND,
                args=forgiving.arguments(ref, zone),
                on_outcome=said,
            )
            failed += [f"{d} ({shown})" for d in result.failed]
    except ActionError as error:
        click.echo(terminal(f"{ACTION} not sent: {error}"), err=True)
        ctx.exit(1)
    finally:
        commander.close()
    if failed:
        click.echo(terminal(f"{ACTION}: not done on {', '.join(failed)}"), err=True)
        ctx.exit(1)
