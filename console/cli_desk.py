"""`edge-console card` and `pass`: lost and revoked cards and day passes at the desk."""

from __future__ import annotations

import click


@click.group("card")
def card_group() -> None:
    """Mark a person's card lost or revoked, or reinstate it."""


@click.group("pass")
def pass_group() -> None:
    """Issue, return and list day passes."""
