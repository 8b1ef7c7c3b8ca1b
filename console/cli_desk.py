"""`edge-console card` and `pass`: lost and revoked cards and day passes at the desk.

Each command checks its user's password and role (console.cli_auth), changes the registry
through provisioning, publishes every device's snapshot at once and prints "applied on N
of M devices"; exit 1 names the devices that did not apply it within --wait seconds, or
says the change is in the registry but was not published (run edge-provision publish);
exit 2 is a refusal (bad input, wrong role, a desk without a broker), nothing changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import click

from console.cli_auth import acting_user, acting_user_options
from console.cli_options import broker_options, site_dir_option
from console.cli_users import db_option, log_at
from console.desk import Desk, DeskError, Done, NotPublished
from console.safe_output import terminal
from console.users import may_act, users
from console.web_context import BrokerAccess
from provisioning.passes import list_passes
from provisioning.registry import Registry


def desk_options(f: Any) -> Any:
    """Add the site directory and the broker options of a desk command."""
    options = [
        site_dir_option("edge-provision's site directory (registry.db, keys/, accounts/)."),
        broker_options,
        click.option(
            "--publish-user",
            help="The operator broker account to publish credentials as [default: the "
            "site's first operator account with a password in SITE/accounts].",
        ),
        click.option(
            "--timeout-s",
            "wait_s",
            type=click.FloatRange(min=0, max=600),
            default=10,
            show_default=True,
            help="Seconds to wait for every device to apply the change.",
        ),
    ]
    for option in reversed(options):
        f = option(f)
    return acting_user_options(db_option(f))


def _run(
    ctx: click.Context, action: str, options: dict[str, Any], act: Callable[[Desk, str], Done]
) -> None:
    log = log_at(options["db"])
    try:
        user = acting_user(ctx, log, options["user"], options["password_file"], action)
        site_dir: Path = options["site_dir"]
        with closing(Registry(site_dir / "registry.db")) as registry:
            slug = registry.site()["slug"]
        broker = BrokerAccess(
            options["broker_host"],
            options["broker_port"],
            slug,
            options["publish_user"] or "",
            root=options["root"],
            ca_file=options["ca_file"],
        )
        desk = Desk(site_dir, broker, log, time.time, options["publish_user"], options["wait_s"])
        done = act(desk, user)
    except NotPublished as error:
        # Changed in the registry, the devices not told: "some device did not get it".
        click.echo(terminal(f"{action}: {error}"), err=True)
        ctx.exit(1)
    except (DeskError, ValueError) as error:
        field = getattr(error, "field", "")
        where = f" ({field.replace('_', '-')})" if field else ""
        click.echo(terminal(f"{action} refused{where}: {error}"), err=True)
        ctx.exit(2)
    finally:
        log.close()
    click.echo(terminal(done.what))
    click.echo(terminal(done.result.summary()))
    if done.result.late:
        click.echo(
            terminal(
                f"not applied within {options['wait_s']:g} s on: {', '.join(done.result.late)}"
            ),
            err=True,
        )
        ctx.exit(1)


@click.group("card")
def card_group() -> None:
    """Mark a person's card lost or revoked, or reinstate it."""


def _card_command(name: str, action: str, doc: str) -> None:
    @card_group.command(name, help=doc)
    @click.option("--staff-no", required=True, help="The person's staff number.")
    @click.option(
        "--card",
        help="Which card, for a person with several: the first 4 or more digits of its "
        "reference as the cards page or `edge-provision cards list` shows it.",
    )
    @desk_options
    @click.pass_context
    def command(ctx: click.Context, /, staff_no: str, card: str | None, **options: Any) -> None:
        def act(desk: Desk, user: str) -> Done:
            role = {name: role for name, role, _ in users(desk.log)}.get(user)
            return desk.card(user, action, staff_no, card, may_act(role, "card.revoke"))

        _run(ctx, action, options, act)


_card_command(
    "lost",
    "card.lost",
    "Mark a card lost: denied at every door, and a later tap raises lost_card_used.",
)
_card_command(
    "revoke", "card.revoke", "Revoke a card (a manager): denied at every door from now on."
)
_card_command(
    "reinstate",
    "card.reinstate",
    "Make a lost card work again (a revoked one needs a manager).",
)


@click.group("pass")
def pass_group() -> None:
    """Issue, return and list day passes."""


@pass_group.command("issue")
@click.option("--staff-no", required=True, help="Whose pass: their staff number.")
@click.option("--spare", required=True, help="The spare card's printed number, e.g. 07.")
@click.option(
    "--until",
    default="",
    help="End time today, HH:MM in the site's time zone [default: the end of the day].",
)
@desk_options
@click.pass_context
def pass_issue(
    ctx: click.Context, /, staff_no: str, spare: str, until: str, **options: Any
) -> None:
    """Lend a spare card as a day pass: the person's doors until the end time."""
    _run(ctx, "pass.issue", options, lambda desk, user: desk.issue(user, staff_no, spare, until))


@pass_group.command("return")
@click.option("--spare", required=True, help="The spare card's printed number, e.g. 07.")
@desk_options
@click.pass_context
def pass_return(ctx: click.Context, /, spare: str, **options: Any) -> None:
    """Take a spare card back: its pass stops working at every door."""
    _run(ctx, "pass.return", options, lambda desk, user: desk.give_back(user, spare))


@pass_group.command("list")
@click.option(
    "--site-dir",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    required=True,
    help="edge-provision's site directory (registry.db).",
)
def pass_list(site_dir: Path) -> None:
    """List day passes, newest first: live, returned or expired (site time)."""
    with closing(Registry(site_dir / "registry.db")) as registry:
        zone = registry.site()["timezone"]
        found = list_passes(registry, datetime.now(UTC))
    tz = ZoneInfo(zone)
    for p in found:
        back = (
            f", returned {p.returned_at.astimezone(tz):%H:%M} by {p.returned_by}"
            if p.returned_at
            else ""
        )
        click.echo(
            terminal(
                f"{p.number:<6} {p.staff_no:<8} {p.name}  {p.state:<8} until "
                f"{p.until.astimezone(tz):%Y-%m-%d %H:%M}, issued by {p.issued_by}{back}"
            )
        )
