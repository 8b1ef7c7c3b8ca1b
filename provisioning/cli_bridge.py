"""`edge-provision bridge`: a site's bridge to the central broker, the centre's accounts, its CA.

The central broker is not a site (no registry, no devices), so its configuration has its own
command rather than a flag on `broker config`: it reads every site directory under `--sites`
and the centre's own directory (`--dir`: its keys and its console and operator passwords).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import NoReturn

import click
from cryptography import x509

from edge.errors import EdgeError
from edge.store.connection import write_transaction
from edge.text import terminal
from firmware_config.fields import check_slug, check_topic_root
from provisioning import bridge, broker
from provisioning.ca import make_ca
from provisioning.files import (
    PUBLIC,
    SHARED_WITH_GROUP,
    private_dir,
    shared_dir,
    write_file,
)
from provisioning.options import site_dir
from provisioning.registry import Registry

MOSQUITTO = "mosquitto"  # the group mosquitto reads its files as, after dropping root
CA_COPY = "central-ca.crt"
LOOPBACK = "127.0.0.1"


@click.group("bridge")
def bridge_group() -> None:
    """Bridge each site's broker to a central broker (MQTT 5 over TLS)."""


def _refuse(ctx: click.Context, command: str, message: str) -> NoReturn:
    click.echo(terminal(f"bridge {command} refused: {message}"), err=True)
    ctx.exit(2)


def _password(path: Path) -> str:
    """Return the secret in `path`, making it (0600, in a 0700 directory) if it is missing."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    private_dir(path.parent)
    password = secrets.token_urlsafe(24)
    write_file(path, (password + "\n").encode(), new=True)
    return password


def _ca_pem(path: Path) -> bytes:
    """Return the PEM of the central broker's CA certificate(s), or raise with the fix."""
    try:
        pem = path.read_bytes()
        x509.load_pem_x509_certificates(pem)
    except OSError as error:
        raise bridge.BridgeError(f"CA file {path}: {error.strerror}") from None
    except ValueError:
        raise bridge.BridgeError(
            f"CA file {path} holds no PEM certificate; give the CA certificate that signed the "
            "central broker's (edge-provision bridge ca writes it as keys/ca.crt)"
        ) from None
    return pem


@bridge_group.command("site")
@site_dir
@click.option("--central-host", required=True, help="The central broker's name, as in its cert.")
@click.option("--central-port", default=8883, show_default=True, help="Its TLS listener port.")
@click.option(
    "--ca-file",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The CA certificate that signed the central broker's certificate.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Where to write bridge.conf and a copy of the CA (beside broker config's files).",
)
@click.option("--root", default="edge", show_default=True, help="The MQTT topic root.")
@click.option(
    "--reconnect-s",
    type=(int, int),
    default=bridge.RESTART_S,
    show_default=True,
    help="Reconnect backoff: first and longest wait, in seconds.",
)
@click.pass_context
def bridge_site(
    ctx: click.Context,
    directory: Path,
    central_host: str,
    central_port: int,
    ca_file: Path,
    out: Path,
    root: str,
    reconnect_s: tuple[int, int],
) -> None:
    """Write the site broker's bridge to the centre, with the site's own bridge account.

    The account is `bridge-SITE`; its password is made once (site/bridge/password, 0600,
    never printed) and written into bridge.conf, which is 0640, group mosquitto: include it
    in the site broker's configuration (e.g. /etc/mosquitto/conf.d/). Then run
    `bridge central` so the central broker knows the account.

    \b
    Example:
      edge-provision bridge site --dir site --central-host central.example.lan \\
          --ca-file central/keys/ca.crt --out broker
    """
    try:
        check_topic_root(root)
        registry = Registry(directory / "registry.db")
        slug = registry.site()["slug"]
        bridge.check_host(central_host)
        pem = _ca_pem(ca_file)
        ca_copy = str((out / CA_COPY).resolve())
        bridge.check_path(ca_copy, "--out")
        password = _password(directory / "bridge" / "password")
        text = bridge.site_bridge(
            root, slug, central_host, central_port, ca_copy, password, reconnect_s
        )
        # The central configuration needs only the hash: the centre never holds the secret.
        hashed = f"{bridge.account(slug)}:{broker.password_hash(password)}\n"
        write_file(directory / "bridge" / "central.passwd", hashed.encode())
    except (EdgeError, ValueError) as error:
        _refuse(ctx, "site", str(error))
    shared_dir(out, MOSQUITTO)
    write_file(out / CA_COPY, pem, PUBLIC)
    write_file(out / "bridge.conf", text.encode(), SHARED_WITH_GROUP, MOSQUITTO)
    with write_transaction(registry.db) as db:
        registry.record(db, "bridge site", central=f"{central_host}:{central_port}", out=str(out))
    registry.close()
    click.echo(
        terminal(
            f"wrote {out / 'bridge.conf'} (bridge {bridge.account(slug)} to "
            f"{central_host}:{central_port}) and {out / CA_COPY}; "
            f"password in {directory / 'bridge' / 'password'} (0600)"
        )
    )


