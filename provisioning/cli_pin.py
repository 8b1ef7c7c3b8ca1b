"""edge-provision cards set-pin: the holder proves their card at the desk and sets their PIN."""

from __future__ import annotations

import sys
import unicodedata
from pathlib import Path

import click

from edge.cardref import card_reference
from edge.core.credentials import CardProfile
from edge.errors import EdgeError
from edge.keys import read_card_key
from edge.text import terminal
from provisioning.holder_pins import (
    Holder,
    holder_of,
    knows_pin,
    new_pin_hash,
    record_refusal,
    store_pin,
)
from provisioning.keys import SiteKeys
from provisioning.options import site_dir
from provisioning.registry import Registry


class _Refused(Exception):
    """A refusal already worded for the operator."""


@click.command("set-pin")
@site_dir
@click.option(
    "--reader",
    required=True,
    help="The desk reader's nfcpy path: usb:054c:06c3 (Sony RC-S380), usb:054c:02e1 "
    "(RC-S370/S330), or udp:127.0.0.1:PORT for a simulated card.",
)
@click.option(
    "--duress",
    is_flag=True,
    help="Set the holder's duress PIN (keyed under threat: opens and raises a silent alarm) "
    "instead of their PIN; they must have a PIN already.",
)
@click.option(
    "--reset",
    is_flag=True,
    help="An operator's reset for a holder who forgot their PIN: the current PIN is not "
    "asked; you confirm by typing the holder's staff number (audited as a reset). A reset "
    "PIN clears the duress PIN; the holder sets it again.",
)
@click.option(
    "--timeout-s",
    type=click.FloatRange(min=1.0),
    default=30.0,
    show_default=True,
    help="How long to wait for the card.",
)
@click.pass_context
def set_pin(
    ctx: click.Context, directory: Path, reader: str, duress: bool, reset: bool, timeout_s: float
) -> None:
    """Let a card's holder set their PIN (or --duress PIN) at a desk reader, never shown.

    The holder puts their card on the reader; the card names the person (a card enrolled
    as lite-s must prove its key). They key the new PIN twice, without echo (piped: two
    lines on stdin). A PIN is 4-8 digits, not one digit repeated, not a run like 1234 or
    9876, not a repeated pair like 1212, not one of the most used PINs, and the PIN and the
    duress PIN differ. A holder who has a PIN keys it first (piped: the first line): a card
    found or copied does not let someone else change it; a wrong one is refused and
    audited. Only its salted scrypt hash is kept; the doors get it at the next
    edge-provision publish. The card's id and the PIN are never printed, logged or audited.
    """
    what = "duress PIN" if duress else "PIN"
    try:
        # Here, not at the top: nfcpy is the optional nfc extra, and the other cards
        # commands must work without it.
        from provisioning.desk_reader import read_card  # noqa: PLC0415
    except ImportError:
        click.echo("cards set-pin needs nfcpy: pip install 'cityhall-edge[nfc]'", err=True)
        ctx.exit(2)
    registry = Registry(directory / "registry.db")
    try:
        registry.site()
        card_key = read_card_key(SiteKeys(directory / "keys").card_key)
        click.echo(terminal(f"the holder puts their card on {reader} …"), err=True)
        card = read_card(
            reader,
            timeout_s=timeout_s,
            referencer=lambda technology, raw: card_reference(card_key, technology, raw),
            proof_key=lambda ref: _proof_key(registry, ref),
        )
        holder = holder_of(registry, card.card_ref)
        _check_card(holder, card.proved)
        click.echo(terminal(f"card of staff {holder.staff_no} ({holder.name})"), err=True)
        base = holder.pin
        if reset:
            _confirm_reset(holder, what)
            base = holder.pin if duress else None  # a reset PIN starts afresh, no duress PIN
        elif holder.pin is not None and not knows_pin(holder, _line("current PIN")):
            record_refusal(registry, holder, card.card_ref, "wrong current PIN")
            raise _Refused(
                "the current PIN is wrong; nothing was changed (a holder who forgot it: an "
                "operator resets it with --reset)"
            )
        pin = _ask(what)
        store_pin(
            registry,
            holder,
            new_pin_hash(base, pin, duress=duress),
            duress=duress,
            card_ref=card.card_ref,
            reset=reset,
        )
    except (EdgeError, ValueError, OSError, _Refused) as error:
        click.echo(terminal(f"cards set-pin refused: {error}"), err=True)
        ctx.exit(2)
    finally:
        registry.close()
    click.echo(
        terminal(
            f"{what} set for staff {holder.staff_no}; the doors get it with: "
            f"edge-provision publish --dir {directory}"
        )
    )


def _proof_key(registry: Registry, card_ref: str) -> bytes | None:
    try:
        return holder_of(registry, card_ref).lite_s_key
    except EdgeError:
        return None  # an unknown card: refused once it is looked up for its holder


def _check_card(holder: Holder, proved: bool | None) -> None:
    if holder.card_status != "active":
        raise _Refused(
            f"this card is {holder.card_status}; a PIN is set with the holder's active card"
        )
    if holder.profile is CardProfile.LITE_S and holder.lite_s_key is None:
        raise _Refused(
            "the registry holds no key for this lite-s card; import its card_profile again "
            "or personalise a new card"
        )
    if proved is False:
        raise _Refused(
            "the card did not prove its key: it may be a copy; set no PIN with it and tell "
            "the security office"
        )
    if holder.profile is CardProfile.DESFIRE:
        # nfcpy runs no DESFire authentication; every door of the card still does.
        click.echo("note: a DESFire card is read here by its UID alone", err=True)


def _confirm_reset(holder: Holder, what: str) -> None:
    """Have the operator confirm a reset by typing the holder's staff number."""
    typed = _line(
        f"reset the {what} of staff {holder.staff_no} without the current one: type "
        "their staff number to confirm",
        hidden=False,
    )
    if typed != holder.staff_no:
        raise _Refused(
            "the reset was not confirmed with the holder's staff number; nothing was changed"
        )


def _line(text: str, hidden: bool = True) -> str:
    """Return one line keyed (hidden at a terminal; the next line when piped), NFKC."""
    if sys.stdin.isatty():
        line = click.prompt(text, hide_input=hidden, default="", show_default=False)
    else:
        line = sys.stdin.readline()
    return unicodedata.normalize("NFKC", line).strip()


def _ask(what: str) -> str:
    """Return the new PIN keyed twice (hidden at a terminal, two lines when piped)."""
    if sys.stdin.isatty():
        first, again = (
            click.prompt(text, hide_input=True, default="", show_default=False)
            for text in (f"new {what}", f"the new {what} again")
        )
    else:
        first, again = sys.stdin.readline(), sys.stdin.readline()
    # Digits typed through a Japanese input method arrive full-width: NFKC makes them 0-9.
    first, again = (unicodedata.normalize("NFKC", x).strip() for x in (first, again))
    if first != again:
        raise _Refused(f"the two {what}s differ; nothing was changed, run the command again")
    if not first:
        raise _Refused(f"no {what} was keyed; nothing was changed")
    return first
