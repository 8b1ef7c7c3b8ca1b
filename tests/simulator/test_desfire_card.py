"""The simulated DESFire EV2 card against NXP's published exchanges and its refusals.

Known answers come from AN12196 (NTAG 424 DNA features and hints) §6.6 and §7.3 and AN12343
(DESFire Light features and hints) p. 54; everything else is computed here from the documented
formulas with `cryptography`, independently of simulator.desfire_card.
"""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import Literal

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC
from hypothesis import given
from hypothesis import strategies as st

from simulator.desfire_card import Application, DataFile, DesfireCard, Session
from simulator.vpcd import VirtualCard

H = bytes.fromhex
Mode = Literal["plain", "mac", "full"]
AID = H("E011CA")  # application CA11E0, sent LSB first
UID = H("04A1B2C3D4E5F6")
ZERO_KEY = bytes(16)
IDENTITY = bytes(range(0x40, 0x60))  # 32 bytes

# AN12196 §6.6 p. 28: AuthenticateEV2First with key 00*16, key number 0.
C1 = H("9071000002000000")
R1 = H("A04C124213C186F22399D33AC2A30215")
RND_B = H("B9E2FC789B64BF237CCCAA20EC7E6E48")
RND_A = H("13C5DB8A5930439FC3DEF9A4C675360F")
C2 = H("90AF00002035C3E05A752E0144BAC0DE51C1F22C56B34408A23D8AEA266CAB947EA8E0118D00")
R2 = H("3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F08120663")
TI = H("9D00C4DF")
SES_ENC = H("1309C877509E5A215007FF0ED19CA564")
SES_MAC = H("4C6626F5E72EA694202139295C7A7FC7")


class Script:
    """A `random` that hands out the given values in order and checks the lengths asked for."""

    def __init__(self, *values: bytes) -> None:
        self.values = list(values)

    def __call__(self, n: int) -> bytes:
        value = self.values.pop(0)
        assert len(value) == n
        return value


def cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def mact(key: bytes, data: bytes) -> bytes:
    return cmac(key, data)[1::2]  # NXP's "even-numbered bytes", counted from 1


def ecb(key: bytes, block: bytes) -> bytes:
    worker = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return worker.update(block) + worker.finalize()


def cbc_decrypt(key: bytes, iv: bytes, data: bytes) -> bytes:
    worker = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return worker.update(data) + worker.finalize()


def apdu(ins: int, data: bytes = b"") -> bytes:
    return bytes((0x90, ins, 0, 0)) + (bytes((len(data),)) + data if data else b"") + b"\x00"


def make_card(
    mode: Mode = "mac", key: bytes = ZERO_KEY, random: Callable[[int], bytes] | None = None
) -> DesfireCard:
    files = {
        1: DataFile(IDENTITY, mode, frozenset({0, 3})),
        2: DataFile(b"open to all", "mac", frozenset()),
        3: DataFile(bytes(range(100)), "plain", frozenset({0})),
    }
    app = Application({0: key, 3: H("33" * 16)}, files)
    return DesfireCard(UID, {AID: app}, random=random or Script(RND_B, TI))


def authenticated_card(mode: Mode = "mac") -> DesfireCard:
    card = make_card(mode)
    assert card.answer(apdu(0x5A, AID)) == H("9100")
    assert card.answer(C1) == R1 + H("91AF")
    assert card.answer(C2) == R2 + H("9100")
    return card


def read_command(header: bytes, counter: int) -> bytes:
    mac = mact(SES_MAC, b"\xbd" + counter.to_bytes(2, "little") + TI + header)
    return apdu(0xBD, header + mac)


def test_authenticate_ev2_first_answers_an12196_6_6() -> None:
    card = authenticated_card()
    assert card.authenticated
    assert [e.response[-2:] for e in card.history] == [H("9100"), H("91AF"), H("9100")]


def test_read_data_mac_mode_after_an12196_handshake() -> None:
    card = authenticated_card("mac")
    header = H("01000000000000")  # file 1, offset 0, length 0 = whole file
    response = card.answer(read_command(header, 0))
    mac = mact(SES_MAC, b"\x00" + H("0100") + TI + IDENTITY)
    assert response == IDENTITY + mac + H("9100")
    # The counter went to 1: the next command is MACed with it, the answer with 2.
    header = H("01040000080000")
    response = card.answer(read_command(header, 1))
    assert response == IDENTITY[4:12] + mact(
        SES_MAC, b"\x00" + H("0200") + TI + IDENTITY[4:12]
    ) + H("9100")
    assert card.answer(read_command(header, 1))[-2:] == H("911E")  # replayed counter


