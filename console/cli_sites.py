"""`edge-console sites`, `devices` and `muster`: the console across sites on the command line.

edge-console sites
edge-console devices --site kamakura-city-hall
edge-console muster --site kamakura-city-hall
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from console.cli_users import db_option, log_at
from console.log import CentralLog
from console.people import Directory
from console.rollcall import LINE_ZONE, by_site, inside
from console.safe_output import terminal
from console.site_view import (
    SiteError,
    SiteScope,
    device_health,
    duration,
    scope_of,
    site_links,
    status_of,
)


def site_option(f: Any) -> Any:
    """Add `--site` (one site; every site if omitted)."""
    return click.option(
        "--site",
        default="",
        help="A site id (every site if omitted); `edge-console sites` lists them.",
    )(f)


def registry_option(f: Any) -> Any:
    """Add `--registry`: names for card references; its site owns rows without a site."""
    return click.option(
        "--registry",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="edge-provision's registry.db, to put names to card references.",
    )(f)


def site_scope(log: CentralLog, people: Directory, site: str) -> SiteScope:
    """Return the scope `--site` asks for, or a usage error naming the log's sites."""
    try:
        return scope_of(log, site, people.site)
    except SiteError as error:
        raise click.BadParameter(terminal(str(error)), param_hint="--site") from None


@click.command("sites")
@db_option
@registry_option
def sites(db: Path | str, registry: Path | None) -> None:
    """List each site: linked to the centre or not (since when), messages its broker holds
    for the centre, its newest event and how far behind now that is, its devices online."""
    log, people = log_at(db), Directory(registry)
    links = site_links(log, people.site, datetime.now(UTC))
    if not links:
        click.echo("no site has reported yet")
        return
    click.echo(
        f"{'site':<24} {'link':<13} {'since':<25} {'held':>6} {'newest event':<25} "
        f"{'behind':<12} online"
    )
    for s in links:
        link = "unknown" if s.connected is None else "connected" if s.connected else "CUT OFF"
        held = "" if s.stored is None else str(s.stored)
        click.echo(
            terminal(
                f"{s.site:<24} {link:<13} {s.since or '':<25} {held:>6} {s.newest_ts or '':<25} "
                f"{duration(s.behind_s):<12} {s.online}/{s.devices}"
            )
        )


@click.command("devices")
@db_option
@registry_option
@site_option
def devices(db: Path | str, registry: Path | None, site: str) -> None:
    """List every device's health by site: online, software, credentials, backlog, gaps."""
    log, people = log_at(db), Directory(registry)
    shown = ""
    for name, device, row, gaps in sorted(
        device_health(log, site_scope(log, people, site)), key=lambda r: (r[0], r[1])
    ):
        if name != shown:
            click.echo(terminal(f"site {name or '-'}"))
            shown = name
        status = status_of(row.get("status"))
        state = "online" if status.get("state") == "online" else "offline"
        credentials = status.get("credentials")
        version = credentials.get("version") if isinstance(credentials, dict) else None
        click.echo(
            terminal(
                f"  {device:<24} {state:<8} v{version or '-'!s:<6} "
                f"backlog {status.get('backlog', '-')!s:<6} "
                f"events {row['contiguous']}/{row['max_seq']} missing {len(gaps)}"
            )
        )


@click.command()
@db_option
@registry_option
@click.option("--zone", "line_zone", default=LINE_ZONE, show_default=True)
@site_option
def muster(db: Path | str, registry: Path | None, line_zone: str, site: str) -> None:
    """Print who is inside the security line now, by site, floor and department.

    Each site's line is its own: --site keeps to one site; without it every site is
    listed on its own, each with its total.
    """
    log, people = log_at(db), Directory(registry)
    present = inside(log, line_zone, scope=site_scope(log, people, site))
    click.echo(f"inside the security line: {len(present)}")
    groups = by_site(present)
    for site_name, here in groups.items():
        if len(groups) > 1 or site:
            click.echo(terminal(f"site {site_name}: {len(here)}"))
        rows = []
        for p in here:
            person = people.person(p.card_ref, p.ts)
            if person:
                rows.append((person.floor, person.department, person.name, person.staff_no, p))
            else:
                rows.append(("-", "?", f"card {p.card_ref[:12]}…", "", p))
        for floor, department, name, staff_no, p in sorted(rows, key=lambda r: r[:3]):
            click.echo(
                terminal(f"  {floor:>2}F {department:<12} {name:<14} {staff_no:<8} {p.door} {p.ts}")
            )
