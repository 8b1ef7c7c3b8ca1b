"""Options and helpers shared by the edge-provision commands."""

from __future__ import annotations

from pathlib import Path

import click

site_dir = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("site"),
    show_default=True,
    help="The site's directory: registry, keys, account passwords. Keep it private.",
)


def status_version(status: dict[str, object] | None) -> int:
    """Return the credential version a device's status reports (0 if none)."""
    credentials = (status or {}).get("credentials")
    if isinstance(credentials, dict) and isinstance(credentials.get("version"), int):
        return int(credentials["version"])
    return 0
