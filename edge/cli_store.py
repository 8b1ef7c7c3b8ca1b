"""`edge-agent status` and `edge-agent credentials load`: the device store from the shell."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from sqlite_utils import Database

from edge.core.clock import utc_text
from edge.signing import SignatureError, load_public_key
from edge.snapshot import SnapshotError, parse
from edge.store import Store, guard, outbox
from edge.store.connection import connect
from edge.store.credentials import SqliteCredentials
from firmware_config.errors import ConfigError
from firmware_config.loader import load_config
from firmware_config.model import DeviceConfig

EXIT_REFUSED = 2

config_option = click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    metavar="FILE",
    help="Device configuration (TOML), e.g. /etc/edge/agent.toml.",
)


def _config(ctx: click.Context, path: Path) -> DeviceConfig:
    try:
        return load_config(path)
    except ConfigError as error:
        click.echo(f"{path}: {len(error.problems)} problem(s):", err=True)
        for problem in error.problems:
            click.echo(f"  {problem}", err=True)
        ctx.exit(EXIT_REFUSED)
    raise AssertionError("unreachable")


@click.command()
@config_option
@click.option("--events", "count", default=10, show_default=True, help="How many recent events.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object instead of text.")
@click.pass_context
def status(ctx: click.Context, config_path: Path, count: int, as_json: bool) -> None:
    """Show the store: backlog, credentials, modes, counts, latest events.

    Reads the store without writing to it, so it is safe while the agent runs.

    \b
    Example:
      edge-agent status --config /etc/edge/agent.toml
    """
    config = _config(ctx, config_path)
    path = config.store.path
    if not path.exists():
        click.echo(f"{path}: no store yet; the agent creates it at its first start", err=True)
        ctx.exit(1)
    report = read_status(path, count)
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False, indent=2))
        return
    c = report["credentials"]
    click.echo(f"device {config.device.id}  store {path}")
    click.echo(f"events: last seq {report['last_seq']}, waiting to be sent {report['backlog']}")
    if c:
        click.echo(
            f"credentials: v{c['version']}, {c.get('cards')} cards, issued {c['issued_at']}, "
            f"applied {c['applied_at']}"
        )
    else:
        click.echo("credentials: none loaded (edge-agent credentials load, or from provisioning)")
    modes = report["modes"]
    click.echo(
        f"modes: lockdown {'ON' if modes.get('lockdown') else 'off'}, "
        f"fire release awaiting reset {'YES' if modes.get('fire_latched') else 'no'}, "
        f"held open by command {modes.get('held_by_command') or 'none'}"
    )
    floor = report["rollback_guard"]
    if floor:
        click.echo(
            f"rollback guard: credential snapshots older than v{floor['credentials_version']} "
            f"refused; commands expiring before {floor['commands_refused_before'] or '-'} refused"
        )
    counts = ", ".join(f"{z} {n}" for z, n in report["occupancy"].items()) or "none"
    click.echo(f"occupancy: {counts}")
    click.echo(f"latest {len(report['events'])} events waiting:")
    for e in report["events"]:
        detail = e.get("reason") or e.get("state") or e.get("cause") or ""
        click.echo(
            f"  {e['seq']:>7}  {e['ts']}  {e['kind']}/{e['type']}  {e.get('door', '')} {detail}"
        )


def read_status(path: Path, count: int = 10) -> dict[str, Any]:
    """Read the store's state through a read-only connection."""
    db = connect(path, read_only=True)
    conn = db.conn
    try:

        def value(sql: str, default: Any = None) -> Any:
            row = conn.execute(sql).fetchone()
            return row[0] if row else default

        events = [
            json.loads(p)
            for (p,) in conn.execute(
                "SELECT payload FROM outbox ORDER BY seq DESC LIMIT ?", [count]
            )
        ]
        return {
            "last_seq": outbox.last_seq(db),
            "backlog": outbox.backlog(db),
            "credentials": SqliteCredentials(db).meta(),
            "modes": json.loads(value("SELECT value FROM device_state WHERE key = 'modes'", "{}")),
            "occupancy": dict(
                conn.execute("SELECT zone, count FROM occupancy ORDER BY zone").fetchall()
            ),
            "events": list(reversed(events)),
            "rollback_guard": _guard(db),
        }
    finally:
        conn.close()


def _guard(db: Database) -> dict[str, Any]:
    """The rollback guard as the store holds it ({} for a store from before the guard)."""
    try:
        floor = guard.stored(db)
    except sqlite3.OperationalError:  # not migrated yet: the agent migrates it at start
        return {}
    mark = floor.command_mark_ms - guard.SKEW_MS
    return {
        "credentials_version": floor.credentials_version,
        "commands_refused_before": utc_text(guard.from_ms(mark)) if mark > 0 else None,
    }


@click.group()
def credentials() -> None:
    """Credential sets: load a signed snapshot file (no broker needed)."""


@credentials.command("load")
@click.argument("snapshot_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@config_option
@click.pass_context
def load(ctx: click.Context, snapshot_file: Path, config_path: Path) -> None:
    """Verify a signed credential snapshot and apply it atomically.

    The running agent picks the new set up within a second. A snapshot for another site or
    device, with a bad signature, or older than the set in use is refused (exit status 2).

    \b
    Example:
      edge-agent credentials load gate-1f-east.v42.json --config /etc/edge/agent.toml
    """
    config = _config(ctx, config_path)
    try:
        public = load_public_key(config.site.credentials_key_file)
        snapshot = parse(
            snapshot_file.read_bytes(), public, site=config.site.id, device=config.device.id
        )
        with Store(config.store.path) as store, store.transaction():
            applied = SqliteCredentials(store.db).apply(snapshot, datetime.now(UTC))
    except (SnapshotError, SignatureError) as error:
        click.echo(f"{snapshot_file}: refused: {error}", err=True)
        ctx.exit(EXIT_REFUSED)
    if applied:
        click.echo(
            f"applied credential set v{snapshot.version}: {len(snapshot.credentials)} cards, "
            f"{len(snapshot.deny)} denied, {len(snapshot.policy.rules)} rules"
        )
    else:
        click.echo(f"credential set v{snapshot.version} is already in use; nothing to do")
