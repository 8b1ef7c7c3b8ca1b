"""The `edge-provision` command line: site, accounts, devices, cardholders, rules, publish."""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence
from pathlib import Path

import click

from edge.errors import EdgeError
from edge.keys import read_card_key
from edge.link.mqtt import publish_and_watch
from edge.link.topics import credentials as credentials_topic
from edge.link.topics import status as status_topic
from edge.store.database import write_transaction
from firmware_config.fields import check_slug, check_timezone
from firmware_config.model import MqttConfig
from provisioning import broker
from provisioning.devices import EXAMPLES, bundle, config_from_example
from provisioning.keys import SiteKeys, generate
from provisioning.publish import build_all
from provisioning.registry import (
    Registry,
    add_device,
    card_owners,
    device_role,
    import_people,
    people_with_cards,
    set_card_status,
)
from provisioning.rules import add_rule, add_schedule, set_override_groups
from provisioning.staff_csv import RowProblem, decode
from provisioning.staff_csv import parse as parse_staff

ROLES = ("device", "console", "operator")

site_dir = click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("site"),
    show_default=True,
    help="The site's directory: registry, keys, account passwords. Keep it private.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Provision a site: keys, broker accounts, broker configuration."""


@cli.group()
def site() -> None:
    """The site itself: its id, time zone and keys."""


@site.command("init")
@click.option("--site", "slug", required=True, help="Site id, e.g. kamakura-city-hall.")
@click.option("--timezone", default="Asia/Tokyo", show_default=True, help="IANA time zone.")
@site_dir
@click.pass_context
def site_init(ctx: click.Context, slug: str, timezone: str, directory: Path) -> None:
    """Create the registry and the site keys (files 0600, never printed).

    \b
    Example:
      edge-provision site init --site kamakura-city-hall --dir /srv/edge/site
    """
    try:
        check_slug(slug)
        check_timezone(timezone)
        ids = generate(directory / "keys")
        registry = Registry(directory / "registry.db")
        registry.init_site(slug, timezone, ids)
        registry.close()
    except (EdgeError, ValueError) as error:
        click.echo(f"site init refused: {error}", err=True)
        ctx.exit(2)
    click.echo(f"site {slug} ({timezone}) created in {directory}")
    click.echo(f"  card key          {directory / 'keys' / 'card-key'} (0600)")
    for name, key in ids.items():
        click.echo(f"  {name + ' key':<17} {directory / 'keys' / (name + '.key')} (0600), id {key}")


@cli.group()
def account() -> None:
    """Broker accounts: one per device, plus console and operator accounts."""


@account.command("add")
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True, help="What the account may do.")
@site_dir
@click.pass_context
def account_add(ctx: click.Context, username: str, role: str, directory: Path) -> None:
    """Create a broker account with a random password, written 0600 to the site directory.

    A device account's name is the device id. The password is never printed: it goes into
    the device bundle (or the console's configuration) from its file.
    """
    try:
        check_slug(username)
        registry = Registry(directory / "registry.db")
        registry.site()
    except (EdgeError, ValueError) as error:
        click.echo(f"account add refused: {error}", err=True)
        ctx.exit(2)
    password = secrets.token_urlsafe(24)
    secrets_dir = directory / "accounts"
    secrets_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(secrets_dir, 0o700)
    path = secrets_dir / f"{username}.password"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password + "\n")
    registry.add_account(username, role, broker.password_hash(password))
    registry.close()
    click.echo(f"account {username} ({role}); password in {path} (0600)")


@cli.group()
def device() -> None:
    """Devices: add one from its role's example, make the bundle for its installer."""


