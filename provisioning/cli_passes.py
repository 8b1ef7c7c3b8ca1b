"""edge-provision passes: the desk's spare cards for day passes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from edge.errors import EdgeError
from edge.keys import read_card_key
from edge.text import terminal
from provisioning.keys import SiteKeys
from provisioning.options import site_dir
from provisioning.passes import add_spare, list_passes, spares
from provisioning.registry import Registry


@click.group()
def passes() -> None:
    """Spare cards at the security desk, lent as day passes (edge-console pass)."""


@passes.command("add-spare")
@click.option("--number", required=True, help="The number printed on the spare card, e.g. 07.")
@click.option(
    "--card-id",
    "card",
    required=True,
    help="technology:ID of the card, e.g. felica:0114A1B2C3D4E5F6 (kept only as its reference).",
)
@site_dir
@click.pass_context
def passes_add_spare(ctx: click.Context, number: str, card: str, directory: Path) -> None:
    """Register a spare card for day passes by its printed number."""
    registry = Registry(directory / "registry.db")
    try:
        registry.site()
        key = read_card_key(SiteKeys(directory / "keys").card_key)
        ref = add_spare(registry, number, key, card)
    except (EdgeError, ValueError, OSError) as error:
        click.echo(terminal(f"add-spare refused: {error}"), err=True)
        ctx.exit(2)
    finally:
        registry.close()
    click.echo(terminal(f"spare card {number.strip()} registered (card {ref}…)"))


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
