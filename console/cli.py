"""`edge-console`: the security office's log, alarms, roll call and web page.

edge-console collect --sites-dir /srv/edge/sites --user console-a --password-file …
edge-console serve --registry SITE/registry.db
edge-console log --since 2026-11-26T00:00 --door gate-1f-east --person 佐藤
edge-console muster
edge-console alarms --site-dir SITE
edge-console export --out log.csv --since …
edge-console verify
edge-console users add guard1 --role guard
"""

from __future__ import annotations

import csv
import getpass
import os
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import Any

import click

from console.anchor import AnchorError, check_file, load_verifier
from console.chain import by_name
from console.cli_alarms import alarms
from console.cli_collect import ANCHOR_KEY, collect
from console.cli_desk import card_group, pass_group
from console.cli_doors import door_group, fire_reset, lockdown, serve_acting, serve_acting_options
from console.cli_forgive import forgive
from console.cli_sites import devices, muster, registry_option, site_scope, sites
from console.cli_users import OPEN_LOG, beside, db_option, log_at, users_group
from console.i18n import labels
from console.log import CentralLog
from console.people import Directory
from console.safe_output import terminal
from console.search import Query, QueryError, export_rows, parse_query, search
from console.users import (
    audit,
)


def query_options(f: Any) -> Any:
    for name, text in reversed(
        [
            (
                "--since",
                "From this time (ISO; UTC unless it has an offset), e.g. 2026-11-26T00:00.",
            ),
            ("--until", "Up to this time (ISO; UTC unless it has an offset)."),
            ("--door", "A door id."),
            ("--person", "A staff number or part of a name (needs --registry)."),
            ("--card", "A card reference or its first characters."),
            ("--zone", "A zone id."),
            (
                "--result",
                "granted, denied, crossing, button_exit, alarm, door, presence, system or command.",
            ),
            ("--reason", "A reason code, e.g. expired."),
            ("--device", "A device id."),
            ("--site", "A site id (every site if omitted); `edge-console sites` lists them."),
        ]
    ):
        f = click.option(name, default="", help=text)(f)
    return f


EX_TEMPFAIL = 75  # sysexits: the log's database is down, try again later


class LogUnreachable(click.ClickException):
    """The log's database failed as a whole: a message and exit status 75."""

    exit_code = EX_TEMPFAIL