@device.command("add")
@click.argument("device_id")
@click.option("--role", type=click.Choice(sorted(EXAMPLES)), required=True, help="What it is.")
@site_dir
@click.pass_context
def device_add(ctx: click.Context, device_id: str, role: str, directory: Path) -> None:
    """Register a device and write its configuration, from the role's example, to edit.

    \b
    Example:
      edge-provision device add gate-1f-east --role gate
    """
    try:
        check_slug(device_id)
        registry = Registry(directory / "registry.db")
        slug = registry.site()["slug"]
        add_device(registry, device_id, role)
        registry.close()
    except (EdgeError, ValueError) as error:
        click.echo(f"device add refused: {error}", err=True)
        ctx.exit(2)
    path = directory / "devices" / f"{device_id}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_from_example(role, slug, device_id), encoding="utf-8")
    click.echo(
        f"device {device_id} ({role}); edit {path}, then: edge-provision device bundle {device_id}"
    )


@device.command("bundle")
@click.argument("device_id")
@site_dir
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), help="Default: DIR/bundles/ID.tar.gz"
)
@click.pass_context
def device_bundle(ctx: click.Context, device_id: str, directory: Path, out: Path | None) -> None:
    """Write the one archive an installer copies to the Pi (0600: it holds secrets).

    It holds the validated configuration, the card key, the broker password, the public
    keys, the systemd unit and the install steps.
    """
    target = out or directory / "bundles" / f"{device_id}.tar.gz"
    try:
        registry = Registry(directory / "registry.db")
        device_role(registry, device_id)
        members = bundle(directory, device_id, target)
        with write_transaction(registry.db) as db:
            registry.record(db, "device bundle", device=device_id, out=str(target))
        registry.close()
    except (EdgeError, OSError) as error:
        click.echo(f"device bundle refused: {error}", err=True)
        ctx.exit(2)
    click.echo(f"wrote {target} (0600): {', '.join(members)}")


@cli.group()
def cards() -> None:
    """Cardholders and their cards, from HR's CSV export."""


@cards.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@site_dir
@click.option("--encoding", help="Force the file's encoding (default: UTF-8, else Shift_JIS).")
@click.option("--skip-bad", is_flag=True, help="Import the good rows and report the bad ones.")
@click.pass_context
def cards_import(
    ctx: click.Context, csv_file: Path, directory: Path, encoding: str | None, skip_bad: bool
) -> None:
    """Import staff and their cards; a file with any bad row is refused as a whole.

    Every bad row is listed with its line, field and how to fix it (card numbers are never
    shown). Columns: staff_no, name, department, card_tech, card_id, groups (a;b),
    valid_from, valid_until (YYYY-MM-DD, inclusive).
    """
    try:
        registry = Registry(directory / "registry.db")
        site_row = registry.site()
        card_key = read_card_key(SiteKeys(directory / "keys").card_key)
        text, used = decode(csv_file.read_bytes(), encoding)
    except (EdgeError, ValueError) as error:
        click.echo(f"cards import refused: {error}", err=True)
        ctx.exit(2)
    rows, problems = parse_staff(text, card_key, site_row["timezone"])
    owners = card_owners(registry, [r.card_ref for r in rows])
    clashing = [r for r in rows if owners.get(r.card_ref, r.staff_no) != r.staff_no]
    problems += [
        RowProblem(
            r.line,
            "card_id",
            "(hidden)",
            f"this card belongs to staff {owners[r.card_ref]}; revoke it there first",
        )
        for r in clashing
    ]
    rows = [r for r in rows if r not in clashing]
    if problems:
        click.echo(f"{csv_file} ({used}): {len(problems)} problems:", err=True)
        for problem in sorted(problems, key=lambda p: p.line):
            click.echo(f"  {problem}", err=True)
        if not skip_bad:
            click.echo("nothing imported; fix the rows or use --skip-bad", err=True)
            ctx.exit(2)
    count = import_people(registry, rows, str(csv_file))
    registry.close()
    click.echo(f"imported {count} people with their cards from {csv_file} ({used})")


@cards.command("revoke")
@click.argument("staff_no")
@site_dir
@click.pass_context
def cards_revoke(ctx: click.Context, staff_no: str, directory: Path) -> None:
    """Revoke a person's cards (a leaver); denied at the next tap once published."""
    _card_status(ctx, staff_no, directory, "revoked")


