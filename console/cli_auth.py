"""Who runs an acting command: the console user, their password, and what their role allows.

Every `edge-console` command that changes a door or a card names its user (`--user`, or
EDGE_CONSOLE_USER) and proves it with the user's password (`--password-file`, or asked for
without echo); the role must allow the action (console.users.ACTIONS), exactly as on the web
page. A refusal is audited like the action would have been.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Any

import click

from console.log import CentralLog
from console.safe_output import terminal
from console.users import ACTIONS, audit, check_password, may_act


def acting_user_options(f: Any) -> Any:
    """Add --user and --password-file to an acting command."""
    f = click.option(
        "--password-file",
        type=click.Path(path_type=Path, dir_okay=False, exists=True),
        help="File holding the user's password (asked for, without echo, when omitted).",
    )(f)
    return click.option(
        "--user",
        envvar="EDGE_CONSOLE_USER",
        required=True,
        help="The console user acting (their role must allow it) [env: EDGE_CONSOLE_USER].",
    )(f)


def acting_user(
    ctx: click.Context, log: CentralLog, user: str, password_file: Path | None, action: str
) -> str:
    """Return `user` once their password and role allow `action`; else exit 2 saying why."""
    if password_file is not None:
        password = password_file.read_text().strip()
    else:
        password = getpass.getpass(f"password for {user}: ")
    role = check_password(log, user, password)
    if role is None:
        click.echo(terminal(f"{action} refused: wrong user name or password"), err=True)
        ctx.exit(2)
    if not may_act(role, action):
        allowed = " or ".join(sorted(ACTIONS.get(action, frozenset()))) or "nobody"
        audit(log, user, f"{action} refused", f"role {role} may not; {allowed} may")
        click.echo(
            terminal(f"{action} refused: a {role} may not do this; ask a {allowed}"), err=True
        )
        ctx.exit(2)
    assert role is not None  # ctx.exit raised otherwise
    return user
