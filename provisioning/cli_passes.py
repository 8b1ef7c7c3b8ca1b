"""edge-provision passes: the desk's spare cards for day passes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from edge.cardref import card_reference
from edge.errors import EdgeError
from edge.keys import read_card_key
from edge.text import terminal
from provisioning.keys import SiteKeys
from provisioning.options import site_dir
from provisioning.passes import add_spare, list_passes, spare_ref, spares
from provisioning.registry import Registry


@click.group()
def passes() -> None:
    """Spare cards at the security desk, lent as day passes (edge-console pass)."""


@passes.command("add-spare")
@click.option("--number", required=True, help="The number printed on the spare card, e.g. 07.")
@click.option(
    "--card-id",
    "card",
    help="technology:ID of the card, e.g. felica:0114A1B2C3D4E5F6 (kept only as its reference).",
)
@click.option(
    "--reader",
    help="Or read the card from the desk reader at this nfcpy path: usb:054c:06c3 (Sony "
    "RC-S380), or udp:127.0.0.1:PORT for a simulated card.",
)
@click.option(
    "--timeout-s",
    type=click.FloatRange(min=1.0),
    default=30.0,
    show_default=True,
    help="With --reader: how long to wait for the card.",
)
@site_dir
@click.pass_context
def passes_add_spare(
    ctx: click.Context,
    number: str,
    card: str | None,
    reader: str | None,
    timeout_s: float,
    directory: Path,
) -> None:
    """Register a spare card for day passes by its printed number (typed or on a reader)."""
    if (card is None) == (reader is None):
        click.echo("add-spare refused: give --card-id or --reader (one of them)", err=True)
        ctx.exit(2)
    registry = Registry(directory / "registry.db")
    try:
        registry.site()
        key = read_card_key(SiteKeys(directory / "keys").card_key)
        if card is not None:
            found, technology = spare_ref(key, card)
        else:
            assert reader is not None  # one of the two, checked above
            click.echo(terminal(f"put spare card {number} on {reader} …"), err=True)
            found, technology = _read(reader, key, timeout_s)
        ref = add_spare(registry, number, found, technology)
    except (EdgeError, ValueError, OSError) as error:
        click.echo(terminal(f"add-spare refused: {error}"), err=True)
        ctx.exit(2)
    finally:
        registry.close()
    click.echo(terminal(f"spare card {number.strip()} registered (card {ref}…)"))


def _read(reader: str, key: bytes, timeout_s: float) -> tuple[str, str]:
    """Read one card on the desk reader; return its reference and technology."""
    try:
        # Here, not at the top: nfcpy is the optional nfc extra.
        from provisioning.desk_reader import read_card  # noqa: PLC0415
    except ImportError:
        raise ValueError("--reader needs nfcpy: pip install 'cityhall-edge[nfc]'") from None
    card = read_card(
        reader,
        timeout_s=timeout_s,
        referencer=lambda technology, raw: card_reference(key, technology, raw),
        proof_key=lambda ref: None,  # a spare proves nothing: its reference is enough
    )
    return card.card_ref, card.technology


@passes.command("spares")
@site_dir
def passes_spares(directory: Path) -> None:
    """List the spare cards and who has each now."""
    registry = Registry(directory / "registry.db")
    try:
        for spare in spares(registry, datetime.now(UTC)):
            out = f"out to {spare['out_to']}" if spare["out_to"] else "at the desk"
            click.echo(
                terminal(f"{spare['number']:<8} {spare['technology']} {spare['ref']}…  {out}")
            )
    finally:
        registry.close()


@passes.command("list")
@site_dir
def passes_list(directory: Path) -> None:
    """List day passes, newest first: live, returned or expired."""
    registry = Registry(directory / "registry.db")
    try:
        for p in list_passes(registry, datetime.now(UTC)):
            back = f", returned by {p.returned_by}" if p.returned_at else ""
            click.echo(
                terminal(
                    f"{p.number:<8} {p.staff_no:<8} {p.name}  {p.state:<8} until "
                    f"{p.until:%Y-%m-%d %H:%M %z}, issued by {p.issued_by}{back}"
                )
            )
    finally:
        registry.close()
