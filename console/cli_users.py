"""`edge-console users`: who may log in, with which role; every change audited.

edge-console users add guard1 --role guard
edge-console users disable guard1
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from console.log import CentralLog, LogError, open_log
from console.safe_output import terminal
from console.users import (
    ROLES,
    UserError,
    add_user,
    disable_user,
    enable_user,
    remove_user,
    set_password,
    set_role,
    users,
)

DEFAULT_DB = Path("/var/lib/edge-console/log.db")
URL_SCHEMES = ("postgresql://", "postgres://")


class LogTarget(click.ParamType[Path | str, object]):
    """A log's file (SQLite) or its `postgresql://` URL."""

    name = "FILE|URL"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> Path | str:
        """Return a URL as text, anything else as a file path (never a directory)."""
        if isinstance(value, Path):
            return value
        text = str(value).strip()
        if text.startswith(URL_SCHEMES):
            return text
        if not text or Path(text).is_dir():
            self.fail(f"{text!r}: give the log's file, or a postgresql://HOST/DATABASE URL")
        return Path(text)


def db_option(f: Any) -> Any:
    return click.option(
        "--db",
        type=LogTarget(),
        default=DEFAULT_DB,
        show_default=True,
        help="The central log: an SQLite file, or a postgresql://USER@HOST/DATABASE URL "
        "(the password from ~/.pgpass or PGPASSWORD, never on the command line).",
    )(f)


OPEN_LOG = "edge-console.log"  # click context meta: the log the command opened


def log_at(db: Path | str) -> CentralLog:
    """Open the log `--db` names (closed when the command ends), or stop with the reason it
    cannot be opened."""
    try:
        log = open_log(db)
    except LogError as error:
        raise click.ClickException(terminal(str(error))) from None
    context = click.get_current_context(silent=True)
    if context is not None:
        context.call_on_close(log.close)
        context.meta[OPEN_LOG] = log  # edge-console's group tells an outage by it
    return log


def beside(db: Path | str, name: str) -> Path:
    """Return the file `name` beside the log (beside the default log for a URL)."""
    return (db if isinstance(db, Path) else DEFAULT_DB).with_name(name)


@click.group("users")
def users_group() -> None:
    """The console's users and their roles (guard, manager, operator)."""


@users_group.command("add")
@db_option
@click.argument("username")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--by", default=getpass.getuser(), show_default=True, help="Who adds (audit).")
@click.pass_context
def users_add(ctx: click.Context, db: Path | str, username: str, role: str, by: str) -> None:
    """Add a user; the password is asked for (or read from stdin when piped)."""
    password = (
        sys.stdin.readline().rstrip("\n")
        if not sys.stdin.isatty()
        else click.prompt("password", hide_input=True, confirmation_prompt=True)
    )
    try:
        add_user(log_at(db), username, role, password, by)
    except UserError as error:
        click.echo(terminal(f"users add refused: {error}"), err=True)
        ctx.exit(2)
    click.echo(f"user {username} ({role}) added")


@users_group.command("role")
@db_option
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
@click.option("--by", default=getpass.getuser(), show_default=True, help="Who changes (audit).")
@click.pass_context
def users_role(ctx: click.Context, db: Path | str, username: str, role: str, by: str) -> None:
    """Change a user's role."""
    try:
        set_role(log_at(db), username, role, by)
    except UserError as error:
        click.echo(terminal(f"users role refused: {error}"), err=True)
        ctx.exit(2)
    click.echo(f"user {username} is now {role}")


@users_group.command("list")
@db_option
def users_list(db: Path | str) -> None:
    """List users, roles and whether they may log in."""
    for username, role, enabled in users(log_at(db)):
        click.echo(terminal(f"{username:<20} {role:<10} {'' if enabled else 'disabled'}").rstrip())


def _user_change(action: str, help_text: str) -> Any:
    """A `users` subcommand that changes one user (audited) and ends their sessions."""

    @db_option
    @click.argument("username")
    @click.option("--by", default=getpass.getuser(), show_default=True, help="Who (audit).")
    @click.pass_context
    def command(ctx: click.Context, db: Path | str, username: str, by: str) -> None:
        changes: dict[str, Callable[[CentralLog, str, str], int | None]] = {
            "disable": disable_user,
            "enable": enable_user,
            "remove": remove_user,
        }
        change = changes[action]
        try:
            ended = change(log_at(db), username, by)
        except UserError as error:
            click.echo(terminal(f"users {action} refused: {error}"), err=True)
            ctx.exit(2)
        done = {"disable": "disabled", "enable": "enabled", "remove": "removed"}[action]
        sessions = f"; {ended} web sessions ended" if ended else ""
        click.echo(terminal(f"user {username} {done}{sessions}"))

    command.__doc__ = help_text
    return users_group.command(action)(command)


_user_change("disable", "Stop a user from logging in; their open web sessions end now.")
_user_change("enable", "Let a disabled user log in again.")
_user_change("remove", "Remove a user; their open web sessions end now (the audit stays).")


@users_group.command("password")
@db_option
@click.argument("username")
@click.option("--by", default=getpass.getuser(), show_default=True, help="Who changes (audit).")
@click.pass_context
def users_password(ctx: click.Context, db: Path | str, username: str, by: str) -> None:
    """Set a user's password (asked for, hidden; read from stdin when piped).

    Every web session of that user ends.
    """
    password = (
        sys.stdin.readline().rstrip("\n")
        if not sys.stdin.isatty()
        else click.prompt("new password", hide_input=True, confirmation_prompt=True)
    )
    try:
        ended = set_password(log_at(db), username, password, by)
    except UserError as error:
        click.echo(terminal(f"users password refused: {error}"), err=True)
        ctx.exit(2)
    click.echo(terminal(f"password of {username} changed; {ended} web sessions ended"))
