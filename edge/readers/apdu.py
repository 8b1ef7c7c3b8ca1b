"""Parse what a PC/SC contactless reader reports: the ATR it builds and the UID it returns.

Pure functions over bytes, standard library only. PC/SC part 3 (and its supplement) defines
the ATR a contactless reader makes up for a card, since such cards have no ATR of their own:

- storage cards (MIFARE Classic/Ultralight, FeliCa, ISO 14443 B memory cards):
  `3B 8F 80 01 80 4F 0C A0 00 00 03 06 SS NN NN 00 00 00 00 TCK`, where `A0 00 00 03 06` is
  the PC/SC workgroup RID, SS the standard (which radio technology) and NN NN the card name;
- ISO 14443-4 cards (DESFire, Java cards, ID cards): `3B 8n 80 01 <n historical bytes> TCK`,
  the historical bytes taken from the ATS (type A) or from the ATQB (type B, n = 8).

Error messages state lengths and status words, never a card's identifier: they end up in logs.
"""

from __future__ import annotations

from functools import reduce
from operator import xor

from edge.errors import EdgeError

GET_UID = bytes.fromhex("FFCA000000")
"""GET DATA, P1 = 00: the reader answers the card's UID (FeliCa: IDm) and 90 00."""

_PCSC_RID = bytes.fromhex("A000000306")
_STORAGE_PREFIX = bytes.fromhex("804F0C") + _PCSC_RID  # category 80, tag 4F (AID), length 0C
_STANDARDS = {
    # PC/SC part 3 supplement, "standard" byte SS. 0x09-0x0C are ISO 15693 and 0x0D-0x10
    # contact I2C/2WBP/3WBP memory cards: no identifier we could use.
    0x01: "iso14443a",  # ISO 14443 A, part 1
    0x02: "iso14443a",  # ISO 14443 A, part 2
    0x03: "iso14443a",  # ISO 14443 A, part 3 (what readers report for MIFARE)
    0x05: "iso14443b",  # ISO 14443 B, part 1
    0x06: "iso14443b",  # ISO 14443 B, part 2
    0x07: "iso14443b",  # ISO 14443 B, part 3
    0x11: "felica",  # FeliCa
}
_UID_LENGTHS = {
    "felica": (8,),  # IDm
    "iso14443a": (4, 7, 10),  # single, double, triple size UID
    "iso14443b": (4,),  # PUPI
}
_TYPE_B_HISTORICAL_LENGTH = 8  # ATQB application data (4) + protocol info (3) + MBLI (1)


class CardResponseError(EdgeError, ValueError):
    """A card or reader answered something we cannot trust as a card identity."""


def technology_from_atr(atr: bytes, uid_length: int | None = None) -> str:
    """Return "felica", "iso14443a" or "iso14443b" for a contactless ATR made by a reader.

    `uid_length` is only needed for ISO 14443-4 cards, whose ATR does not always say
    whether they are type A or B; without it such an ATR raises CardResponseError.
    """
    historical = _contactless_historical_bytes(atr)
    if historical.startswith(_STORAGE_PREFIX) and len(historical) == 15:
        standard = historical[8]
        technology = _STANDARDS.get(standard)
        if technology is None:
            raise CardResponseError(
                f"contactless card of standard 0x{standard:02X} (PC/SC part 3): "
                "only FeliCa and ISO 14443 A/B cards carry an identifier we use"
            )
        return technology
    # ISO 14443-4. A type B PUPI is always 4 bytes and its ATR carries 8 historical bytes,
    # so anything else is type A; a 4-byte id with 8 historical bytes could be either.
    if uid_length is not None and (uid_length != 4 or len(historical) != _TYPE_B_HISTORICAL_LENGTH):
        return "iso14443a"
    raise CardResponseError(
        f"ISO 14443-4 card ({len(historical)} historical bytes, "
        f"{'unknown' if uid_length is None else uid_length}-byte id): "
        "its ATR does not tell type A from type B"
    )


def uid_from_response(response: bytes) -> bytes:
    """Return the UID (FeliCa: IDm) from the answer to GET_UID."""
    if len(response) < 2:
        raise CardResponseError(
            f"GET DATA answered {len(response)} byte(s), too short for a status word; "
            "the card left the field or the reader does not support GET DATA"
        )
    sw = response[-2:].hex().upper()
    data = response[:-2]
    if sw != "9000":
        # 6A 81: the reader does not support GET DATA for this card; 63 00: no UID.
        raise CardResponseError(
            f"GET DATA failed with status word {sw[:2]} {sw[2:]} ({len(data)} data bytes)"
        )
    if not data:
        raise CardResponseError("GET DATA answered 90 00 with no identifier")
    if len(data) not in {4, 7, 8, 10}:
        raise CardResponseError(
            f"GET DATA answered a {len(data)}-byte identifier; expected 4, 7, 8 or 10 bytes"
        )
    return data


def card_identity(atr: bytes, response: bytes) -> tuple[str, bytes]:
    """Return (technology, identifier) from a card's ATR and its answer to GET_UID."""
    uid = uid_from_response(response)
    technology = technology_from_atr(atr, len(uid))
    if len(uid) not in _UID_LENGTHS[technology]:
        expected = " or ".join(str(n) for n in _UID_LENGTHS[technology])
        raise CardResponseError(
            f"a {technology} card answered a {len(uid)}-byte identifier; expected {expected}"
        )
    return technology, uid


def _contactless_historical_bytes(atr: bytes) -> bytes:
    # TS 3B (direct convention), T0 8n (TD1 follows, n historical bytes), TD1 80 (TD2
    # follows, T=0), TD2 01 (T=1, nothing follows), historical bytes, TCK.
    if len(atr) < 5 or atr[0] != 0x3B or atr[1] >> 4 != 0x8 or atr[2:4] != b"\x80\x01":
        raise CardResponseError(
            f"{len(atr)}-byte ATR is not a contactless card's (PC/SC part 3 wants 3B 8n 80 01 …)"
        )
    count = atr[1] & 0x0F
    if len(atr) != 4 + count + 1:
        raise CardResponseError(
            f"{len(atr)}-byte ATR announces {count} historical bytes; expected {5 + count} bytes"
        )
    # pcscd passes the ATR on without checking TCK: XOR of every byte after TS must be 0.
    check = reduce(xor, atr[1:], 0)
    if check != 0:
        raise CardResponseError(f"ATR check byte (TCK) is wrong: bytes XOR to 0x{check:02X}")
    return atr[4 : 4 + count]
