"""Personalise blank DESFire EV2 cards at the desk, through a PC/SC reader.

The card gets the staff application of edge.card_layout: AES keys 0 (the application's
master, kept by provisioning alone), 1 (gates) and 2 (doors), each AN10922-diversified from
the site's card master key and the card's UID (provisioning.card_keys), and file 1, read
with a MAC by key 1 or 2, holding the card's reference. Then its settings are frozen:

| step | command (level)                             | key                          |
| ---- | ------------------------------------------- | ---------------------------- |
| 1    | AuthenticateEV2First (card)                 | blank card master key        |
| 2    | GetCardUID, GetApplicationIDs (card)        | the UID must be the one read |
| 3    | CreateApplication CA11E0, 3 AES keys (card) |                              |
| 4    | AuthenticateEV2First (application)          | key 0, still all zero        |
| 5    | ChangeKey 1, 2; CreateStdDataFile 1; Write  | key 0                        |
| 6    | ChangeKey 0 (ends the session)              | key 0                        |
| 7    | AuthenticateEV2First; ChangeKeySettings 01  | the new key 0                |
| 8    | read file 1 with key 1, then with key 2     | as a gate and a door will    |

A blank card here has an AES-128 card master key of zeros (a card issuer's blank stock);
a factory-fresh card whose master key is still DES is refused (DES authentication is not
spoken here). Frozen settings (01): settings never change again, keys 1 and 2 change only
with key 0, no file is created, deleted or listed without key 0. File 1's rights: read key
1, read-write key 2, write and change key 0 (DESFire has one read and one read-write key per
file: a door key may rewrite its own card's file, which then proves nothing, as the reader
checks the file against the UID's reference). The UID never appears in a message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from edge.card_layout import DESFIRE_AID, DESFIRE_FILE, DESFIRE_FILE_SIZE, DESFIRE_KEY_NO
from edge.cardref import card_reference
from edge.errors import EdgeError
from edge.readers.apdu import CardResponseError
from edge.readers.desfire import (
    DesfireAuthenticationError,
    DesfireError,
    Transmit,
    authenticate_ev2_first,
    get_card_uid,
    read_identity,
    select_application,
)
from edge.readers.pcsc import DeskReaderError, desk_card
from provisioning.card_desk import PersonaliseError
from provisioning.card_keys import desfire_key
from provisioning.desfire_commands import (
    AES_KEYS,
    change_key,
    change_key_settings,
    create_application,
    create_std_data_file,
    get_application_ids,
    get_key_settings,
    write_data,
)

BLANK_CARD_KEY: Final = bytes(16)
CARD_LEVEL: Final = bytes(3)
KEY_COUNT: Final = 3  # 0 application master, 1 gates, 2 doors
WHILE_PERSONALISING: Final = 0x09  # settings changeable, key 0 changeable, keys by key 0 only
FROZEN: Final = 0x01  # settings frozen; key 0 changes keys, and itself
NEVER_CHANGED: Final = 0x00
ZERO_KEY: Final = bytes(16)

Vet = Callable[[str, bytes], None]
"""Called with (technology, UID) before the card is written; raises to stop."""


def personalise_desfire(
    reader: str, master: bytes, site_key: bytes, *, timeout_s: float, vet: Vet
) -> bytes:
    """Personalise the next card on the PC/SC reader `reader` (name, part of it, or number).

    `site_key` makes the card's reference (edge.cardref); `vet` may refuse the card before
    anything is written. Returns the UID; raises PersonaliseError saying what to do.
    """
    try:
        with desk_card(reader, timeout_s) as (technology, uid, transmit):
            if technology != "iso14443a" or len(uid) != 7:
                raise PersonaliseError(
                    f"the card is a {technology} card with a {len(uid)}-byte id, not a DESFire "
                    "EV2 card (ISO 14443 A, 7-byte UID); use a blank DESFire EV2 or EV3 card"
                )
            vet(technology, uid)
            reference = bytes.fromhex(card_reference(site_key, technology, uid.hex()))
            personalise_card(transmit, uid, master, reference)
    except DeskReaderError as error:
        raise PersonaliseError(str(error)) from None
    except CardResponseError as error:  # not DesfireError: personalise_card words those
        raise PersonaliseError(f"the card's answer cannot be used ({error}); try again") from None
    return uid


def personalise_card(transmit: Transmit, uid: bytes, master: bytes, reference: bytes) -> None:
    """Run steps 1-8 on the card behind `transmit`; PersonaliseError says what went wrong."""
    keys = {slot: desfire_key(master, slot, uid) for slot in range(KEY_COUNT)}
    created = False
    try:
        select_application(transmit, CARD_LEVEL)
        try:
            session = authenticate_ev2_first(transmit, 0, BLANK_CARD_KEY)
        except DesfireAuthenticationError:
            raise PersonaliseError(
                "the card's master key is not a blank card's (AES-128, all zero): the card "
                "belongs to another system or came with a DES key; use a blank DESFire card"
            ) from None
        if get_card_uid(transmit, session) != uid:
            raise PersonaliseError(
                "the card shows a random id (its real UID differs), so a door cannot know it "
                "by its id; turn random id off or use another card"
            )
        if DESFIRE_AID in get_application_ids(transmit, session):
            raise PersonaliseError(_already(transmit, keys, reference))
        create_application(transmit, session, DESFIRE_AID, WHILE_PERSONALISING, KEY_COUNT)
        created = True
        select_application(transmit, DESFIRE_AID)
        session = authenticate_ev2_first(transmit, 0, ZERO_KEY)
        for slot in DESFIRE_KEY_NO.values():
            change_key(transmit, session, slot, keys[slot], old=ZERO_KEY, version=1)
        create_std_data_file(
            transmit,
            session,
            DESFIRE_FILE,
            mode="mac",
            read=DESFIRE_KEY_NO["gate"],
            write=0,
            read_write=DESFIRE_KEY_NO["door"],
            change=0,
            size=DESFIRE_FILE_SIZE,
        )
        write_data(transmit, session, DESFIRE_FILE, reference)
        change_key(transmit, session, 0, keys[0], old=None, version=1)
        session = authenticate_ev2_first(transmit, 0, keys[0])
        change_key_settings(transmit, session, FROZEN)
        if get_key_settings(transmit, session) != (FROZEN, AES_KEYS | KEY_COUNT):
            raise PersonaliseError(_unfinished("its settings did not freeze"))
        for role, slot in DESFIRE_KEY_NO.items():
            if _read(transmit, slot, keys[slot]) != reference:
                raise PersonaliseError(_unfinished(f"it does not prove itself with the {role} key"))
    except DesfireError as error:
        if created:
            raise PersonaliseError(_unfinished(f"it refused: {error}")) from None
        raise PersonaliseError(
            f"the card refused ({error}); it is unchanged: check that it is a DESFire EV2 or "
            "EV3 card and try again"
        ) from None
    except EdgeError as error:
        if isinstance(error, PersonaliseError) or not created:
            raise
        raise PersonaliseError(_unfinished(f"the card left ({error})")) from None


def _read(transmit: Transmit, slot: int, key: bytes) -> bytes:
    return read_identity(
        transmit,
        aid=DESFIRE_AID,
        key_no=slot,
        key=key,
        file_no=DESFIRE_FILE,
        length=DESFIRE_FILE_SIZE,
        mode="mac",
    )


def _already(transmit: Transmit, keys: dict[int, bytes], reference: bytes) -> str:
    """Say whether the card that already has the application proves itself with our keys."""
    try:
        proves = _read(transmit, DESFIRE_KEY_NO["gate"], keys[DESFIRE_KEY_NO["gate"]]) == reference
    except DesfireError:
        proves = False
    if proves:
        return (
            "the card is already personalised with this site's keys; it needs no second "
            "personalisation (record it as the staff member's card if it is not yet)"
        )
    return (
        "the card already holds the staff application, not with this site's keys (another "
        "site's card, or one left unfinished), and cannot be personalised again; use a blank card"
    )


def _unfinished(what: str) -> str:
    return (
        f"personalisation stopped half-way: {what}. The card now holds an unfinished staff "
        "application and cannot be personalised again: do not issue it; use another card"
    )
