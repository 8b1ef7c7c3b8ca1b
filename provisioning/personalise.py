"""Personalise FeliCa Lite-S cards at the desk: each card gets its own key from the site master.

The card key (CK) is `card_keys.lite_s_key(master, IDm)`; it is written the way nfcpy's
`FelicaLiteS.protect()` writes it (card key version + 1, then CK, then mutual authentication
with the new key, then the memory configuration that locks the system blocks). protect()
itself is not called: on a Lite-S it takes only a text password (`password.encode()`), and a
derived key is bytes. A card interrupted before its memory configuration is written stays
blank, so personalising it again is safe; once written, the card refuses another key.

nfcpy is reached through `edge.readers.nfc`, its one adapter module; the tag is nfcpy's
`FelicaLiteS` and is used through its own methods. The IDm is returned to the caller, never
logged or put in a message.
"""

from __future__ import annotations

from typing import Any

from edge.errors import EdgeError
from edge.readers.nfc import is_lite_s, lite_s_proves, open_frontend
from provisioning.card_desk import PersonaliseError
from provisioning.card_keys import lite_s_key
from provisioning.desk_reader import wait_for_card

__all__ = ["PersonaliseError", "ck_block", "locked_mc", "personalise_lite_s", "personalise_tag"]

CKV, CK, MC = 0x86, 0x87, 0x88  # card key version, card key (write-only), memory configuration
USER_BLOCKS = 0x3FFF  # S_PAD0..13: one bit each in the MC's protection masks


def ck_block(key: bytes) -> bytes:
    """Return the CK block for a 16-byte card key: each 8-byte half byte-reversed, as nfcpy."""
    if len(key) != 16:
        raise ValueError("a Lite-S card key is 16 bytes")
    return key[7::-1] + key[15:7:-1]


def locked_mc(mc: bytes) -> bytes:
    """Return the memory configuration protect(protect_from=0) leaves on a Lite-S.

    Byte 2 (MC_ALL) 00h: system blocks read-only, MC included; byte 5 (MC_CKCKV_W_MAC_A) 01h:
    CK and CKV still writable with MAC_A after mutual authentication; bytes 8-9 and 10-11:
    every user block written only after mutual authentication, with MAC_A.
    """
    if len(mc) != 16:
        raise PersonaliseError("the card's memory configuration block is garbled; try again")
    out = bytearray(mc)
    out[2], out[5] = 0x00, 0x01
    out[8:10] = out[10:12] = USER_BLOCKS.to_bytes(2, "little")
    return bytes(out)


def personalise_lite_s(path: str, master: bytes, *, timeout_s: float) -> bytes:
    """Give the next card on the desk reader at `path` its own key; return its IDm.

    Waits up to `timeout_s` for a FeliCa card. Raises PersonaliseError for no card, a card
    that is not a Lite-S, a card already personalised, or one that failed half-way.
    """
    try:
        clf = open_frontend(path)
    except OSError as error:
        raise PersonaliseError(
            f"cannot open the desk reader {path} ({error.strerror or type(error).__name__}); "
            "check --reader (usb:054c:06c3 for an RC-S380) and that nothing else holds it"
        ) from None
    try:
        return personalise_tag(_wait_for_card(clf, path, timeout_s), master)
    finally:
        clf.close()


def _wait_for_card(clf: Any, path: str, timeout_s: float) -> Any:
    # FeliCa only: a Lite-S is nothing else.
    return wait_for_card(
        clf,
        path,
        timeout_s,
        ["212F"],
        "put a blank FeliCa Lite-S card on it",
        PersonaliseError,
        "FeliCa card",
    )


def personalise_tag(tag: Any, master: bytes) -> bytes:
    """Personalise the nfcpy tag `tag` with the key `master` gives it; return its IDm."""
    if not is_lite_s(tag):
        raise PersonaliseError(
            "the card is not a FeliCa Lite-S (RC-S966), so it cannot prove itself; "
            "personalise only blank Lite-S cards"
        )
    idm = bytes(tag.identifier)
    key = lite_s_key(master, idm)
    try:
        mc = bytes(tag.read_without_mac(MC))
        if len(mc) != 16:
            raise PersonaliseError("the card's memory configuration block is garbled; try again")
        if mc[2] != 0xFF:  # MC_ALL: system blocks locked, the key can no longer be set plainly
            raise PersonaliseError(_already_personalised(tag, key))
        ckv = bytes(tag.read_without_mac(CKV))
        version = min(int.from_bytes(ckv[0:2], "little") + 1, 0xFFFF)
        tag.write_without_mac(version.to_bytes(2, "little") + bytes(14), CKV)
        tag.write_without_mac(ck_block(key), CK)
        if not lite_s_proves(tag, key):
            raise PersonaliseError(
                "the card did not take its new key (it is still blank); try again or use "
                "another card"
            )
        tag.write_without_mac(locked_mc(mc), MC)
        if not lite_s_proves(tag, key):
            raise PersonaliseError(
                "the card is locked but does not prove its key: do not issue it; use another card"
            )
    except EdgeError:
        raise
    except Exception as error:  # nfcpy's TagCommandError, CommunicationError: card left
        raise PersonaliseError(
            f"the card left or answered wrongly ({type(error).__name__}); put it back and run "
            "the command again (a card that was not locked yet is still blank)"
        ) from None
    return idm


def _already_personalised(tag: Any, key: bytes) -> str:
    if lite_s_proves(tag, key):
        return (
            "the card is already personalised with this site's key; it needs no second "
            "personalisation (record it as the staff member's card if it is not yet)"
        )
    return (
        "the card is already personalised, not with this site's key, and cannot take another; "
        "use a blank FeliCa Lite-S card"
    )
