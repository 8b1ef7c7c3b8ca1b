"""`edge-console forgive`: forget one person's or one card's anti-passback position.

A manager's signed `forgive` command goes to every device that may hold the card's position
(those serving --zone, or every door device), one command per card; the device puts the card
in no zone as of the command's time. One line per card and device; exit 1 names the devices
that refused or did not answer, exit 2 is bad input or a refused user.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

import click

from console.actions import (
    ActionError,
    Commander,
    Outcome,
    console_client,
    load_command_key,
    password_file_of,
    perform,
)
from console.cli_auth import acting_user
from console.cli_doors import acting_options, acting_site, refuse
from console.log import CentralLog
from console.people import Directory, RegistryMissing
from console.safe_output import terminal

ACTION: Final = "apb.forgive"
_PREFIX = re.compile(r"[0-9a-f]{4,64}")
SHOWN: Final = 12  # digits of a card reference shown: enough to tell cards apart


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
    log = CentralLog(options["db"])
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
    refs = _cards(ctx, site_dir / "registry.db", staff_no, card)
    site = acting_site(ctx, options)
    try:
        devices = site.passback_devices(zone)
    except ActionError as error:
        refuse(ctx, str(error))
    if not devices:
        refuse(ctx, str(site.none_to_send(ACTION)))
    try:
        key = load_command_key(options["command_key"])
    except ActionError as error:
        refuse(ctx, str(error))
    account = options["broker_user"]
    password_file = password_file_of(site_dir, account, options["broker_password_file"])
    client = console_client(
        options["broker_host"], options["broker_port"], account, password_file, options["ca_file"]
    )
    commander = Commander(
        client,
        key,
        site=options["site"],
        account=account,
        root=options["root"],
        timeout_s=options["timeout_s"],
    )
    failed: list[str] = []
    args: dict[str, Any] = {} if zone is None else {"zone": zone}
    try:
        for ref in refs:
            shown = f"card {ref[:SHOWN]}"
            where = f"{shown} in {zone}" if zone else shown

            def said(outcome: Outcome, shown: str = shown) -> None:
                click.echo(terminal(f"{shown}: {outcome.text()}"))

            result = perform(
                log,
                commander,
                user=user,
                action=ACTION,
                target=where,
                devices=devices,
                name="forgive",
                args={"card_ref": ref, **args},
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


def _cards(ctx: click.Context, registry: Path, staff_no: str | None, card: str | None) -> list[str]:
    """Return the card references to forgive; exit 2 saying why there are none."""
    try:
        directory = Directory(registry)
    except RegistryMissing as error:
        refuse(ctx, str(error))
    if staff_no is not None:
        refs = [
            ref
            for ref in directory.refs_for(staff_no)
            if (person := directory.person(ref)) is not None and person.staff_no == staff_no
        ]
        if not refs:
            refuse(ctx, f"no card for staff number {staff_no[:32]!r} in {registry}")
        return refs
    prefix = (card or "").lower()
    if not _PREFIX.fullmatch(prefix):
        refuse(ctx, "--card takes the first 4 to 64 hex digits of the card's reference")
    refs = directory.refs_starting(prefix)
    if len(refs) != 1:
        found = "no card" if not refs else f"{len(refs)} cards"
        refuse(ctx, f"{found} with a reference starting {prefix}; give more digits")
    return refs
