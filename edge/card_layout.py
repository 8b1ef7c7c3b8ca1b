"""Where a proven card keeps what a door checks: shared by the readers and provisioning.

A DESFire card carries the staff application (AID 0xCA11E0, sent least significant byte
first). Its key 0 is the application master key, used only at personalisation; keys 1 and 2
are read keys, one per kind of door, so a key lifted from a stolen stairway Pi opens no
gate. File 1 holds the card's reference (32 bytes) and is read with a MAC: a proof bound to
this card and this session. Keys are AN10922-diversified by the card's UID.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

DESFIRE_AID: Final = bytes.fromhex("E011CA")
DESFIRE_SYSTEM: Final = b"CityHall"  # AN10922 system identifier
DESFIRE_FILE: Final = 1
DESFIRE_FILE_SIZE: Final = 32
DESFIRE_KEY_NO: Final[Mapping[str, int]] = {"gate": 1, "door": 2}  # by device role
