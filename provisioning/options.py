"""Options and helpers shared by the edge-provision commands."""

from __future__ import annotations

from pathlib import Path

import click

from edge.text import terminal


def _existing_site(ctx: click.Context, param: click.Parameter, value: Path) -> Path:
    """Refuse a --dir without a registry before any command opens (and so creates) one."""
    if not (value / "registry.db").is_file():
        where = terminal(value)
        raise click.BadParameter(
            f"no site at {where}; run edge-provision site init --site ID --dir {where}",
            ctx,
            param,
        )
    return value


site_dir = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("site"),
    show_default=True,
    callback=_existing_site,
    help="The site's directory: registry, keys, account passwords. Keep it private.",
)
"""--dir of a site that `site init` made."""

new_site_dir = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("site"),
    show_default=True,
    help="Where to create the site: registry, keys, account passwords. Keep it private.",
)
"""--dir of the site `site init` makes."""


def status_version(status: dict[str, object] | None) -> int:
    """Return the credential version a device's status reports (0 if none)."""
    credentials = (status or {}).get("credentials")
    if isinstance(credentials, dict) and isinstance(credentials.get("version"), int):
        return int(credentials["version"])
    return 0