@cards.command("lost")
@click.argument("staff_no")
@site_dir
@click.pass_context
def cards_lost(ctx: click.Context, staff_no: str, directory: Path) -> None:
    """Revoke a person's cards and flag them lost: a later tap also raises an alarm."""
    _card_status(ctx, staff_no, directory, "lost")


def _card_status(ctx: click.Context, staff_no: str, directory: Path, status: str) -> None:
    try:
        count = set_card_status(Registry(directory / "registry.db"), staff_no, status)
    except EdgeError as error:
        click.echo(f"refused: {error}", err=True)
        ctx.exit(2)
    click.echo(f"{count} card(s) of {staff_no} now {status}; run edge-provision publish")


@cards.command("list")
@site_dir
def cards_list(directory: Path) -> None:
    """List people and their cards (card references shortened; card numbers are not kept)."""
    for person in people_with_cards(Registry(directory / "registry.db")):
        cards_text = ", ".join(
            f"{c['technology']} {c['ref']}… {c['status']}" for c in person["cards"]
        )
        click.echo(
            f"{person['staff_no']:<8} {person['name']} ({person['department']}) "
            f"[{';'.join(person['groups'])}]  {cards_text}"
        )


@cli.group()
def rules() -> None:
    """Who may pass which doors, and when."""


@rules.command("schedule")
@click.argument("schedule_id")
@click.option("--days", required=True, help="mon-fri, sat,sun or all.")
@click.option(
    "--hours", required=True, help='Local time, e.g. "07:00-20:00" ("24:00" ends the day).'
)
@click.option("--holidays", help="Hours on public holidays and closure days (default: closed).")
@site_dir
@click.pass_context
def rules_schedule(
    ctx: click.Context,
    schedule_id: str,
    days: str,
    hours: str,
    holidays: str | None,
    directory: Path,
) -> None:
    """Add or replace a weekly schedule."""
    try:
        check_slug(schedule_id)
        add_schedule(Registry(directory / "registry.db"), schedule_id, days, hours, holidays)
    except (EdgeError, ValueError) as error:
        click.echo(f"schedule refused: {error}", err=True)
        ctx.exit(2)
    click.echo(f"schedule {schedule_id}: {days} {hours}, holidays {holidays or 'closed'}")


@rules.command("add")
@click.argument("group")
@click.option("--doors", required=True, help="Door ids, comma-separated.")
@click.option("--schedule", default="always", show_default=True, help="A schedule id, or always.")
@site_dir
@click.pass_context
def rules_add(ctx: click.Context, group: str, doors: str, schedule: str, directory: Path) -> None:
    """Let a group pass doors while a schedule is open."""
    try:
        check_slug(group)
        door_ids = [check_slug(d.strip()) for d in doors.split(",") if d.strip()]
        add_rule(Registry(directory / "registry.db"), group, door_ids, schedule)
    except (EdgeError, ValueError) as error:
        click.echo(f"rule refused: {error}", err=True)
        ctx.exit(2)
    click.echo(f"rule: {group} may pass {', '.join(door_ids)} ({schedule})")


@rules.command("override")
@click.argument("groups", nargs=-1, required=True)
@site_dir
def rules_override(groups: tuple[str, ...], directory: Path) -> None:
    """Set the groups that pass through a lockdown (security staff)."""
    set_override_groups(Registry(directory / "registry.db"), list(groups))
    click.echo(f"lockdown override groups: {', '.join(groups)}")


