"""Card references: a keyed hash of a card's technology and identifier.

Devices, payloads and logs carry only this reference; the raw identifier stays inside the
reader adapter. HMAC-SHA256 with the site's card key, so a reference cannot be reversed,
and cannot be computed for a known card number by anyone without the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from edge.errors import EdgeError

TECHNOLOGIES = ("felica", "iso14443a", "iso14443b")
_HEX = re.compile(r"^[0-9A-F]+$")
_LENGTHS = {"felica": (16,), "iso14443a": (8, 14, 20), "iso14443b": (8,)}


class CardIdError(EdgeError, ValueError):
    """A card identifier that cannot be right."""


def normalise(technology: str, card_id: str) -> str:
    """Return `tech:ID` in canonical form (lower-case technology, upper-case hex, no spaces)."""
    tech = technology.strip().lower()
    if tech not in _LENGTHS:
        raise CardIdError(f"card technology {technology!r}: use one of {', '.join(TECHNOLOGIES)}")
    ident = card_id.replace(" ", "").replace(":", "").replace("-", "").upper()
    if not _HEX.match(ident) or len(ident) not in _LENGTHS[tech]:
        lengths = " or ".join(str(n) for n in _LENGTHS[tech])
        # The identifier itself is not repeated: error messages end up in logs.
        raise CardIdError(
            f"a {tech} card identifier must be {lengths} hexadecimal digits "
            f"(got {len(ident)} characters)"
        )
    return f"{tech}:{ident}"


def card_reference(site_key: bytes, technology: str, card_id: str) -> str:
    """Return the card reference (64 hex digits) for a card under the site's key."""
    if len(site_key) < 16:
        raise CardIdError(
            "the site card key must be at least 16 bytes; generate it with provisioning"
        )
    message = normalise(technology, card_id).encode("ascii")
    return hmac.new(site_key, message, hashlib.sha256).hexdigest()