def test_read_data_full_mode_after_an12196_handshake() -> None:
    card = authenticated_card("full")
    response = card.answer(read_command(H("01000000000000"), 0))
    assert response[-2:] == H("9100")
    assert len(response) == 48 + 8 + 2
    ciphertext, mac = response[:48], response[48:56]
    assert mac == mact(SES_MAC, b"\x00" + H("0100") + TI + ciphertext)
    iv = ecb(SES_ENC, H("5AA5") + TI + H("0100") + bytes(8))
    plain = cbc_decrypt(SES_ENC, iv, ciphertext)
    assert plain == IDENTITY + b"\x80" + bytes(15)  # 32 bytes: a whole padding block


def test_read_data_iso_chaining_variant_answers_an12343_p54() -> None:
    # AN12343 p. 54: ReadData (AD) at counter 1 of a session with this TI and KSesAuthMAC.
    data = H("22" * 25 + "00" * 23)
    card = DesfireCard(
        UID, {AID: Application({0: ZERO_KEY}, {0: DataFile(data, "mac", frozenset({0}))})}
    )
    assert card.answer(apdu(0x5A, AID)) == H("9100")
    ses_mac, ti = H("9366FA195EB566F5BD2BAD4020B83002"), H("E2D3AF69")
    card.session = Session(0, ti, bytes(16), ses_mac, counter=1)  # the document's session
    response = card.answer(apdu(0xAD, H("00000000300000") + H("0D9BE191D5960834")))
    assert response == data + H("A49A44222D926666") + H("9100")


def test_get_card_uid_answers_an12196_7_3() -> None:
    card = DesfireCard(H("04958CAA5C5E80"), {AID: Application({0: ZERO_KEY}, {})})
    enc, mac = H("2B4D963C014DC36F24F69A50A394F875"), H("379D32130CE61705DD5FD8C36B95D764")
    card.session = Session(0, H("DF055522"), enc, mac)  # the document's session, counter 0
    response = card.answer(H("90510000088E2C155ADDA99BE300"))
    assert response == H("70756055688505B52A5E26E59E329CD6595F672298EA41B79100")


def test_get_card_uid_needs_authentication() -> None:
    card = make_card()
    card.answer(apdu(0x5A, AID))
    assert card.answer(apdu(0x51)) == H("91AE")


def test_wrong_key_is_an_authentication_error() -> None:
    card = make_card(key=H("01" * 16))  # the reader below uses 00*16
    card.answer(apdu(0x5A, AID))
    card.answer(C1)
    assert card.answer(C2) == H("91AE")
    assert not card.authenticated
    assert card.answer(apdu(0xBD, H("01000000000000"))) == H("919D")


def test_replayed_transcript_fails_against_a_fresh_rndb() -> None:
    card = make_card(random=Script(H("5A" * 16), TI))
    card.answer(apdu(0x5A, AID))
    assert card.answer(C1)[:16] != R1
    assert card.answer(C2) == H("91AE")
    assert not card.authenticated


def test_unauthenticated_read_of_a_mac_file_is_denied() -> None:
    card = make_card()
    card.answer(apdu(0x5A, AID))
    assert card.answer(apdu(0xBD, H("01000000000000"))) == H("919D")


def test_key_outside_read_keys_is_denied_after_a_valid_mac() -> None:
    ses = Script(RND_B, TI)
    card = DesfireCard(
        UID,
        {AID: Application({0: ZERO_KEY}, {1: DataFile(IDENTITY, "mac", frozenset({5}))})},
        random=ses,
    )
    card.answer(apdu(0x5A, AID))
    card.answer(C1)
    assert card.answer(C2) == R2 + H("9100")
    assert card.answer(read_command(H("01000000000000"), 0)) == H("919D")


def test_free_file_reads_in_plain_and_plain_file_after_authentication() -> None:
    card = make_card()
    card.answer(apdu(0x5A, AID))
    assert card.answer(apdu(0xBD, H("02000000000000"))) == b"open to all" + H("9100")
    card = authenticated_card()
    # 100 bytes in plain: 59 now, 41 after AF; the counter still moves (next MAC uses 1).
    assert card.answer(apdu(0xBD, H("03000000000000"))) == bytes(range(59)) + H("91AF")
    assert card.answer(apdu(0xAF)) == bytes(range(59, 100)) + H("9100")
    assert card.answer(read_command(H("01000000100000"), 1))[:16] == IDENTITY[:16]


def test_tampered_command_mac_is_an_integrity_error_and_ends_the_session() -> None:
    card = authenticated_card()
    command = bytearray(read_command(H("01000000000000"), 0))
    command[-2] ^= 0x01
    assert card.answer(bytes(command)) == H("911E")
    assert not card.authenticated
    assert card.answer(read_command(H("01000000000000"), 0))[-2:] != H("9100")


