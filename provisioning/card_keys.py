"""Card keys: one site master key, kept in provisioning, from which every card's keys derive.

A card that proves itself (FeliCa Lite-S, MIFARE DESFire) holds keys diversified from the
master and its own id, so a key read out of one card opens no other. Devices never hold the
master: the credential snapshot gives each device, per card it may admit, only the key it
needs to check that card.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from edge.card_layout import DESFIRE_AID, DESFIRE_KEY_NO, DESFIRE_SYSTEM
from edge.core.credentials import CardProfile
from edge.readers.desfire_crypto import diversify_aes128
from provisioning.files import write_file
from provisioning.keys import KeysError, SiteKeys

MASTER_FILE = "card-master"
LITE_S = b"felica-lite-s\x00"
DESFIRE_SLOT = b"desfire-slot\x00"
DESFIRE_SLOTS: Final = DESFIRE_KEY_NO  # one read key per kind of door (edge.card_layout)
LITE_S_SLOT: Final = "ck"


def master_path(keys: SiteKeys) -> Path:
    """Return where the site's card master key lives (0600, never in a device bundle)."""
    return keys.directory / MASTER_FILE


def load_master(keys: SiteKeys) -> bytes:
    """Read the card master key, making it on first use (no card can depend on it before)."""
    path = master_path(keys)
    if not path.exists():
        if not keys.directory.is_dir():
            raise KeysError(f"{keys.directory}: no site keys; run edge-provision site init first")
        write_file(path, secrets.token_hex(32).encode() + b"\n", new=True)
    try:
        key = bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError) as exc:
        raise KeysError(f"{path}: unreadable card master key ({type(exc).__name__})") from None
    if len(key) != 32:
        raise KeysError(f"{path}: the card master key must be 64 hex digits")
    return key


def lite_s_key(master: bytes, idm: bytes) -> bytes:
    """Return a FeliCa Lite-S card's 16-byte card key (CK), diversified by its IDm."""
    if len(idm) != 8:
        raise ValueError("a FeliCa IDm is 8 bytes")
    return hmac.new(master, LITE_S + idm, hashlib.sha256).digest()[:16]


def desfire_key(master: bytes, slot: int, uid: bytes) -> bytes:
    """Return a DESFire card's AES read key of `slot`, diversified by its UID (AN10922)."""
    if len(uid) != 7:
        raise ValueError("a DESFire UID is 7 bytes")
    slot_master = hmac.new(master, DESFIRE_SLOT + bytes([slot]), hashlib.sha256).digest()[:16]
    return diversify_aes128(slot_master, uid, DESFIRE_AID, DESFIRE_SYSTEM)


def keys_for(
    profile: CardProfile, technology: str, card_id: bytes, master: bytes
) -> dict[str, bytes]:
    """Return a proving card's keys by slot name (empty for an id-only card).

    ValueError says which card technology the profile needs.
    """
    if profile is CardProfile.LITE_S:
        if technology != "felica" or len(card_id) != 8:
            raise ValueError("a lite-s card is a FeliCa card: card_tech felica, an 8-byte IDm")
        return {LITE_S_SLOT: lite_s_key(master, card_id)}
    if profile is CardProfile.DESFIRE:
        if technology != "iso14443a" or len(card_id) != 7:
            raise ValueError("a desfire card is ISO 14443 A with a 7-byte UID: card_tech iso14443a")
        return {str(slot): desfire_key(master, slot, card_id) for slot in DESFIRE_SLOTS.values()}
    return {}


def device_key(profile: CardProfile, keys: Mapping[str, str], role: str) -> bytes | None:
    """Return the one key a device of `role` checks this card with, or None."""
    if profile is CardProfile.LITE_S:
        name = LITE_S_SLOT
    elif profile is CardProfile.DESFIRE and role in DESFIRE_SLOTS:
        name = str(DESFIRE_SLOTS[role])
    else:
        return None
    return bytes.fromhex(keys[name]) if name in keys else None
