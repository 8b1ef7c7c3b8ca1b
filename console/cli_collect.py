"""`edge-console collect`: one collector, for the sites it is given, into the central log.

edge-console collect --log postgresql://console@db.hq/edge --sites-dir /srv/edge/sites \
    --site kamakura-city-hall --site zushi-branch --user console-a --password-file …
"""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path
from typing import Any

import click

from console.actions import site_slug
from console.anchor import Anchorer, AnchorError, load_or_create_key
from console.cli_users import DEFAULT_DB, LogTarget, beside
from console.collector import Collector
from console.log_store import is_url, masked
from console.sites import SitesError, site_dirs, usable
from edge.errors import EdgeError

ANCHOR_FILE = "anchors.jsonl"  # beside the log unless --anchor-file
ANCHOR_KEY = "console-anchor.key"


def _no_group(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    if value is not None:
        raise click.BadParameter(
            "collectors share no subscription: each one subscribes in its own persistent "
            "session (mosquitto restores those after its restart, never `$share` ones) and "
            "the log stores each event once. Remove --group; give each collector its own "
            "--user, and --site to split the sites between them.",
            ctx=ctx,
            param=param,
        )


def collect_options(f: Any) -> Any:
    """Add the sites, the log, the account and the anchor options of `collect`."""
    options = [
        click.option(
            "--log",
            "--db",
            "log_target",
            type=LogTarget(),
            default=DEFAULT_DB,
            show_default=True,
            help="The central log: a SQLite file (one site's embedded log) or a "
            "postgresql://USER@HOST/DB URL (many sites, several collectors).",
        ),
        click.option(
            "--sites-dir",
            type=click.Path(path_type=Path, file_okay=False, exists=True),
            help="A directory of edge-provision site directories (each with registry.db and "
            "devices/): every one is a site this collector may take.",
        ),
        click.option(
            "--site-dir",
            "single",
            multiple=True,
            type=click.Path(path_type=Path, file_okay=False, exists=True),
            help="An edge-provision site directory (repeatable), beside or instead of --sites-dir.",
        ),
        click.option(
            "--site",
            "chosen",
            multiple=True,
            help="A site id this collector takes (repeatable) [default: every site given]. "
            "Two collectors may take the same sites: each event is stored once.",
        ),
        click.option(
            "--registry",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="One site's SITE/registry.db, with one --site: the same as --site-dir SITE.",
        ),
        click.option("--root", default="edge", show_default=True, help="MQTT topic root."),
        click.option("--host", default="localhost", show_default=True, help="Broker host."),
        click.option("--port", default=8883, show_default=True, help="Broker port."),
        click.option(
            "--ca-file",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="TLS: the CA that signed the broker's certificate (omit for plain TCP).",
        ),
        click.option(
            "--user",
            default="console",
            show_default=True,
            help="Broker account, one per collector: the broker uses it as the client id, "
            "and its persistent session keeps what arrives while the collector is away.",
        ),
        click.option(
            "--password-file",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            help="File with the account's password (from edge-provision account add).",
        ),
        click.option("--group", hidden=True, expose_value=False, callback=_no_group, is_eager=True),
        click.option(
            "--anchor-file",
            type=click.Path(path_type=Path, dir_okay=False),
            help="Append every chain's head, signed, to this file as a JSON line every "
            "--anchor-every-s and on stop [default: anchors.jsonl beside --log, or beside "
            "the default log for a URL]. Keep it on another disk or host; "
            "`verify --anchor-file` checks the log against it.",
        ),
        click.option(
            "--anchor-key",
            type=click.Path(path_type=Path, dir_okay=False),
            help="The Ed25519 key (PEM) that signs anchor lines; created (mode 0600) when "
            "missing [default: console-anchor.key beside --log, or beside the default log "
            "for a URL].",
        ),
        click.option(
            "--anchor-every-s",
            type=click.FloatRange(min=0.1, max=86400),
            default=300,
            show_default=True,
            help="Seconds between anchor lines (a line only when the log moved).",
        ),
        click.option("--no-anchor", is_flag=True, help="Write no anchor lines."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


@click.command()
@collect_options
def collect(
    log_target: Path | str,
    sites_dir: Path | None,
    single: tuple[Path, ...],
    chosen: tuple[str, ...],
    registry: Path | None,
    root: str,
    host: str,
    port: int,
    ca_file: Path | None,
    user: str,
    password_file: Path | None,
    anchor_file: Path | None,
    anchor_key: Path | None,
    anchor_every_s: float,
    no_anchor: bool,
) -> None:
    """Collect the devices' events of the sites given into the central log until stopped.

    Each site directory's device configurations (SITE/devices/*.toml) say what each device
    of that site may report. Unless --no-anchor, the heads of the log's chains are signed
    into --anchor-file on a schedule and on stop, so a log rewritten later fails
    `verify --anchor-file`.
    """
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        sites = _sites(sites_dir, single, chosen, registry)
    except SitesError as error:
        raise click.UsageError(str(error)) from None
    anchorer = None if no_anchor else _anchorer(log_target, anchor_file, anchor_key, anchor_every_s)
    password = password_file.read_text().strip() if password_file else None
    try:
        collector = Collector(
            log_target,
            sites=sites,
            host=host,
            port=port,
            root=root,
            username=user,
            password=password,
            client_id=user,
            ca_file=str(ca_file) if ca_file else None,
            anchorer=anchorer,
        )
    except EdgeError as error:
        raise click.ClickException(str(error)) from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        collector.start()
    except EdgeError as error:
        collector.close()
        raise click.ClickException(str(error)) from None
    click.echo(
        f"collecting {root}/{{{','.join(sites)}}} into {_shown(log_target)} as {user}", err=True
    )
    stop.wait()
    collector.close()
    click.echo(f"stopped: {collector.stored} events stored this run", err=True)


def _sites(
    sites_dir: Path | None, single: tuple[Path, ...], chosen: tuple[str, ...], registry: Path | None
) -> dict[str, Path]:
    """Return {site: directory} from the options; `--registry` names one site's directory."""
    if registry is None:
        return site_dirs(sites_dir, single, chosen)
    if sites_dir is not None or single or len(chosen) != 1:
        raise SitesError(
            "--registry names one site: give it with exactly one --site, or use --site-dir "
            "(repeatable) and --sites-dir for several"
        )
    usable(chosen[0], "--site")
    held = site_slug(registry)
    if held is not None and held != chosen[0]:
        raise SitesError(f"--site {chosen[0]}: {registry} is the registry of site {held}")
    return {chosen[0]: registry.parent}


def _anchorer(
    log_target: Path | str, anchor_file: Path | None, anchor_key: Path | None, every_s: float
) -> Anchorer:
    """Return the anchorer, its files beside the log (beside the default log for a URL)."""
    try:
        key = load_or_create_key(anchor_key or beside(log_target, ANCHOR_KEY))
    except AnchorError as error:
        raise click.ClickException(str(error)) from None
    anchorer = Anchorer(anchor_file or beside(log_target, ANCHOR_FILE), key, every_s)
    click.echo(
        f"anchoring to {anchorer.path} every {every_s:g} s; anchor public key "
        f"{anchorer.public_key}",
        err=True,
    )
    return anchorer


def _shown(log_target: Path | str) -> str:
    """Return the log target without a password a URL may carry (before `@` or in its
    query string)."""
    return masked(str(log_target)) if is_url(log_target) else str(log_target)
