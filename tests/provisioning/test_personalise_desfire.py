"""DESFire personalisation in one process: the desk's protocol against the simulated card.

`personalise_card` (provisioning, on edge.readers.desfire) talks straight to
simulator.desfire_card, which was written apart from it from NXP's documents: no pcscd here
(tests/edge/readers/test_desfire_pcsc.py runs the same through pcscd and the CLI).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from edge.card_layout import DESFIRE_AID, DESFIRE_FILE, DESFIRE_KEY_NO
from edge.readers.desfire import (
    DesfireError,
    Session,
    authenticate_ev2_first,
    read_identity,
    select_application,
)
from edge.readers.pcsc import DeskReaderError
from provisioning.card_desk import PersonaliseError
from provisioning.card_keys import desfire_key
from provisioning.desfire_commands import change_key, change_key_settings, crc32, write_data
from provisioning.personalise_desfire import FROZEN, ZERO_KEY, personalise_card
from simulator.desfire_card import DesfireCard

UID = bytes.fromhex("04A2B3C4D5E680")
MASTER = bytes(range(32))
REFERENCE = bytes(range(100, 132))


def key(slot: int, master: bytes = MASTER) -> bytes:
    return desfire_key(master, slot, UID)


def personalised(master: bytes = MASTER) -> DesfireCard:
    card = DesfireCard.blank(UID)
    personalise_card(card.answer, UID, master, REFERENCE)
    card.reset()
    card.history.clear()
    return card


def read(card: DesfireCard, slot: int, with_key: bytes) -> bytes:
    return read_identity(
        card.answer,
        aid=DESFIRE_AID,
        key_no=slot,
        key=with_key,
        file_no=DESFIRE_FILE,
        length=32,
        mode="mac",
    )


def test_nxp_crc32_of_a_known_string() -> None:
    # CRC-32/JAMCRC (IEEE polynomial, no final complement) of "123456789" is 0x340BC6D9.
    assert crc32(b"123456789") == bytes.fromhex("D9C60B34")
    # AN12196 Table 25 (ChangeKey): CRC32NK of NewKey F3847D62.. is 78 9D FA DC as sent.
    new_key = bytes.fromhex("F3847D627727ED3BC9C4CC050489B966")
    assert crc32(new_key) == bytes.fromhex("789DFADC")


def test_a_blank_card_gets_the_staff_application_and_proves_itself_as_gate_and_door() -> None:
    card = DesfireCard.blank(UID)
    personalise_card(card.answer, UID, MASTER, REFERENCE)
    app = card.applications[DESFIRE_AID]
    assert app.keys == {0: key(0), 1: key(1), 2: key(2)}
    assert len({key(0), key(1), key(2)}) == 3
    assert app.settings == FROZEN
    assert app.files[DESFIRE_FILE].data == REFERENCE
    assert app.files[DESFIRE_FILE].mode == "mac"
    assert app.files[DESFIRE_FILE].read_keys == {1, 2}
    assert app.files[DESFIRE_FILE].write_keys == {0, 2}
    sent = [e.command[1] for e in card.history]
    # select, auth, GetCardUID, GetApplicationIDs, create; select, auth, 2 x ChangeKey, create
    # file, write, ChangeKey 0; auth, ChangeKeySettings, GetKeySettings; two proofs.
    assert sent == [
        *(0x5A, 0x71, 0xAF, 0x51, 0x6A, 0xCA),
        *(0x5A, 0x71, 0xAF, 0xC4, 0xC4, 0xCD, 0x3D, 0xC4),
        *(0x71, 0xAF, 0x54, 0x45),
        *(0x5A, 0x71, 0xAF, 0xBD, 0x5A, 0x71, 0xAF, 0xBD),
    ]
    assert all(e.response[-2:] == b"\x91\x00" or e.response[-1] == 0xAF for e in card.history)
    card.reset()
    for role, slot in DESFIRE_KEY_NO.items():
        assert read(card, slot, key(slot)) == REFERENCE, role


def test_a_second_personalisation_is_refused_and_changes_nothing() -> None:
    card = personalised()
    before = dict(card.applications)
    with pytest.raises(PersonaliseError, match="already personalised with this site's keys"):
        personalise_card(card.answer, UID, MASTER, REFERENCE)
    assert card.applications == before
    assert 0xCA not in [e.command[1] for e in card.history]


def test_another_sites_card_is_refused_as_not_ours() -> None:
    card = personalised(master=bytes(32))
    with pytest.raises(PersonaliseError, match="not with this site's keys") as caught:
        personalise_card(card.answer, UID, MASTER, REFERENCE)
    assert UID.hex() not in str(caught.value).lower()


def test_a_card_whose_master_key_is_not_blank_is_refused_unchanged() -> None:
    card = DesfireCard.blank(UID, picc_key=bytes.fromhex("11" * 16))
    with pytest.raises(PersonaliseError, match="master key is not a blank card's"):
        personalise_card(card.answer, UID, MASTER, REFERENCE)
    assert card.applications == {}


def test_a_random_id_card_is_refused() -> None:
    card = DesfireCard.blank(UID)
    with pytest.raises(PersonaliseError, match="random id"):
        personalise_card(card.answer, bytes.fromhex("08112233445566"), MASTER, REFERENCE)
    assert card.applications == {}


def leaving_after(card: DesfireCard, exchanges: int) -> Callable[[bytes], bytes]:
    def transmit(apdu: bytes) -> bytes:
        if len(card.history) >= exchanges:
            raise DeskReaderError("the card left or stopped answering")
        return card.answer(apdu)

    return transmit


def test_a_card_leaving_before_the_application_exists_stays_blank() -> None:
    card = DesfireCard.blank(UID)
    with pytest.raises(DeskReaderError):
        personalise_card(leaving_after(card, 4), UID, MASTER, REFERENCE)
    assert card.applications == {}
    card.reset()
    personalise_card(card.answer, UID, MASTER, REFERENCE)  # still blank: it works now


def test_a_card_leaving_half_way_is_named_unfinished() -> None:
    card = DesfireCard.blank(UID)
    with pytest.raises(PersonaliseError, match=r"half-way.*do not issue it"):
        personalise_card(leaving_after(card, 10), UID, MASTER, REFERENCE)
    card.reset()
    with pytest.raises(PersonaliseError, match="not with this site's keys"):
        personalise_card(card.answer, UID, MASTER, REFERENCE)


def test_the_frozen_application_refuses_new_settings_and_a_holders_key_change() -> None:
    card = personalised()
    select_application(card.answer, DESFIRE_AID)
    session = authenticate_ev2_first(card.answer, 0, key(0))
    with pytest.raises(DesfireError, match="91 9D permission denied"):
        change_key_settings(card.answer, session, 0x0F)
    # Someone holding the gate key (a stolen gate Pi) cannot change any key of the card.
    select_application(card.answer, DESFIRE_AID)
    session = authenticate_ev2_first(card.answer, 1, key(1))
    with pytest.raises(DesfireError, match="91 9D permission denied"):
        change_key(card.answer, session, 2, bytes(16), old=key(2), version=2)
    assert card.applications[DESFIRE_AID].keys[2] == key(2)


def test_the_gate_key_cannot_write_the_file_the_door_key_can() -> None:
    card = personalised()
    select_application(card.answer, DESFIRE_AID)
    session = authenticate_ev2_first(card.answer, 1, key(1))
    with pytest.raises(DesfireError, match="91 9D permission denied"):
        write_data(card.answer, session, DESFIRE_FILE, b"EVIL")
    assert card.applications[DESFIRE_AID].files[DESFIRE_FILE].data == REFERENCE
    # DESFire gives a file one read key and one read-write key: the door key is the latter.
    select_application(card.answer, DESFIRE_AID)
    session = authenticate_ev2_first(card.answer, 2, key(2))
    write_data(card.answer, session, DESFIRE_FILE, b"EVIL")
    assert card.applications[DESFIRE_AID].files[DESFIRE_FILE].data[:4] == b"EVIL"


# AN12196 §5.16 Tables 25 and 26: one session (TI, keys) at CmdCtr 2, then 3.
AN_TI = bytes.fromhex("7614281A")
AN_ENC = bytes.fromhex("4CF3CB41A22583A61E89B158D252FC53")
AN_MAC = bytes.fromhex("5529860B2FC5FB6154B7F28361D30BF9")


class Recorder:
    """A card that answers each APDU from a script and keeps what it was sent."""

    def __init__(self, *answers: str) -> None:
        self.answers = [bytes.fromhex(a) for a in answers]
        self.sent: list[bytes] = []

    def __call__(self, apdu: bytes) -> bytes:
        self.sent.append(apdu)
        return self.answers.pop(0)


def test_change_key_commands_match_an12196_tables_25_and_26() -> None:
    session = Session(enc_key=AN_ENC, mac_key=AN_MAC, ti=AN_TI, counter=2)
    card = Recorder("203BB55D1089D5879100", "9100")
    new_key = bytes.fromhex("F3847D627727ED3BC9C4CC050489B966")
    change_key(card, session, 2, new_key, old=ZERO_KEY, version=1)  # another key than the session's
    assert card.sent[0] == bytes.fromhex(
        "90C4000029022CF362B7BF4311FF3BE1DAA295E8C68DE09050560D19B9E16C2393AE9CD1FAC7"
        "5D0CE20BCD1D06E600"
    )
    assert (session.counter, session.ended) == (3, False)  # the answer's MAC checked out
    master = bytes.fromhex("5004BF991F408672B1EF00F08F9E8647")
    change_key(card, session, 0, master, old=None, version=1)  # the session's own key
    # Table 26's C-APDU, as far as it is quoted here: header, key number, the first
    # 24 bytes of the cryptogram.
    assert card.sent[1].startswith(
        bytes.fromhex("90C400002900C0EB4DEEFEDDF0B513A03A95A75491818580503190D4D050")
    )
    assert len(card.sent[1]) == 5 + 1 + 32 + 8 + 1
    assert session.ended  # the card ended it: authenticate again with the new key
