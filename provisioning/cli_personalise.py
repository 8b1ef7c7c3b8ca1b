"""edge-provision cards personalise: give a blank FeliCa Lite-S card its own key at the desk."""

from __future__ import annotations

from pathlib import Path

import click

from edge.errors import EdgeError
from edge.text import terminal
from provisioning.card_keys import load_master
from provisioning.card_profiles import record
from provisioning.keys import SiteKeys
from provisioning.options import site_dir
from provisioning.personalise import personalise_lite_s


@click.command("personalise")
@site_dir
@click.option(
    "--reader",
    required=True,
    help="The desk reader's nfcpy path: usb:054c:06c3 (Sony RC-S380), usb:054c:02e1 "
    "(RC-S370/S330), or udp:127.0.0.1:PORT for a simulated card.",
)
@click.option("--staff-no", required=True, help="The staff number whose card this is.")
@click.option(
    "--timeout-s",
    type=click.FloatRange(min=1.0),
    default=30.0,
    show_default=True,
    help="How long to wait for the card.",
)
@click.pass_context
def personalise(
    ctx: click.Context, directory: Path, reader: str, staff_no: str, timeout_s: float
) -> None:
    """Give a blank FeliCa Lite-S card its own key and record it as --staff-no's card.

    The key derives from the site's card master key (DIR/keys/card-master, made on first
    use) and the card's IDm; the card is then locked so that no one can change it. A card
    already personalised is refused. The card's id is never shown.
    """
    try:
        master = load_master(SiteKeys(directory / "keys"))
        click.echo(terminal(f"put a blank FeliCa Lite-S card on {reader} …"), err=True)
        idm = personalise_lite_s(reader, master, timeout_s=timeout_s)
        record(
            directory,
            staff_no=staff_no,
            technology="felica",
            card_id=idm,
            profile="lite-s",
        )
    except (EdgeError, ValueError, OSError) as error:
        click.echo(terminal(f"cards personalise refused: {error}"), err=True)
        ctx.exit(2)
    click.echo(terminal(f"personalised a FeliCa Lite-S card for staff {staff_no}"))
