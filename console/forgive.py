"""Forgive a card's anti-passback position: which cards, which devices, what each is sent.

`edge-console forgive` and the web page's "Forgive anti-passback" button both pick the
cards and devices here and send through console.actions.perform (the page on a worker,
console.action_jobs): one signed `forgive` command per card to every device that may hold
its position (those serving the zone, or every door device), audited as
`card 0123456789ab[ in ZONE]: …` whichever way it was asked.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

from console.actions import ActionError, Site
from console.people import Directory, RegistryMissing

ACTION: Final = "apb.forgive"
COMMAND: Final = "forgive"
SHOWN: Final = 12  # digits of a card reference shown: enough to tell cards apart
_PREFIX: Final = re.compile(r"[0-9a-f]{4,64}")


class ForgiveError(ActionError):
    """Nothing to forgive: no such person or card, or a zone no door serves; says why."""


def cards(registry: Path, staff_no: str | None, card: str | None) -> list[str]:
    """Return the references of a person's cards (`staff_no`) or of one card (a prefix)."""
    if (staff_no is None) == (card is None):
        raise ForgiveError("give --staff-no or --card (one of them)")
    try:
        directory = Directory(registry)
    except RegistryMissing as error:
        raise ForgiveError(str(error)) from None
    if staff_no is not None:
        refs = [
            ref
            for ref in directory.refs_for(staff_no)
            if (person := directory.person(ref)) is not None and person.staff_no == staff_no
        ]
        if not refs:
            raise ForgiveError(f"no card for staff number {staff_no[:32]!r} in {registry}")
        return refs
    prefix = (card or "").strip().lower()
    if not _PREFIX.fullmatch(prefix):
        raise ForgiveError("a card is named by the first 4 to 64 hex digits of its reference")
    refs = directory.refs_starting(prefix)
    if len(refs) != 1:
        found = "no card" if not refs else f"{len(refs)} cards"
        raise ForgiveError(f"{found} with a reference starting {prefix}; give more digits")
    return refs


def devices(site: Site, zone: str | None) -> list[str]:
    """Return the devices that may hold a card's position in `zone` (any zone if None)."""
    found = site.passback_devices(zone)  # ActionError naming the zones
    if not found:
        raise site.none_to_send(ACTION)
    return found


def shown(ref: str) -> str:
    """Return how a card is named in the output and the audit trail: `card 0123456789ab`."""
    return f"card {ref[:SHOWN]}"


def target(ref: str, zone: str | None) -> str:
    """Return the audit trail's target of one card's forgiveness."""
    return f"{shown(ref)} in {zone}" if zone else shown(ref)


def arguments(ref: str, zone: str | None) -> dict[str, Any]:
    """Return the signed command's arguments."""
    return {"card_ref": ref} if zone is None else {"card_ref": ref, "zone": zone}
