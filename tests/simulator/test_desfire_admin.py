"""The simulated card's personalisation commands and their refusals, with no reader code.

Every command here is built in the test from the documented formulas (EV2 secure messaging:
AN12196 / AN12343; ChangeKey's cryptogram: MF3D(H)x2 datasheet) on `cryptography`, apart
from both the simulator and provisioning/desfire_commands.py; ChangeKey and its CRC32 are
pinned by NXP's own exchange (AN12196 §5.16.1, Table 25).
"""

from __future__ import annotations

import zlib

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from simulator.desfire_card import Application, DataFile, DesfireCard
from simulator.desfire_state import Session, crc32

H = bytes.fromhex
UID = H("04A1B2C3D4E5F6")
AID = H("E011CA")
ZERO = bytes(16)
K1, K2, K0 = H("11" * 16), H("22" * 16), H("00112233445566778899AABBCCDDEEFF")
OK, MORE = H("9100"), H("91AF")


def cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    worker = cipher.decryptor() if decrypt else cipher.encryptor()
    return worker.update(data) + worker.finalize()


def pad(data: bytes) -> bytes:
    data += b"\x80"
    return data + bytes(-len(data) % 16)


def apdu(ins: int, data: bytes = b"") -> bytes:
    return bytes((0x90, ins, 0, 0)) + (bytes((len(data),)) + data if data else b"") + b"\x00"


class Pcd:
    """The reader's half of one EV2 session, computed here from NXP's formulas."""

    def __init__(self, card: DesfireCard, key_no: int, key: bytes) -> None:
        self.card = card
        self.key_no = key_no
        rnd_a = bytes(range(16))
        answer = card.answer(apdu(0x71, bytes((key_no, 0))))
        assert answer[-2:] == MORE, answer.hex()
        rnd_b = cbc(key, ZERO, answer[:16], decrypt=True)
        proof = cbc(key, ZERO, rnd_a + rnd_b[1:] + rnd_b[:1])
        answer = card.answer(apdu(0xAF, proof))
        self.ok = answer[-2:] == OK
        if not self.ok:
            return
        self.ti = cbc(key, ZERO, answer[:32], decrypt=True)[:4]
        mixed = bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[:6], strict=True))
        sv = H("00010080") + rnd_a[:2] + mixed + rnd_b[6:] + rnd_a[8:]
        self.enc, self.mac_key = cmac(key, H("A55A") + sv), cmac(key, H("5AA5") + sv)
        self.counter = 0

    def _mact(self, data: bytes) -> bytes:
        return cmac(self.mac_key, data)[1::2]

    def mac(self, ins: int, data: bytes) -> bytes:
        """Send a MAC-mode command; check a good answer's MAC; return the raw answer."""
        ctr = self.counter.to_bytes(2, "little")
        answer = self.card.answer(
            apdu(ins, data + self._mact(bytes((ins,)) + ctr + self.ti + data))
        )
        if answer[-2:] == OK and len(answer) >= 10:
            body, mac = answer[:-10], answer[-10:-2]
            self.counter += 1
            ctr = self.counter.to_bytes(2, "little")
            assert mac == self._mact(b"\x00" + ctr + self.ti + body)
        return answer

    def full(self, ins: int, header: bytes, plain: bytes) -> bytes:
        """Send a FULL-mode command: `plain` padded and enciphered under IVc."""
        ctr = self.counter.to_bytes(2, "little")
        iv = cbc(self.enc, ZERO, H("A55A") + self.ti + ctr + bytes(8))
        return self.mac(ins, header + cbc(self.enc, iv, pad(plain)))


def nxp_crc32(data: bytes) -> bytes:
    return ((zlib.crc32(data) ^ 0xFFFFFFFF) & 0xFFFFFFFF).to_bytes(4, "little")


def test_crc32_answers_an12196_table_25() -> None:
    new_key = H("F3847D627727ED3BC9C4CC050489B966")  # ChangeKey's NewKey; CRC32NK as sent
    assert nxp_crc32(new_key) == crc32(new_key) == H("789DFADC")


