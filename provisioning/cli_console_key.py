"""`edge-provision console-key`: the key the security console signs door commands with."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import click

from edge.signing import key_id
from edge.text import terminal
from provisioning.files import write_file
from provisioning.keys import KeysError, SiteKeys
from provisioning.options import site_dir


@click.command("console-key")
@site_dir
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="Where to write the key (mode 0600 from its first byte; never overwritten).",
)
@click.pass_context
def console_key(ctx: click.Context, directory: Path, out: Path) -> None:
    """Write the site's command signing key for the console (edge-console --command-key).

    Devices trust this key for door commands (unlock, hold open, lockdown, resets), so the
    file is as precious as the site directory: keep it readable by the console's user only.
    """
    keys = SiteKeys(directory / "keys")
    try:
        private = keys.load_private("commands")
        pem = keys.private("commands").read_bytes()
    except (KeysError, OSError) as error:
        _refuse(ctx, str(error))
    try:
        write_file(out, pem, new=True)
    except FileExistsError:
        _refuse(ctx, f"{out} exists; move it away first (a key is never overwritten)")
    except OSError as error:
        _refuse(ctx, f"{out}: {error.strerror}")
    click.echo(f"wrote {terminal(out)} (mode 0600): command key {key_id(private.public_key())}")


def _refuse(ctx: click.Context, message: str) -> NoReturn:
    click.echo(terminal(f"console-key refused: {message}"), err=True)
    ctx.exit(2)
