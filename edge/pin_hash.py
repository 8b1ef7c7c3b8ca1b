"""PINs as salted scrypt hashes: made by provisioning, checked on the agent's PIN worker.

scrypt with N=2**14, r=8, p=1 (16 MiB of memory, about 40 ms on a desktop core and a few
times that on a Raspberry Pi 4): slow enough that a stolen snapshot does not give away
4-digit PINs for free, quick enough for one check per tap. The text form, kept in the
snapshot, the device store and the registry, is

    scrypt$N$r$p$salt(base64)$hash(base64)$duress hash(base64, or "-")
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from typing import Final

from edge.core.credentials import PinHash
from edge.core.events import PinOutcome
from edge.errors import EdgeError

N: Final = 2**14
R: Final = 8
P: Final = 1
SALT_BYTES: Final = 16
HASH_BYTES: Final = 32
MIN_DIGITS: Final = 4
MAX_DIGITS: Final = 8
_MAX_N: Final = 2**20  # a snapshot asking for more would stall the worker: refused


class PinError(EdgeError, ValueError):
    """A PIN or PIN hash that cannot be used; the message never carries the PIN or hash."""


def _derive(digits: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        digits.encode(), salt=salt, n=n, r=r, p=p, maxmem=256 * 1024 * 1024, dklen=HASH_BYTES
    )


def check_digits(pin: str, what: str = "PIN") -> None:
    """Raise PinError unless `pin` is 4 to 8 decimal digits (the message omits the value)."""
    if not (MIN_DIGITS <= len(pin) <= MAX_DIGITS and pin.isascii() and pin.isdigit()):
        raise PinError(f"{what} must be {MIN_DIGITS} to {MAX_DIGITS} digits (0-9)")


def hash_pin(pin: str, duress: str | None = None, *, salt: bytes | None = None) -> PinHash:
    """Hash a PIN and the person's duress PIN under one fresh salt (`salt` for tests)."""
    check_digits(pin)
    if duress is not None:
        check_digits(duress, "duress PIN")
        if duress == pin:
            raise PinError("the duress PIN must differ from the PIN")
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    return PinHash(
        N,
        R,
        P,
        salt,
        _derive(pin, salt, N, R, P),
        None if duress is None else _derive(duress, salt, N, R, P),
    )


def check_pin(pin_hash: PinHash, digits: str) -> PinOutcome:
    """Return whether `digits` is the PIN, the duress PIN or neither (one derivation)."""
    h = pin_hash
    if not (0 < len(digits) <= MAX_DIGITS and digits.isascii() and digits.isdigit()):
        return PinOutcome.WRONG
    derived = _derive(digits, h.salt, h.n, h.r, h.p)
    if hmac.compare_digest(derived, h.hash):
        return PinOutcome.RIGHT
    if h.duress is not None and hmac.compare_digest(derived, h.duress):
        return PinOutcome.DURESS
    return PinOutcome.WRONG


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def pin_text(pin_hash: PinHash) -> str:
    """Return the hash in its text form."""
    h = pin_hash
    duress = "-" if h.duress is None else _b64(h.duress)
    return f"scrypt${h.n}${h.r}${h.p}${_b64(h.salt)}${_b64(h.hash)}${duress}"


def parse_pin(text: str) -> PinHash:
    """Read the text form; PinError says what is wrong without quoting it."""
    parts = str(text).split("$")
    if len(parts) != 7 or parts[0] != "scrypt":
        raise PinError('a PIN hash is "scrypt$N$r$p$salt$hash$duress" (7 fields)')
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt, digest = (base64.b64decode(x, validate=True) for x in parts[4:6])
        duress = None if parts[6] == "-" else base64.b64decode(parts[6], validate=True)
    except (ValueError, binascii.Error):
        raise PinError("a PIN hash has a field that is not a number or base64") from None
    if not (1 < n <= _MAX_N and n & (n - 1) == 0 and 0 < r <= 32 and 0 < p <= 16):
        raise PinError(f"PIN hash parameters out of range; N is a power of 2 up to {_MAX_N}")
    if len(salt) < 8 or len(digest) != HASH_BYTES or (duress and len(duress) != HASH_BYTES):
        raise PinError(f"a PIN hash needs a salt of 8+ bytes and {HASH_BYTES}-byte hashes")
    return PinHash(n, r, p, salt, digest, duress)
