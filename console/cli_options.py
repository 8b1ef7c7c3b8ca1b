"""Options the console's acting commands share: the site directory and where the broker is.

`edge-console door|lockdown|fire-reset`, `serve` and the desk commands (`card`, `pass`)
name these the same way, with the same defaults, from here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def site_dir_option(help: str, required: bool = True) -> Any:
    """Return the `--site-dir` option (edge-provision's site directory), with this help."""
    return click.option(
        "--site-dir",
        type=click.Path(path_type=Path, file_okay=False, exists=True),
        required=required,
        help=help,
    )


def broker_options(f: Any) -> Any:
    """Add `--root`, `--broker-host`, `--broker-port` and `--ca-file`."""
    options = [
        click.option("--root", default="edge", show_default=True, help="MQTT topic root."),
        click.option("--broker-host", default="localhost", show_default=True, help="Broker host."),
        click.option("--broker-port", default=8883, show_default=True, help="Broker port."),
        click.option(
            "--ca-file",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="TLS: the CA that signed the broker's certificate (omit for plain TCP).",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return f