@bridge_group.command("central")
@click.option(
    "--sites",
    "sites_dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    required=True,
    help="The directory holding every site's directory (each made by site init).",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("central"),
    show_default=True,
    help="The centre's own directory: keys (bridge ca) and account passwords. Keep it private.",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="Where to write the central broker's passwd, acl and edge.conf.",
)
@click.option("--root", default="edge", show_default=True, help="The MQTT topic root.")
@click.option("--port", default=8883, show_default=True, help="The listener port in edge.conf.")
@click.option("--console", "consoles", multiple=True, help="A console account (repeatable).")
@click.option("--operator", "operators", multiple=True, help="An operator account (repeatable).")
@click.option(
    "--plain-loopback",
    is_flag=True,
    help="Without bridge ca's keys: a plain-text listener on 127.0.0.1 only (tests, one host).",
)
@click.pass_context
def bridge_central(
    ctx: click.Context,
    sites_dir: Path,
    directory: Path,
    out: Path,
    root: str,
    port: int,
    consoles: tuple[str, ...],
    operators: tuple[str, ...],
    plain_loopback: bool,
) -> None:
    """Write the central broker's password file, ACL and settings for every site's bridge.

    A site's bridge may write only its own site's status, events, occupancy, replies and
    bridge state, and read only its own site's commands and credentials. Each --console
    reads every site and sends commands; each --operator publishes credentials; their
    passwords are made once in DIR/accounts/NAME.password (0600, never printed). A site
    without a bridge yet (no `bridge site`) is named and left out. Run it again after
    adding a site, then restart the central broker. The listener uses TLS with the keys in
    DIR/keys (`bridge ca`); without them it is refused unless --plain-loopback asks for a
    plain-text listener on 127.0.0.1 only.
    """
    try:
        check_topic_root(root)
        hashes = _site_hashes(sites_dir)
        accounts = {name: "console" for name in consoles} | {n: "operator" for n in operators}
        if len(accounts) != len(consoles) + len(operators):
            raise bridge.BridgeError("an account is named twice; give each its own name")
        for name in accounts:
            bridge.check_central_name(check_slug(name))
        acl = bridge.central_acl(root, hashes, accounts)
        tls = _central_tls(directory, plain_loopback)
    except (EdgeError, ValueError) as error:
        _refuse(ctx, "central", str(error))
    lines = list(hashes.values())
    for name in accounts:
        password = _password(directory / "accounts" / f"{name}.password")
        lines.append(f"{name}:{broker.password_hash(password)}\n")
    try:
        passwd = bridge.central_passwd(lines)
    except bridge.BridgeError as error:
        _refuse(ctx, "central", str(error))
    shared_dir(out, MOSQUITTO)
    write_file(out / "passwd", passwd.encode(), SHARED_WITH_GROUP, MOSQUITTO)
    write_file(out / "acl", acl.encode(), SHARED_WITH_GROUP, MOSQUITTO)
    settings = broker.broker_settings(
        port,
        str((out / "passwd").resolve()),
        str((out / "acl").resolve()),
        tls,
        LOOPBACK if tls is None else None,
    )
    write_file(out / "edge.conf", settings.encode(), SHARED_WITH_GROUP, MOSQUITTO)
    sites = len(hashes)
    click.echo(
        terminal(
            f"wrote {out / 'passwd'}, {out / 'acl'}, {out / 'edge.conf'} for the bridges of "
            f"{sites} sites and {len(accounts)} accounts"
            + ("" if tls else f"; plain text on {LOOPBACK} only")
        )
    )