def change_other(pcd: Pcd, key_no: int, new: bytes, old: bytes, crc: bytes | None = None) -> bytes:
    xored = bytes(a ^ b for a, b in zip(new, old, strict=True))
    return pcd.full(0xC4, bytes((key_no,)), xored + b"\x01" + (crc or nxp_crc32(new)))


def with_app(settings: int = 0x09, keys: dict[int, bytes] | None = None) -> DesfireCard:
    app = Application(keys or {0: ZERO, 1: ZERO, 2: ZERO}, {}, settings, 3)
    return DesfireCard(UID, {AID: app}, picc_key=ZERO)


def in_app(card: DesfireCard, key_no: int = 0, key: bytes = ZERO) -> Pcd:
    assert card.answer(apdu(0x5A, AID)) == OK
    pcd = Pcd(card, key_no, key)
    assert pcd.ok
    return pcd


def test_blank_card_creates_an_application_under_the_card_key_and_lists_it() -> None:
    card = DesfireCard.blank(UID)
    pcd = Pcd(card, 0, ZERO)
    assert pcd.ok
    assert pcd.mac(0xCA, AID + H("0983")).endswith(OK)
    answer = pcd.mac(0x6A, b"")
    assert answer[:3] == AID
    assert len(answer) == 3 + 8 + 2
    assert pcd.mac(0x45, b"")[:2] == H("0F81")
    app = card.applications[AID]
    assert (app.keys, app.settings, app.key_count) == ({0: ZERO, 1: ZERO, 2: ZERO}, 0x09, 3)


def test_wrong_card_key_is_an_authentication_error() -> None:
    card = DesfireCard.blank(UID, picc_key=H("AA" * 16))
    assert not Pcd(card, 0, ZERO).ok
    assert card.history[-1].response == H("91AE")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (AID + H("0983"), "91DE"),  # the application exists
        (AID + H("09"), "917E"),  # KeySett2 missing
        (H("000000") + H("0983"), "919E"),  # the card level is no application
        (H("010203") + H("0980"), "919E"),  # no keys
        (H("010203") + H("098F"), "919E"),  # 15 keys
        (H("010203") + H("0903"), "919E"),  # DES keys: not modelled
    ],
)
def test_create_application_refusals(data: bytes, status: str) -> None:
    card = with_app()
    pcd = Pcd(card, 0, ZERO)
    assert pcd.mac(0xCA, data) == H(status)
    assert not card.authenticated  # any refusal ends the session


def test_create_application_needs_the_card_key_unless_creation_is_free() -> None:
    card = DesfireCard(UID, {}, picc_key=ZERO, picc_settings=0x0B)  # bit 2 clear
    assert card.answer(apdu(0xCA, AID + H("0983"))) == H("91AE")
    card = DesfireCard.blank(UID)  # 0F: free creation, as delivered
    assert card.answer(apdu(0xCA, AID + H("0983"))) == OK
    pcd = Pcd(card, 0, ZERO)
    tampered = bytearray(apdu(0xCA, H("010203") + H("0983") + bytes(8)))
    assert card.answer(bytes(tampered)) == H("911E")
    assert pcd.card.applications.keys() == {AID}


def test_change_another_key_with_xor_and_crc32_then_it_authenticates() -> None:
    card = with_app()
    pcd = in_app(card)
    assert change_other(pcd, 1, K1, ZERO).endswith(OK)
    assert card.authenticated  # key 0's session goes on
    assert change_other(pcd, 2, K2, ZERO).endswith(OK)
    assert card.applications[AID].keys == {0: ZERO, 1: K1, 2: K2}
    assert card.applications[AID].versions[1] == 1
    assert in_app(card, 1, K1).ok


def test_change_key_refuses_a_wrong_crc_or_old_key_and_keeps_the_key() -> None:
    card = with_app()
    assert change_other(in_app(card), 1, K1, ZERO, crc=bytes(4)) == H("911E")
    assert not card.authenticated
    assert change_other(in_app(card), 1, K1, H("55" * 16)) == H("911E")  # wrong old key
    assert card.applications[AID].keys[1] == ZERO


