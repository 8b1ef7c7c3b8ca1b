"""The `edge-provision` command line: site, accounts, devices, cardholders, rules, publish."""

from __future__ import annotations

import os
import secrets
import sqlite3
import sys
from collections.abc import Sequence
from pathlib import Path

import click

from edge.errors import EdgeError
from edge.store.connection import write_transaction
from edge.text import terminal
from firmware_config.fields import check_slug, check_timezone, check_topic_root
from provisioning import broker
from provisioning.ca import make_ca
from provisioning.cli_bridge import bridge_group
from provisioning.cli_cards import cards, people
from provisioning.cli_console_key import console_key

try:
    from provisioning.cli_personalise import personalise
except ImportError:  # nfcpy is optional (the nfc extra): say how to get it

    @click.command("personalise", context_settings={"ignore_unknown_options": True})
    @click.argument("args", nargs=-1, type=click.UNPROCESSED)
    def personalise(args: tuple[str, ...]) -> None:
        """Give a blank FeliCa Lite-S card its key at the desk (needs the nfc extra)."""
        raise click.ClickException(
            "personalising cards needs nfcpy: pip install 'cityhall-edge[nfc]'"
        )


from provisioning.cli_devices import device
from provisioning.cli_passes import passes
from provisioning.cli_rules import publish, rules
from provisioning.cli_uc import uc_presence
from provisioning.devices import check_device_id
from provisioning.files import (
    SHARED_WITH_GROUP,
    private_database,
    private_dir,
    shared_dir,
    write_file,
)
from provisioning.keys import generate
from provisioning.options import new_site_dir, site_dir
from provisioning.registry import (
    Registry,
)

