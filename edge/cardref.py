"""Card references: a keyed, memory-hard hash of a card's technology and identifier.

Devices, payloads and logs carry only this reference; the raw identifier stays inside the
reader adapter.

    salt      = HMAC-SHA256(site card key, b"card-reference")
    reference = hex(scrypt(password = "tech:ID" normalised, salt, N=2^8, r=10, p=1, dklen=32))

The site key still keys every reference (a foreign site's references differ, and no one
without the key can compute one for a known card number). Memory-hardness adds what a key
cannot: every Pi with a reader holds that key, so a stolen Pi and its store let an attacker
search card numbers offline; scrypt makes each guess cost 320 KiB of memory and about as
much work as a reference costs a Pi. The key goes into the salt rather than the password
so that one HMAC per key (cached) is the only extra step; scrypt keys its first PBKDF2 pass
with the password and takes the salt as its message, so neither input is exposed. The
arithmetic (time per reference here and on a Pi, GPU-years per card) is in
docs/threat-model.md; `python bench/cardref.py` measures it. Changing N, r or the salt label
changes every reference: every registry and store must be re-imported.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Final

from edge.errors import EdgeError

TECHNOLOGIES = ("felica", "iso14443a", "iso14443b")
SCRYPT_N: Final = 2**8
SCRYPT_R: Final = 10
SCRYPT_P: Final = 1
SALT_LABEL: Final = b"card-reference"
_HEX = re.compile(r"^[0-9A-F]+$")
_LENGTHS = {"felica": (16,), "iso14443a": (8, 14, 20), "iso14443b": (8,)}
_BATCH: Final = 256  # cards per task when referencing many


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
    message = normalise(technology, card_id).encode("ascii")
    return hashlib.scrypt(
        message, salt=_salt(site_key), n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    ).hex()


def card_references(
    site_key: bytes, cards: Iterable[tuple[str, str]], workers: int | None = None
) -> list[str]:
    """Return the references of many `(technology, card_id)` pairs, in order, on every CPU.

    scrypt releases the GIL, so threads scale with the cores. A bad identifier raises
    `CardIdError` as `card_reference` does; validate rows first to report them one by one.
    """
    pairs = list(cards)
    _salt(site_key)  # a short key is refused before any work starts
    chunks = [pairs[i : i + _BATCH] for i in range(0, len(pairs), _BATCH)]
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(chunks) <= 1:
        return [card_reference(site_key, t, c) for t, c in pairs]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cardref") as pool:
        done = pool.map(lambda chunk: [card_reference(site_key, t, c) for t, c in chunk], chunks)
        return [ref for chunk in done for ref in chunk]


@lru_cache(maxsize=8)
def _salt(site_key: bytes) -> bytes:
    if len(site_key) < 16:
        raise CardIdError(
            "the site card key must be at least 16 bytes; generate it with provisioning"
        )
    return hmac.new(site_key, SALT_LABEL, hashlib.sha256).digest()