def _central_tls(directory: Path, plain_loopback: bool) -> tuple[str, str, str] | None:
    """Return the listener's (ca, cert, key) in DIR/keys, or None for --plain-loopback."""
    keys = (directory / "keys").resolve()
    if not (keys / "broker-server.crt").exists():
        if plain_loopback:
            return None
        raise bridge.BridgeError(
            f"no TLS keys in {keys}: the sites' bridges would send passwords and events in "
            f"plain text; run `edge-provision bridge ca --dir {directory} --host NAME` first "
            "(or give --plain-loopback for a plain listener on 127.0.0.1 only)"
        )
    if plain_loopback:
        raise bridge.BridgeError(
            f"--plain-loopback with TLS keys in {keys}: drop --plain-loopback to use them"
        )
    return str(keys / "ca.crt"), str(keys / "broker-server.crt"), str(keys / "broker-server.key")


def _site_hashes(sites_dir: Path) -> dict[str, str]:
    """Return {site: its bridge's passwd line} for every site directory under `sites_dir`."""
    found: dict[str, str] = {}
    where: dict[str, Path] = {}
    for path in sorted(p for p in sites_dir.iterdir() if (p / "registry.db").is_file()):
        registry = Registry(path / "registry.db")
        try:
            slug = registry.site()["slug"]
        finally:
            registry.close()
        if slug in where:
            raise bridge.BridgeError(
                f"{where[slug]} and {path} are both site {slug!r}: two sites would share one "
                "topic tree and one bridge account; keep one of them under --sites"
            )
        where[slug] = path
        line = path / "bridge" / "central.passwd"
        if not line.is_file():
            click.echo(
                terminal(
                    f"note: site {slug} ({path}) has no bridge yet and is left out; run "
                    f"edge-provision bridge site --dir {path} …"
                ),
                err=True,
            )
            continue
        try:
            text = line.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise bridge.BridgeError(
                f"{line}: {error}; run edge-provision bridge site again"
            ) from None
        found[slug] = bridge.central_passwd_line(slug, text, line)
    if not found:
        raise bridge.BridgeError(
            f"no site under {sites_dir} has a bridge; run edge-provision bridge site for each"
        )
    return found


@bridge_group.command("ca")
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("central"),
    show_default=True,
    help="The centre's own directory; the CA and server keys go to DIR/keys (0600).",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    required=True,
    help="A name or IP address the sites reach the central broker by (repeatable).",
)
@click.pass_context
def bridge_ca(ctx: click.Context, directory: Path, hosts: tuple[str, ...]) -> None:
    """Make a private CA and the central broker's server certificate (keys 0600).

    Give every site `--ca-file DIR/keys/ca.crt`. An operator with a PKI of their own uses
    its CA and server certificate instead: put them in DIR/keys as ca.crt,
    broker-server.crt and broker-server.key.
    """
    try:
        for host in hosts:
            bridge.check_host(host)
        private_dir(directory)
        paths = make_ca(private_dir(directory / "keys"), "central", list(hosts))
    except FileExistsError as error:
        _refuse(ctx, "ca", f"{error.filename} exists: a CA is never overwritten; move it away")
    except (EdgeError, ValueError) as error:
        _refuse(ctx, "ca", str(error))
    for name, path in paths.items():
        click.echo(terminal(f"  {name.replace('_', ' '):<12} {path}"))