def test_change_the_sessions_own_key_ends_the_session_without_a_mac() -> None:
    card = with_app()
    pcd = in_app(card)
    assert pcd.full(0xC4, b"\x00", K0 + b"\x01") == OK  # no MAC: the session is over
    assert not card.authenticated
    assert card.applications[AID].keys[0] == K0
    assert in_app(card, 0, K0).ok
    card.answer(apdu(0x5A, AID))
    assert not Pcd(card, 0, ZERO).ok


@pytest.mark.parametrize(
    ("settings", "key_no", "target", "status"),
    [
        (0x09, 1, 2, "919D"),  # 0: only key 0 changes keys
        (0x19, 2, 2, "919D"),  # 1: key 1 changes them, not key 2
        (0xF9, 0, 1, "919D"),  # F: keys frozen
        (0x08, 0, 0, "919D"),  # bit 0 clear: key 0 frozen
        (0x09, 0, 5, "9140"),  # no such key
    ],
)
def test_change_key_rights(settings: int, key_no: int, target: int, status: str) -> None:
    card = with_app(settings)
    pcd = in_app(card, key_no)
    if target == key_no:
        answer = pcd.full(0xC4, bytes((target,)), K1 + b"\x01")
    else:
        answer = change_other(pcd, target, K1, ZERO)
    assert answer == H(status)
    assert K1 not in card.applications[AID].keys.values()


def test_change_key_allowed_by_the_key_named_in_the_settings() -> None:
    card = with_app(0x19)
    assert change_other(in_app(card, 1), 2, K2, ZERO).endswith(OK)
    card = with_app(0xE9)  # E: each key changes itself
    assert in_app(card, 2).full(0xC4, b"\x02", K2 + b"\x01") == OK


def test_change_key_needs_a_session_and_the_right_length() -> None:
    card = with_app()
    card.answer(apdu(0x5A, AID))
    assert card.answer(apdu(0xC4, b"\x01" + bytes(40))) == H("91AE")
    pcd = in_app(card)
    assert pcd.mac(0xC4, b"\x01" + bytes(16)) == H("917E")


def test_create_file_write_it_with_a_mac_and_read_it_back() -> None:
    card = with_app(keys={0: ZERO, 1: K1, 2: K2})
    pcd = in_app(card)
    # File 1: MAC mode, Read 1, Write 0, ReadWrite 2, Change 0 -> bytes 20 10, 32 bytes.
    assert pcd.mac(0xCD, H("0101" + "2010" + "200000")).endswith(OK)
    file = card.applications[AID].files[1]
    assert (file.mode, file.read_keys, file.write_keys, file.data) == (
        "mac",
        {1, 2},
        {0, 2},
        bytes(32),
    )
    assert pcd.mac(0xCD, H("0101" + "2010" + "200000")) == H("91DE")
    pcd = in_app(card)
    header = H("01000000040000")
    assert pcd.mac(0x3D, header + b"ABCD").endswith(OK)
    assert card.applications[AID].files[1].data == b"ABCD" + bytes(28)
    reader = in_app(card, 1, K1)
    assert reader.mac(0xBD, H("01000000040000"))[:4] == b"ABCD"


@pytest.mark.parametrize(
    ("header", "data", "status"),
    [
        (H("01000000050000"), b"ABCD", "917E"),  # length says 5, 4 sent
        (H("011E0000040000"), b"ABCD", "91BE"),  # 30 + 4 > 32
        (H("09000000040000"), b"ABCD", "91F0"),  # no such file
    ],
)
def test_write_refusals(header: bytes, data: bytes, status: str) -> None:
    card = with_app()
    card.applications[AID] = Application(
        {0: ZERO, 1: ZERO}, {1: DataFile(bytes(32), "mac", frozenset({1}), frozenset({0}))}
    )
    assert in_app(card).mac(0x3D, header + data) == H(status)