@cli.command()
@site_dir
@click.option("--device", "devices", multiple=True, help="Only these devices (default: all).")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    help="Write snapshot files here instead of publishing (for edge-agent credentials load).",
)
@click.option("--host", default="localhost", show_default=True, help="Broker host.")
@click.option("--port", default=1883, show_default=True, help="Broker port.")
@click.option(
    "--user",
    default="operator",
    show_default=True,
    help="Broker account that may publish credentials.",
)
@click.option("--root", default="edge", show_default=True, help="MQTT topic root.")
@click.option(
    "--wait",
    "wait_s",
    default=30.0,
    show_default=True,
    help="Seconds to wait for devices to apply it.",
)
@click.pass_context
def publish(
    ctx: click.Context,
    directory: Path,
    devices: tuple[str, ...],
    out: Path | None,
    host: str,
    port: int,
    user: str,
    root: str,
    wait_s: float,
) -> None:
    """Build each device's signed credential snapshot and publish it retained.

    Each device gets only its doors' rules and the cards allowed there, by reference. Then
    the devices' status shows which applied the new version; any that did not in --wait
    seconds is named (exit status 1).
    """
    try:
        registry = Registry(directory / "registry.db")
        site_row = registry.site()
        built = build_all(registry, directory, list(devices) or None)
    except (EdgeError, ValueError, OSError) as error:
        click.echo(f"publish refused: {error}", err=True)
        ctx.exit(2)
    if not built:
        click.echo("no devices to publish to; add them with edge-provision device add", err=True)
        ctx.exit(2)
    version = built[0].version
    with click.progressbar(built, label=f"building v{version}") as bar:
        for b in bar:
            click.echo(f"  {b.device}: {b.cards} cards, {len(b.data):,} bytes", err=True)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        for b in built:
            (out / f"{b.device}.v{b.version}.json").write_bytes(b.data)
        click.echo(f"wrote {len(built)} snapshots (v{version}) to {out}")
        return
    config = MqttConfig(
        host=host,
        port=port,
        root=root,
        username=user,
        password_file=directory / "accounts" / f"{user}.password",
    )
    topics_by_device = {b.device: status_topic(root, site_row["slug"], b.device) for b in built}

    def applied(seen: dict[str, dict[str, object]]) -> bool:
        return all(_version(seen.get(t)) >= version for t in topics_by_device.values())

    try:
        seen = publish_and_watch(
            config,
            f"edge-provision-{os.getpid()}",
            [(credentials_topic(root, site_row["slug"], b.device), b.data) for b in built],
            f"{root}/{site_row['slug']}/+/status",
            applied,
            wait_s,
        )
    except (EdgeError, OSError) as error:
        click.echo(f"publish failed: {error}", err=True)
        ctx.exit(2)
    late = [d for d, t in topics_by_device.items() if _version(seen.get(t)) < version]
    for device, topic in topics_by_device.items():
        mark = (
            "applied" if device not in late else f"NOT applied (has v{_version(seen.get(topic))})"
        )
        click.echo(f"  {device}: {mark}")
    if late:
        click.echo(
            f"{len(late)} devices did not apply v{version} within {wait_s:g} s: {', '.join(late)}",
            err=True,
        )
        ctx.exit(1)
    click.echo(f"published v{version} to {len(built)} devices; all applied it")


def _version(status: dict[str, object] | None) -> int:
    credentials = (status or {}).get("credentials")
    if isinstance(credentials, dict) and isinstance(credentials.get("version"), int):
        return int(credentials["version"])
    return 0


@device.command("list")
@site_dir
def device_list(directory: Path) -> None:
    """List the devices with the credential version last published to each."""
    registry = Registry(directory / "registry.db")
    rows = registry.db.execute(
        "SELECT d.id, d.role, p.version, p.published_at, p.cards FROM devices d "
        "LEFT JOIN published p ON p.device = d.id ORDER BY d.id"
    ).fetchall()
    for device_id, role, version, published_at, count in rows:
        sent = (
            f"v{version} ({count} cards) at {published_at[:19]}" if version else "never published"
        )
        click.echo(f"{device_id:<20} {role:<12} {sent}")


