"""edge-provision passes: the desk's spare cards for day passes."""

from __future__ import annotations

import sys
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
    "--reader",
    help="Read the card from the desk reader at this nfcpy path: usb:054c:06c3 (Sony "
    "RC-S380), or udp:127.0.0.1:PORT for a simulated card. Without it, key the card's "
    "technology:ID when asked (hidden; piped: one line on stdin).",
)
@click.option(
    "--card-id",
    "card",
    hidden=True,
    help="Refused: a card id on the command line stays in shell history and ps.",
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
    """Register a spare card for day passes by its printed number (on a reader, or its id
    keyed when asked: never on the command line, where shell history and ps keep it)."""
    if card is not None:
        click.echo(
            "add-spare refused: --card-id would leave the card's id in shell history and ps; "
            "leave it out and key technology:ID when asked (or pipe it on stdin), or use "
            "--reader",
            err=True,
        )
        ctx.exit(2)
    registry = Registry(directory / "registry.db")
    try:
        registry.site()
        key = read_card_key(SiteKeys(directory / "keys").card_key)
        if reader is None:
            found, technology = spare_ref(key, _keyed(number))
        else:
            click.echo(terminal(f"put spare card {number} on {reader} …"), err=True)
            found, technology = _read(reader, key, timeout_s)
        ref = add_spare(registry, number, found, technology)
    except (EdgeError, ValueError, OSError) as error:
        click.echo(terminal(f"add-spare refused: {error}"), err=True)
        ctx.exit(2)
    finally:
        registry.close()
    click.echo(terminal(f"spare card {number.strip()} registered (card {ref}…)"))


def _keyed(number: str) -> str:
    """Return the spare's technology:ID keyed at a hidden prompt (piped: one stdin line)."""
    if sys.stdin.isatty():
        return str(
            click.prompt(
                f"technology:ID of spare card {number.strip()}",
                hide_input=True,
                default="",
                show_default=False,
            )
        ).strip()
    return sys.stdin.readline().strip()


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