def test_write_by_a_read_only_key_is_denied_and_unauthenticated_write_too() -> None:
    card = with_app()
    pcd = in_app(card)
    assert pcd.mac(0xCD, H("0101" + "2010" + "200000")).endswith(OK)
    assert in_app(card, 1).mac(0x3D, H("01000000040000") + b"EVIL") == H("919D")
    card.answer(apdu(0x5A, AID))
    assert card.answer(apdu(0x3D, H("01000000040000") + b"EVIL")) == H("919D")
    assert card.applications[AID].files[1].data == bytes(32)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (H("2001" + "2010" + "200000"), "919E"),  # file 32
        (H("0102" + "2010" + "200000"), "919E"),  # comm mode 2 does not exist
        (H("0101" + "2010" + "000000"), "919E"),  # size 0
        (H("0101" + "2010" + "0020"), "917E"),
    ],
)
def test_create_file_refusals(data: bytes, status: str) -> None:
    assert in_app(with_app()).mac(0xCD, data) == H(status)


def test_create_file_needs_the_application_master_key() -> None:
    card = with_app()
    assert in_app(card, 1).mac(0xCD, H("0101" + "2010" + "200000")) == H("919D")
    assert card.applications[AID].files == {}


def test_freeze_settings_then_nothing_changes_them() -> None:
    card = with_app()
    pcd = in_app(card)
    assert pcd.full(0x54, b"", b"\x01").endswith(OK)
    assert pcd.mac(0x45, b"")[:2] == H("0183")
    assert pcd.full(0x54, b"", b"\x0f") == H("919D")  # bit 3 clear: settings frozen
    assert card.applications[AID].settings == 0x01
    assert in_app(card, 1).full(0x54, b"", b"\x0f") == H("919D")


def test_change_key_settings_refuses_bad_padding() -> None:
    card = with_app()
    pcd = in_app(card)
    ctr = pcd.counter.to_bytes(2, "little")
    iv = cbc(pcd.enc, ZERO, H("A55A") + pcd.ti + ctr + bytes(8))
    assert pcd.mac(0x54, cbc(pcd.enc, iv, b"\x01" + bytes(15))) == H("911E")
    assert card.applications[AID].settings == 0x09


def test_get_key_settings_needs_key_0_unless_listing_is_free() -> None:
    card = with_app(0x09)  # bit 1 clear
    card.answer(apdu(0x5A, AID))
    assert card.answer(apdu(0x45)) == H("91AE")
    assert in_app(card, 2).mac(0x45, b"") == H("919D")
    card = with_app(0x0B)
    card.answer(apdu(0x5A, AID))
    assert card.answer(apdu(0x45)) == H("0B83") + OK


# AN12196 §5.16.1 Table 25: ChangeKey of key 2 in a session opened with key 0, CmdCtr 2.
AN_TI = H("7614281A")
AN_ENC = H("4CF3CB41A22583A61E89B158D252FC53")
AN_MAC = H("5529860B2FC5FB6154B7F28361D30BF9")
AN_NEW_KEY = H("F3847D627727ED3BC9C4CC050489B966")
AN_CHANGE_KEY = H(
    "90C4000029022CF362B7BF4311FF3BE1DAA295E8C68DE09050560D19B9E16C2393AE9CD1FAC75D0CE20BCD1D06E600"
)
AN_ANSWER = H("203BB55D1089D5879100")


def test_change_key_answers_an12196_table_25() -> None:
    card = with_app(keys={0: H("77" * 16), 1: ZERO, 2: ZERO})
    assert card.answer(apdu(0x5A, AID)) == OK
    card.session = Session(0, AN_TI, AN_ENC, AN_MAC, counter=2)  # the document's session
    assert card.answer(AN_CHANGE_KEY) == AN_ANSWER
    assert card.applications[AID].keys[2] == AN_NEW_KEY
    assert card.applications[AID].versions[2] == 1
    assert card.session is not None
    assert card.session.counter == 3  # another key changed: the session goes on