class _Console(click.Group):
    """The command group: an outage of the log's database ends a command with a message and
    exit status 75, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; turn the log's outage into a message."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as error:
            log = ctx.meta.get(OPEN_LOG)
            if not isinstance(log, CentralLog) or not log.outage(error):
                raise
            raise LogUnreachable(
                f"{labels('en')['log_unreachable']} ({log!r}: {type(error).__name__})"
            ) from None


@click.group(cls=_Console, context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """The security console: central log, alarms, roll call, web page."""


@cli.command()
@db_option
@registry_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Listen address.")
@click.option("--port", default=8080, show_default=True, help="Listen port.")
@click.option(
    "--insecure-cookies",
    is_flag=True,
    help="Send the session cookie over plain http (only for loopback, e.g. a laptop).",
)
@click.option(
    "--idle-minutes",
    type=click.FloatRange(min=1, max=24 * 60),
    default=30,
    show_default=True,
    help="A session ends this long after its last request (an open alarm page counts "
    "only when it fetches new rows).",
)
@click.option(
    "--lifetime-hours",
    type=click.FloatRange(min=0.1, max=7 * 24),
    default=12,
    show_default=True,
    help="A session ends this long after its login, whatever happens.",
)
@click.option(
    "--max-streams",
    type=click.IntRange(min=1, max=10_000),
    default=64,
    show_default=True,
    help="Live alarm streams served at once (each session may hold 3).",
)
@serve_acting_options
def serve(
    db: Path | str,
    registry: Path | None,
    host: str,
    port: int,
    insecure_cookies: bool,
    idle_minutes: float,
    lifetime_hours: float,
    max_streams: int,
    **acting: Any,
) -> None:
    """Serve the web page (put it behind TLS; sessions are Secure cookies by default).

    With --site-dir, --broker-user and --command-key the doors page can act (unlock, hold
    open, lockdown, resets); without them it only watches.
    """
    import uvicorn  # noqa: PLC0415 -- the console extra (uvicorn), needed only to serve

    from console.web import Settings, create_app  # noqa: PLC0415 -- the console extra (fastapi), needed only to serve

    site_dir, broker, command_key = serve_acting(acting, registry)
    settings = Settings(
        db,
        registry,
        beside(db, "console-session.key"),
        secure_cookies=not insecure_cookies,
        idle_s=idle_minutes * 60,
        lifetime_s=lifetime_hours * 3600,
        streams_total=max_streams,
        site_dir=site_dir,
        broker=broker,
        command_key=command_key,
    )
    uvicorn.run(create_app(settings), host=host, port=port, log_level="warning")


@cli.command("log")
@db_option
@registry_option
@query_options
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=1000),
    default=50,
    show_default=True,
    help="How many, newest first.",
)
@click.option("--before", default="", help="Only rows before this one (the next page).")
def log_command(
    db: Path | str, registry: Path | None, limit: int, before: str, **fields: str
) -> None:
    """Search the log (newest first)."""
    log, people = log_at(db), Directory(registry)
    query, home = _query(log, people, fields, before, limit)
    page = search(log, query, people, home)
    for e in page.entries:
        person = people.person(e.body.get("card_ref"), e.ts)
        who = f"{person.name} ({person.staff_no}, {person.department})" if person else ""
        what = e.body.get("reason") or e.body.get("state") or ""
        where = e.body.get("door") or e.body.get("zone") or ""
        kind = f"{e.kind}/{e.type}"
        click.echo(terminal(f"{e.ts}  {e.device:<18} {kind:<20} {where!s:<16} {what!s:<16} {who}"))
    if page.next_before:
        click.echo(f"… more: add --before {page.next_before}", err=True)


@cli.command()
@db_option
@registry_option
@query_options
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="CSV file."
)
@click.option("--by", default=getpass.getuser(), show_default=True, help="Who exports (audit).")
def export(db: Path | str, registry: Path | None, out: Path, by: str, **fields: str) -> None:
    """Write a search to CSV (UTF-8 with BOM, for Excel); audited.

    A cell that a spreadsheet would run as a formula (= + - @ tab CR) starts with a '.
    """
    log, people = log_at(db), Directory(registry)
    query, home = _query(log, people, fields, "", 1000)
    count = -1
    with out.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        for row in export_rows(log, query, people, home):
            writer.writerow(row)
            count += 1
    audit(log, by, "export", f"{out}: {count} rows; {fields}")
    click.echo(terminal(f"wrote {count} events to {out}"))


def _query(
    log: CentralLog, people: Directory, fields: dict[str, str], before: str, limit: int
) -> tuple[Query, str | None]:
    """The options' query (times in UTC unless they say otherwise) and the site owning rows
    without one, or a usage error."""
    home = site_scope(log, people, fields.get("site", "")).home  # a site the log lacks: refused
    try:
        return parse_query(fields, before, UTC, limit=limit), home
    except QueryError as error:
        raise click.BadParameter(
            str(error).partition(": ")[2], param_hint=f"--{error.field}"
        ) from None


@cli.command()
@db_option
@click.option("--all", "every", is_flag=True, help="Every chain, as CHAIN:ROW:HASH lines.")
def head(db: Path | str, every: bool) -> None:
    """Print the newest event row and its hash: keep it outside the log (print it, mail it).

    Later, `verify --anchor ROW:HASH` proves the log up to that row is still the same.
    `edge-console collect` also signs every chain's head into an anchor file on a schedule.
    """
    log = log_at(db)
    if every:
        for chain, (row, digest) in log.heads().items():
            click.echo(f"{chain}:{row}:{digest}")
        return
    row, digest = log.head()
    click.echo(f"{row}:{digest}")


@cli.command()
@db_option
@click.option(
    "--anchor",
    "anchors",
    multiple=True,
    help="[CHAIN:]ROW:HASH printed earlier by `edge-console head [--all]`; must still hold.",
)
@click.option(
    "--anchor-file",
    "anchor_files",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="An anchor file written by `edge-console collect`: every line must carry a good "
    "signature and heads the log still has.",
)
@click.option(
    "--anchor-key",
    type=click.Path(path_type=Path, dir_okay=False),
    help="What checks --anchor-file: the anchor key (PEM) or its public half (64 hex digits, "
    "as collect prints it) [default: console-anchor.key beside --db].",
)
@click.pass_context
def verify(
    ctx: click.Context,
    db: Path | str,
    anchors: tuple[str, ...],
    anchor_files: tuple[Path, ...],
    anchor_key: Path | None,
) -> None:
    """Check the log's hash chains (events, audit trail, acknowledgements): any edited,
    deleted, inserted or reordered row is named; exit 1 if one is."""

    log = log_at(db)
    checked = log.check()
    problems = list(checked.problems)
    for anchor in anchors:
        parts = anchor.rsplit(":", 2)  # a site's chain `events/{site}` comes first
        if len(parts) == 2:
            parts.insert(0, "events")
        if len(parts) != 3 or by_name(parts[0]) is None or not parts[1].isdigit():
            parts = ["", "", ""]
        chain, row, digest = parts
        if len(digest) != 64:
            raise click.BadParameter(
                f"{anchor[:80]!r}: use [CHAIN:]ROW:HASH as printed by edge-console head",
                param_hint="--anchor",
            )
        problem = log.anchored(int(row), digest, chain)
        if problem:
            problems.append(problem)
    lines = 0
    if anchor_files:
        try:
            public = load_verifier(anchor_key or beside(db, ANCHOR_KEY))
            for path in anchor_files:
                count, found = check_file(log, path, public)
                lines += count
                problems += found
        except AnchorError as error:
            raise click.ClickException(str(error)) from None
    # A table that cannot be read (altered under the log) is named among the problems.
    altered = any(": cannot be read (" in problem for problem in problems)
    gaps = {} if altered else log.gaps()
    for problem in problems:  # ids in them come from devices: no escapes reach the terminal
        click.echo(terminal(f"TAMPERED: {problem}"))
    for note in checked.notes:
        click.echo(f"note: {note}")
    for device, missing in gaps.items():
        click.echo(
            f"missing events from {device}: seq {missing[:10]}{'…' if len(missing) > 10 else ''}"
        )
    if problems:
        ctx.exit(1)
    anchored = f"; {lines} anchor lines hold" if anchor_files else ""
    click.echo(
        f"log intact: {log.count()} events, chains verified{anchored}"
        + ("" if not gaps else "; gaps above")
    )


cli.add_command(users_group)
for command in (
    collect,
    alarms,
    door_group,
    lockdown,
    fire_reset,
    forgive,
    card_group,
    pass_group,
    muster,
    sites,
    devices,
):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the `edge-console` command line; every file it creates is private (umask 077).

    The log, its WAL and the session key are created 0600 from their first byte.
    """
    previous = os.umask(0o077)
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="edge-console")
    finally:
        os.umask(previous)


if __name__ == "__main__":
    main()
