"""`edge-console door`, `lockdown` and `fire-reset`: signed commands to the doors."""

from __future__ import annotations

import click


@click.group("door")
def door_group() -> None:
    """Unlock a door once, hold it open, put it back to normal, reset its alarms."""


@click.group("lockdown")
def lockdown() -> None:
    """Lock the site (or chosen zones or doors) down, or lift it."""


@click.command("fire-reset")
def fire_reset() -> None:
    """Reset doors released by a fire input once the input has cleared."""
