"""edge-provision cards personalise: give a blank card its own keys at the desk and record it.

Each kind of card has its desk reader stack, imported only when asked for: FeliCa Lite-S
through nfcpy (the nfc extra), DESFire EV2/EV3 through pcscd (the pcsc extra).
"""

from __future__ import annotations

from pathlib import Path

import click

from edge.cardref import card_reference
from edge.errors import EdgeError
from edge.keys import read_card_key
from edge.text import terminal
from provisioning.card_keys import load_master
from provisioning.card_profiles import record
from provisioning.keys import SiteKeys
from provisioning.options import site_dir
from provisioning.registry import Registry, RegistryError

CARDS = {"lite-s": "FeliCa Lite-S", "desfire": "DESFire EV2"}
EXTRAS = {"lite-s": "nfc", "desfire": "pcsc"}


@click.command("personalise")
@site_dir
@click.option(
    "--card",
    "kind",
    type=click.Choice(sorted(CARDS)),
    default="lite-s",
    show_default=True,
    help="The kind of blank card: lite-s (FeliCa Lite-S, on an nfcpy reader) or desfire "
    "(MIFARE DESFire EV2/EV3, on a PC/SC reader).",
)
@click.option(
    "--reader",
    required=True,
    help="The desk reader. lite-s: its nfcpy path, usb:054c:06c3 (Sony RC-S380), "
    "usb:054c:02e1 (RC-S370/S330), or udp:127.0.0.1:PORT for a simulated card. desfire: "
    "part of its PC/SC name (ACR1252, RC-S300) or its number in pcscd's list (0, 1, …).",
)
@click.option("--staff-no", required=True, help="The staff number whose card this is.")
@click.option(
    "--timeout-s",
    type=click.FloatRange(min=1.0),
    default=30.0,
    show_default=True,
    help="How long to wait for the card.",
)
@click.pass_context
def personalise(
    ctx: click.Context, directory: Path, kind: str, reader: str, staff_no: str, timeout_s: float
) -> None:
    """Give a blank card its own keys and record it as --staff-no's card.

    The keys derive from the site's card master key (DIR/keys/card-master, made on first
    use) and the card's id. A Lite-S card gets its card key and is locked. A DESFire card
    gets the staff application: keys for gates and doors, the card's reference in a file
    read with a MAC, settings frozen. A card already personalised is refused, as is a
    DESFire card whose master key is not a blank card's. The card's id is never shown.
    """
    try:
        keys = SiteKeys(directory / "keys")
        master = load_master(keys)
        _check_staff(directory, staff_no)
        click.echo(terminal(f"put a blank {CARDS[kind]} card on {reader} …"), err=True)
        if kind == "lite-s":
            technology, card_id = "felica", _lite_s(reader, master, timeout_s)
        else:
            site_key = read_card_key(keys.card_key)
            technology = "iso14443a"
            card_id = _desfire(reader, master, site_key, timeout_s, directory, staff_no)
        record(directory, staff_no=staff_no, technology=technology, card_id=card_id, profile=kind)
    except ImportError:
        extra = EXTRAS[kind]
        click.echo(
            terminal(
                f"cards personalise refused: a {CARDS[kind]} card needs the {extra} extra: "
                f"pip install 'cityhall-edge[{extra}]'"
            ),
            err=True,
        )
        ctx.exit(2)
    except (EdgeError, ValueError, OSError) as error:
        click.echo(terminal(f"cards personalise refused: {error}"), err=True)
        ctx.exit(2)
    click.echo(terminal(f"personalised a {CARDS[kind]} card for staff {staff_no}"))


def _lite_s(reader: str, master: bytes, timeout_s: float) -> bytes:
    from provisioning.personalise import personalise_lite_s  # noqa: PLC0415 -- nfcpy is optional (the nfc extra)

    return personalise_lite_s(reader, master, timeout_s=timeout_s)


def _desfire(
    reader: str, master: bytes, site_key: bytes, timeout_s: float, directory: Path, staff_no: str
) -> bytes:
    from provisioning.personalise_desfire import personalise_desfire  # noqa: PLC0415 -- pyscard is optional (the pcsc extra)

    def vet(technology: str, uid: bytes) -> None:
        _check_owner(directory, staff_no, technology, uid, site_key)

    return personalise_desfire(reader, master, site_key, timeout_s=timeout_s, vet=vet)


def _check_staff(directory: Path, staff_no: str) -> None:
    """Refuse an unknown staff number before any card is touched."""
    registry = Registry(directory / "registry.db")
    try:
        row = registry.db.execute("SELECT 1 FROM people WHERE staff_no = ?", [staff_no])
        if row.fetchone() is None:
            raise RegistryError(
                f"no staff {staff_no!r}; import them with edge-provision cards import"
            )
    finally:
        registry.close()


def _check_owner(directory: Path, staff_no: str, technology: str, uid: bytes, key: bytes) -> None:
    """Refuse, before it is written, a card the registry gives to someone else."""
    ref = card_reference(key, technology, uid.hex())
    registry = Registry(directory / "registry.db")
    try:
        row = registry.db.execute("SELECT staff_no FROM cards WHERE card_ref = ?", [ref])
        owner = row.fetchone()
    finally:
        registry.close()
    if owner is not None and owner[0] != staff_no:
        raise RegistryError(f"this card belongs to staff {owner[0]!r}; revoke it there first")