@device.command("status")
@site_dir
@click.option("--host", default="localhost", show_default=True, help="Broker host.")
@click.option("--port", default=1883, show_default=True, help="Broker port.")
@click.option("--user", default="operator", show_default=True, help="Broker account.")
@click.option("--root", default="edge", show_default=True, help="MQTT topic root.")
@click.option("--wait", "wait_s", default=3.0, show_default=True, help="Seconds to listen.")
@click.pass_context
def device_status(
    ctx: click.Context, directory: Path, host: str, port: int, user: str, root: str, wait_s: float
) -> None:
    """Read every device's retained status from the broker; flag offline and stale ones.

    Exit status 1 when any device is offline, silent, behind the published credentials, or
    reports stale credentials, an unsynchronised clock or a backlog.
    """
    registry = Registry(directory / "registry.db")
    slug = registry.site()["slug"]
    published = dict(registry.db.execute("SELECT device, version FROM published").fetchall())
    devices = [r[0] for r in registry.db.execute("SELECT id FROM devices ORDER BY id")]
    password = directory / "accounts" / f"{user}.password"
    config = MqttConfig(host=host, port=port, root=root, username=user, password_file=password)
    try:
        seen = publish_and_watch(
            config,
            f"edge-provision-{os.getpid()}",
            [],
            f"{root}/{slug}/+/status",
            lambda s: False,
            wait_s,
        )
    except (EdgeError, OSError) as error:
        click.echo(f"device status failed: {error}", err=True)
        ctx.exit(2)
    trouble = 0
    for device_id in devices:
        status = seen.get(status_topic(root, slug, device_id))
        problems = _status_problems(status, published.get(device_id, 0))
        trouble += bool(problems)
        line = _status_line(status)
        click.echo(f"{device_id:<20} {line}{'  ⚠ ' + '; '.join(problems) if problems else ''}")
    if trouble:
        ctx.exit(1)


def _status_line(status: dict[str, object] | None) -> str:
    if status is None:
        return "no status"
    creds = status.get("credentials") if isinstance(status.get("credentials"), dict) else {}
    assert isinstance(creds, dict)
    return (
        f"{status.get('state')} software {status.get('software')} "
        f"config {status.get('config_hash')} credentials v{creds.get('version')} "
        f"backlog {status.get('backlog')}"
    )


def _status_problems(status: dict[str, object] | None, published: int) -> list[str]:
    if status is None:
        return ["never reported"]
    problems = []
    if status.get("state") != "online":
        problems.append("offline")
    if _version(status) < published:
        problems.append(f"runs v{_version(status)}, v{published} was published")
    creds = status.get("credentials")
    if isinstance(creds, dict) and creds.get("stale"):
        problems.append("credentials stale")
    if status.get("clock_synced") is False:
        problems.append("clock not synchronised")
    return problems


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
@click.pass_context
def broker_config(ctx: click.Context, directory: Path, out: Path, root: str, port: int) -> None:
    """Write mosquitto's password file (hashed), a least-privilege ACL and its settings.

    Add TLS (cafile, certfile, keyfile) to the listener in edge.conf for production.
    """
    try:
        registry = Registry(directory / "registry.db")
        site_row = registry.site()
        accounts = registry.accounts()
    except EdgeError as error:
        click.echo(f"broker config refused: {error}", err=True)
        ctx.exit(2)
    out.mkdir(parents=True, exist_ok=True)
    (out / "passwd").write_text(
        broker.password_file({a["username"]: a["password_hash"] for a in accounts})
    )
    os.chmod(out / "passwd", 0o640)
    roles = {a["username"]: a["role"] for a in accounts}
    (out / "acl").write_text(
        broker.acl(
            root,
            site_row["slug"],
            consoles=[u for u, r in roles.items() if r == "console"],
            operators=[u for u, r in roles.items() if r == "operator"],
        )
    )
    (out / "edge.conf").write_text(
        broker.broker_settings(port, str((out / "passwd").resolve()), str((out / "acl").resolve()))
    )
    with write_transaction(registry.db) as db:
        registry.record(db, "broker config", out=str(out), accounts=len(accounts))
    registry.close()
    written = ", ".join(str(out / name) for name in ("passwd", "acl", "edge.conf"))
    click.echo(f"wrote {written} for {len(accounts)} accounts")


def main(argv: Sequence[str] | None = None) -> None:
    """Run the `edge-provision` command line."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="edge-provision")


if __name__ == "__main__":
    main()