def test_select_application_refusals_and_reset() -> None:
    card = authenticated_card()
    assert card.answer(apdu(0x5A, H("010203"))) == H("91A0")
    assert card.answer(apdu(0x5A, H("0102"))) == H("917E")
    assert card.answer(apdu(0xBD, H("01000000000000"))) == H("91F0")  # card level: no files
    card = authenticated_card()
    card.reset()
    assert not card.authenticated
    assert card.answer(apdu(0xBD, H("01000000000000"))) == H("91F0")
    assert card.answer(apdu(0x71, H("0000"))) == H("9140")  # the card level has no keys


def test_read_refusals() -> None:
    card = make_card()
    card.answer(apdu(0x5A, AID))
    assert card.answer(apdu(0xBD, H("09000000000000"))) == H("91F0")
    assert card.answer(apdu(0xBD, H("020000"))) == H("917E")
    assert card.answer(apdu(0xBD, H("020B0000000000"))) == H("91BE")  # offset = size
    assert card.answer(apdu(0xBD, H("020000000C0000"))) == H("91BE")
    assert card.answer(apdu(0x71, H("0700"))) == H("9140")
    assert card.answer(apdu(0x71, H("0001"))) == H("917E")


def test_get_version_frames_and_continuation_rules() -> None:
    card = make_card()
    assert card.answer(H("9060000000")) == H("04010112001A05") + H("91AF")
    assert card.answer(H("90AF000000")) == H("04010112001A05") + H("91AF")
    last = card.answer(H("90AF000000"))
    assert last[:7] == UID
    assert len(last) == 14 + 2
    assert last[-2:] == H("9100")
    assert card.answer(H("90AF000000")) == H("91CA")
    card.answer(H("9060000000"))
    card.answer(apdu(0x5A, AID))  # any other command abandons the frames
    assert card.answer(H("90AF000000")) == H("91CA")
    assert card.answer(C2) == H("91CA")  # AF without a preceding 71


def test_get_data_answers_the_uid_and_unknown_commands_are_illegal() -> None:
    card = make_card()
    assert card.answer(H("FFCA000000")) == UID + H("9000")
    assert card.answer(apdu(0xFA)) == H("911C")


@pytest.mark.parametrize(
    "garbage",
    [
        b"",
        H("90"),
        H("906000"),
        H("00A4040007D276000085010100"),  # ISO SELECT: wrong CLA
        H("9060010000"),  # P1 not zero
        H("905A00000500"),  # Lc 5, no data
        H("905A000003E011CAE0E000"),  # Lc 3, 5 bytes of data
        H("905A000000000003E011CA00"),  # extended length
    ],
)
def test_garbage_apdus_get_an_error_status(garbage: bytes) -> None:
    response = make_card().answer(garbage)
    assert len(response) == 2
    assert response not in (H("9000"), H("9100"), H("91AF"))


@given(st.binary(max_size=40), st.sampled_from([b"", H("9060"), H("90AF"), H("90BD"), H("9071")]))
def test_any_bytes_get_a_status_word_never_an_exception(tail: bytes, head: bytes) -> None:
    card = make_card(random=os.urandom)
    card.answer(apdu(0x5A, AID))
    card.answer(C1)
    assert len(card.answer(head + tail)) >= 2


def test_history_and_repr_keep_uid_and_keys_out() -> None:
    card = authenticated_card()
    card.answer(H("FFCA000000"))
    assert [e.command for e in card.history] == [apdu(0x5A, AID), C1, C2, H("FFCA000000")]
    shown = repr(card) + repr(card.history)
    assert UID.hex() not in shown.lower()
    assert "authenticated=yes" in shown


def test_vpcd_card_passes_apdus_to_the_applet_and_resets_it() -> None:
    applet = authenticated_card()
    card = VirtualCard(H("3B8F8001804F0CA000000306030001000000006A"), UID, applet=applet)
    ours, vpcd = socket.socketpair()
    server = threading.Thread(target=card._serve, args=(ours,), daemon=True)
    server.start()

    def exchange(payload: bytes) -> bytes:
        vpcd.sendall(struct.pack(">H", len(payload)) + payload)
        (length,) = struct.unpack(">H", vpcd.recv(2))
        return vpcd.recv(length)

    assert exchange(H("FFCA000000")) == UID + H("9000")
    assert exchange(read_command(H("01000000000000"), 0))[:32] == IDENTITY
    vpcd.sendall(H("000100"))  # control 0: power off
    assert exchange(apdu(0xBD, H("01000000000000"))) == H("91F0")  # reset: nothing selected
    vpcd.close()
    server.join(5)
    ours.close()
    assert not server.is_alive()
    assert card.controls == [0]
    assert not applet.authenticated


def test_vpcd_card_without_applet_still_refuses_other_apdus() -> None:
    card = VirtualCard(b"\x3b", UID)
    assert card.answer(apdu(0x60)) == H("6D00")
    assert card.answer(H("FFCA000000")) == UID + H("9000")
