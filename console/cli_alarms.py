"""`edge-console alarms`: the alarms active now, as the alarms page shows them.

One line per alarm, newest first: local time, what it is, its state, the device, where,
and the detail (a card alarm names the card's holder with --registry; a zone reads by its
name with --site-dir).
"""

from __future__ import annotations

from pathlib import Path

import click

from console.actions import site_slug
from console.alarms import Words, active
from console.claims import Registry
from console.cli_users import db_option, log_at
from console.i18n import code
from console.people import Directory, RegistryMissing
from console.safe_output import terminal
from console.site_view import SiteScope, home_site


@click.command("alarms")
@db_option
@click.option(
    "--registry",
    type=click.Path(path_type=Path, dir_okay=False),
    help="edge-provision's registry.db, to name the holder of a card alarm's card.",
)
@click.option(
    "--site-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    help="edge-provision's site directory, to name zones (and the registry, if not given).",
)
@click.option(
    "--site",
    help="Only this site's alarms, its zones named (default: every site's; the registry's "
    "site names zones).",
)
@click.option("--lang", type=click.Choice(["en", "ja"]), default="en", show_default=True)
@click.pass_context
def alarms(
    ctx: click.Context,
    /,
    db: Path | str,
    registry: Path | None,
    site_dir: Path | None,
    site: str | None,
    lang: str,
) -> None:
    """Print the alarms active now, newest first."""
    if registry is None and site_dir is not None:
        registry = site_dir / "registry.db"
    try:
        people = Directory(registry)
    except RegistryMissing as error:
        click.echo(str(error), err=True)
        ctx.exit(2)
    zones: dict[str, str] = {}
    if site_dir is not None:
        zones = Registry(site_dir, site or _slug(registry)).zone_names()
    named = people if registry is not None else None
    log = log_at(db)
    try:
        # Rows written before sites existed are the registry's site's (or --site's).
        home = home_site(log, people.site or site)
        found = active(log, named, zones, SiteScope(site or "", home))
    finally:
        log.close()
    local = Words(named, zones).time
    several = len({a.site for a in found}) > 1
    for a in found:
        acked = f"  [acknowledged by {a.acked_by}]" if a.acked_by else ""
        where = f"{a.site}/{a.device}" if several else a.device
        line = (
            f"{local(a.ts)}  {code(a.type, lang)}  {code(a.state, lang)}  {where}  {a.where}  "
            f"{a.detail}{acked}"
        )
        click.echo(terminal(line.rstrip()))
    if not found:
        click.echo("no alarms now")


def _slug(registry: Path | None) -> str:
    return (site_slug(registry) if registry is not None else None) or ""
