"""edge-provision cards: import from HR's CSV, revoke, lost, reinstate, list."""

from __future__ import annotations

from pathlib import Path

import click

from edge.errors import EdgeError
from edge.keys import read_card_key
from edge.text import terminal
from provisioning.card_keys import load_master
from provisioning.cli_pin import set_pin
from provisioning.hr_text import ENCODINGS
from provisioning.keys import SiteKeys
from provisioning.options import site_dir
from provisioning.registry import (
    Registry,
    card_owners,
    change_cards,
    import_people,
    people_with_cards,
    spare_numbers,
)
from provisioning.staff_csv import RowProblem, decode, unquoted
from provisioning.staff_csv import parse as parse_staff

MAX_BYTES = 32 * 1024 * 1024
"""The largest HR file read: about 100,000 staff rows."""
MAX_LISTED = 100
"""The most problems listed; the count of the rest follows."""


@click.group()
def cards() -> None:
    """Cardholders and their cards, from HR's CSV export."""


@cards.command("import")
@click.argument("csv_file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@site_dir
@click.option(
    "--encoding",
    help="The file's encoding when it is not UTF-8: cp932 for Excel's Shift_JIS, euc_jp, "
    f"iso2022_jp… (one of {', '.join(sorted(ENCODINGS))}). Without it, a file that is not "
    "UTF-8 is refused, never guessed.",
)
@click.option("--skip-bad", is_flag=True, help="Import the good rows and report the bad ones.")
@click.pass_context
def cards_import(
    ctx: click.Context, csv_file: Path, directory: Path, encoding: str | None, skip_bad: bool
) -> None:
    """Import staff and their cards; a file with any bad row is refused as a whole.

    Every bad row is listed with its line, column and how to fix it; a value is shown only
    when it cannot be a card number. Columns: staff_no, name, department, card_tech,
    card_id, groups (a;b), valid_from, valid_until (YYYY-MM-DD, inclusive). The file is
    UTF-8 (with or without a BOM) unless --encoding names another.
    """
    registry = Registry(directory / "registry.db")
    try:
        _import(ctx, registry, directory, csv_file, encoding, skip_bad)
    finally:
        registry.close()


def _import(
    ctx: click.Context,
    registry: Registry,
    directory: Path,
    csv_file: Path,
    encoding: str | None,
    skip_bad: bool,
) -> None:
    try:
        site_row = registry.site()
        card_key = read_card_key(SiteKeys(directory / "keys").card_key)
        master = load_master(SiteKeys(directory / "keys"))
        text, used = decode(_read(csv_file), encoding)
    except (EdgeError, ValueError, OSError) as error:
        click.echo(terminal(f"cards import refused: {error}"), err=True)
        ctx.exit(2)
    rows, problems = parse_staff(text, card_key, site_row["timezone"], master)
    owners = card_owners(registry, [r.card_ref for r in rows])
    clashing = [r for r in rows if owners.get(r.card_ref, r.staff_no) != r.staff_no]
    problems += [
        RowProblem(
            r.line,
            "card_id",
            "",
            f"this card belongs to staff {unquoted(owners[r.card_ref])}; revoke it there first",
        )
        for r in clashing
    ]
    rows = [r for r in rows if r not in clashing]
    spare = spare_numbers(registry, [r.card_ref for r in rows])
    problems += [
        RowProblem(
            r.line,
            "card_id",
            "",
            f"this card is the desk's spare card {unquoted(spare[r.card_ref])}; "
            "give the person another card",
        )
        for r in rows
        if r.card_ref in spare
    ]
    rows = [r for r in rows if r.card_ref not in spare]
    if problems:
        found = f"{len(problems)} problem" + ("" if len(problems) == 1 else "s")
        click.echo(terminal(f"{csv_file} ({used}): {found}:"), err=True)
        for problem in sorted(problems, key=lambda p: p.line)[:MAX_LISTED]:
            click.echo(terminal(f"  {problem}"), err=True)
        if len(problems) > MAX_LISTED:
            click.echo(f"  … and {len(problems) - MAX_LISTED} more", err=True)
        if not skip_bad:
            click.echo("nothing imported; fix the rows or use --skip-bad", err=True)
            ctx.exit(2)
    known = {g for (g,) in registry.db.execute("SELECT DISTINCT grp FROM rules")}
    unknown = sorted({g for r in rows for g in r.groups} - known)
    if known and unknown:
        # Not an error (rules may come after the people), but most often a typo.
        listed = ", ".join(unquoted(group) for group in unknown[:20])
        click.echo(f"note: no rule uses the groups {listed} (a typo?)", err=True)
    count = import_people(registry, rows, str(csv_file))
    click.echo(terminal(f"imported {count} people with their cards from {csv_file} ({used})"))


def _read(path: Path) -> bytes:
    with path.open("rb") as file:
        data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(
            f"{path} is larger than {MAX_BYTES // (1024 * 1024)} MiB: not an HR export of staff; "
            "check the file"
        )
    return data


card_option = click.option(
    "--card",
    "card",
    help="Only this card: the first 4 or more digits of its reference (as cards list shows "
    "it); for a person with several cards.",
)


@cards.command("revoke")
@click.argument("staff_no")
@card_option
@site_dir
@click.pass_context
def cards_revoke(ctx: click.Context, staff_no: str, card: str | None, directory: Path) -> None:
    """Revoke a person's cards (a leaver); denied at the next tap once published."""
    _card_status(ctx, staff_no, card, directory, "revoked")


@cards.command("lost")
@click.argument("staff_no")
@card_option
@site_dir
@click.pass_context
def cards_lost(ctx: click.Context, staff_no: str, card: str | None, directory: Path) -> None:
    """Revoke a person's cards and flag them lost: a later tap also raises an alarm."""
    _card_status(ctx, staff_no, card, directory, "lost")


@cards.command("reinstate")
@click.argument("staff_no")
@card_option
@site_dir
@click.pass_context
def cards_reinstate(ctx: click.Context, staff_no: str, card: str | None, directory: Path) -> None:
    """Make a lost or revoked card work again (a lost card found); once published."""
    _card_status(ctx, staff_no, card, directory, "active")


def _card_status(
    ctx: click.Context, staff_no: str, card: str | None, directory: Path, status: str
) -> None:
    registry = Registry(directory / "registry.db")
    try:
        # The site's operator holds its keys: they may undo a revocation.
        changed = change_cards(registry, staff_no, status, card, may_unrevoke=True)
    except EdgeError as error:
        click.echo(terminal(f"refused: {error}"), err=True)
        ctx.exit(2)
    finally:
        registry.close()
    listed = ", ".join(f"{ref}…" for ref in changed)
    click.echo(
        terminal(
            f"{len(changed)} card(s) of {staff_no} now {status} ({listed}); "
            "run edge-provision publish"
        )
    )


@cards.command("list")
@site_dir
def cards_list(directory: Path) -> None:
    """List people and their cards (card references shortened; card numbers are not kept)."""
    for person in people_with_cards(Registry(directory / "registry.db")):
        cards_text = ", ".join(
            f"{c['technology']} {c['ref']}… {c['status']}" for c in person["cards"]
        )
        click.echo(
            terminal(
                f"{person['staff_no']:<8} {person['name']} ({person['department']}) "
                f"[{';'.join(person['groups'])}]  {cards_text}"
            )
        )


cards.add_command(set_pin)


@click.group()
def people() -> None:
    """The people in the registry."""


@people.command("list")
@site_dir
def people_list(directory: Path) -> None:
    """List people: staff number, name, department, groups and active cards."""
    for person in people_with_cards(Registry(directory / "registry.db")):
        active = sum(c["status"] == "active" for c in person["cards"])
        groups = ";".join(person["groups"])
        click.echo(
            terminal(
                f"{person['staff_no']:<8} {person['name']} ({person['department']}) "
                f"[{groups}] {active} active card(s)"
            )
        )