ROLES = broker.ROLES
MOSQUITTO = "mosquitto"
"""The group (and user) Debian's mosquitto runs as after it drops root."""


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Provision a site: keys, accounts, devices, cardholders, rules; publish credentials."""


@cli.group()
def site() -> None:
    """The site itself: its id, time zone and keys."""


@site.command("init")
@click.option("--site", "slug", required=True, help="Site id, e.g. kamakura-city-hall.")
@click.option("--timezone", default="Asia/Tokyo", show_default=True, help="IANA time zone.")
@click.option(
    "--ca",
    "broker_hosts",
    multiple=True,
    help="Also make a small CA and a broker certificate for this host name (repeatable).",
)
@new_site_dir
@click.pass_context
def site_init(
    ctx: click.Context, slug: str, timezone: str, broker_hosts: tuple[str, ...], directory: Path
) -> None:
    """Create the registry and the site keys (files 0600, never printed).

    \b
    Example:
      edge-provision site init --site kamakura-city-hall --dir /srv/edge/site
    """
    try:
        check_slug(slug)
        check_timezone(timezone)
        private_dir(directory)
        ids = generate(directory / "keys")
        tls = make_ca(directory / "keys", slug, list(broker_hosts)) if broker_hosts else {}
        registry = Registry(private_database(directory / "registry.db"))
        registry.init_site(slug, timezone, ids)
        registry.close()
    except (EdgeError, ValueError) as error:
        click.echo(f"site init refused: {error}", err=True)
        ctx.exit(2)
    click.echo(f"site {slug} ({timezone}) created in {directory}")
    click.echo(f"  card key          {directory / 'keys' / 'card-key'} (0600)")
    for name, key in ids.items():
        click.echo(f"  {name + ' key':<17} {directory / 'keys' / (name + '.key')} (0600), id {key}")
    for name, path in tls.items():
        click.echo(f"  {name.replace('_', ' '):<17} {path}")


@cli.group()
def account() -> None:
    """Broker accounts: one per device, one per console process, operators and the rooms service."""


@account.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the account may do.")
@site_dir
@click.pass_context
def account_add(ctx: click.Context, username: str, role: str, directory: Path) -> None:
    """Create a broker account with a random password, written 0600 to the site directory.

    A device account's name is the device id. The broker uses the account name as the
    client id, so every process needs its own account: one per collector (e.g. console-a,
    console-b when several share the load). The rooms service's account has role `rooms`
    (e.g. `account add rooms --role rooms`); Home Assistant's has role `homeassistant`
    (e.g. `account add home-assistant --role homeassistant`). The password is never
    printed: it goes into the device bundle (or the console's, rooms service's or Home
    Assistant's configuration) from its file.
    """
    try:
        check_device_id(username) if role == "device" else check_slug(username)
        registry = Registry(directory / "registry.db")
        registry.site()
        password = secrets.token_urlsafe(24)
        registry.add_account(username, role, broker.password_hash(password))
    except (EdgeError, ValueError) as error:
        click.echo(f"account add refused: {error}", err=True)
        ctx.exit(2)
    secrets_dir = directory / "accounts"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(secrets_dir, 0o700)
    path = secrets_dir / f"{username}.password"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    registry.close()
    click.echo(f"account {username} ({role}); password in {path} (0600)")


@cli.group("broker")
def broker_group() -> None:
    """mosquitto's password file, ACL and settings for this site."""


@broker_group.command("config")
@site_dir
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Where to write passwd, acl and edge.conf.",
)
@click.option(
    "--root", default="edge", show_default=True, help="The MQTT topic root of the devices."
)
@click.option("--port", default=8883, show_default=True, help="The listener port in edge.conf.")
@click.option(
    "--ha-prefix",
    default=broker.HA_PREFIX,
    show_default=True,
    help="Home Assistant's discovery prefix: the rooms config's [homeassistant] prefix.",
)
@click.pass_context
def broker_config(
    ctx: click.Context, directory: Path, out: Path, root: str, port: int, ha_prefix: str
) -> None:
    """Write mosquitto's password file (hashed), a least-privilege ACL and its settings.

    Each account gets only its role's topics (a device: its own branch); the client id is
    the account name, so no account can take another's session. edge.conf bounds packets
    (16 MiB: a 100,000-card credential snapshot is about 6 MB) and each client's queue
    (1,000,000 messages or 1 GiB). Run it again after adding accounts, then reload or restart
    mosquitto. Add TLS (cafile, certfile, keyfile) to the listener for production.
    Where the rooms config sets another `[homeassistant] prefix`, pass the same one as
    `--ha-prefix` every time: the rooms and Home Assistant accounts get rights there only.
    """
    try:
        check_topic_root(root)
        broker.check_ha_prefix(ha_prefix, root)
        registry = Registry(directory / "registry.db")
        site_row = registry.site()
        accounts = registry.accounts()
    except (EdgeError, ValueError) as error:
        click.echo(f"broker config refused: {error}", err=True)
        ctx.exit(2)
    # Started as root, mosquitto reads these after dropping to user mosquitto: 0640 and
    # group mosquitto (where that group exists), in a directory it may enter.
    shared_dir(out, MOSQUITTO)
    passwords = broker.password_file({a["username"]: a["password_hash"] for a in accounts})
    write_file(out / "passwd", passwords.encode(), SHARED_WITH_GROUP, MOSQUITTO)
    roles = {a["username"]: a["role"] for a in accounts}
    zones, problems = broker.device_zones(directory, [u for u, r in roles.items() if r == "device"])
    for problem in problems:
        click.echo(terminal(f"note: {problem}"), err=True)
    acl = broker.acl(root, site_row["slug"], roles, zones, ha_prefix)
    write_file(out / "acl", acl.encode(), SHARED_WITH_GROUP, MOSQUITTO)
    settings = broker.broker_settings(
        port, str((out / "passwd").resolve()), str((out / "acl").resolve()), _tls(directory)
    )
    write_file(out / "edge.conf", settings.encode(), SHARED_WITH_GROUP, MOSQUITTO)
    with write_transaction(registry.db) as db:
        registry.record(db, "broker config", out=str(out), accounts=len(accounts))
    registry.close()
    written = ", ".join(str(out / name) for name in ("passwd", "acl", "edge.conf"))
    click.echo(f"wrote {written} for {len(accounts)} accounts")


cli.add_command(device)
cards.add_command(personalise)
cli.add_command(cards)
people.add_command(uc_presence)
cli.add_command(people)
cli.add_command(rules)
cli.add_command(publish)
cli.add_command(passes)
cli.add_command(console_key)
cli.add_command(bridge_group)


def _tls(directory: Path) -> tuple[str, str, str] | None:
    keys = (directory / "keys").resolve()
    if not (keys / "broker-server.crt").exists():
        return None
    return (str(keys / "ca.crt"), str(keys / "broker-server.crt"), str(keys / "broker-server.key"))


def main(argv: Sequence[str] | None = None) -> None:
    """Run the `edge-provision` command line; every file it creates is private (umask 077)."""
    previous = os.umask(0o077)
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="edge-provision")
    except sqlite3.DatabaseError as error:  # a registry.db that is not one, or is locked
        click.echo(f"edge-provision: the site's registry cannot be used: {error}", err=True)
        sys.exit(2)
    finally:
        os.umask(previous)


if __name__ == "__main__":
    main()
