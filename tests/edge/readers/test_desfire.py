"""DESFire EV2 reader side: NXP known-answer vectors, then canned card answers built from them.

Sources of the vectors (hex copied from the documents, each checked in its test):
- AN10922 "Symmetric key diversifications", p. 8 (AES-128);
- AN12343 "MIFARE DESFire Light features and hints", pp. 33-34 (session keys), p. 54 (MACs);
- AN12196 "NTAG 424 DNA features and hints" (same EV2 secure messaging): §5.3 p. 21 (MAC
  mode), §6.6 p. 28 and §6.10 p. 34 (AuthenticateEV2First), §6.12 p. 36 (FULL command),
  §7.3 p. 43 (GetCardUID, FULL answer).
A canned card answers fixed frames and checks the frames it is sent; where no document gives
a ReadData (BD) frame, the expected frames are computed here with `cryptography` directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

from edge.errors import EdgeError
from edge.readers.desfire import (
    DesfireAuthenticationError,
    DesfireError,
    Session,
    authenticate_ev2_first,
    get_card_uid,
    read_data,
    read_identity,
    select_application,
    unwrap,
    wrap,
)
from edge.readers.desfire_crypto import (
    command_iv,
    command_mac,
    decrypt_cbc,
    diversify_aes128,
    encrypt_cbc,
    pad,
    response_iv,
    response_mac,
    session_keys,
    truncate_mac,
    unpad,
)

h = bytes.fromhex
OK = h("9100")
MORE = h("91AF")

# AN12196 §6.6 p. 28: AuthenticateEV2First with key 00 = 00*16.
A66_KEY = bytes(16)
A66_RND_A = h("13C5DB8A5930439FC3DEF9A4C675360F")
A66_C1 = h("9071000002000000")  # 90 71 00 00, Lc 02, KeyNo 00, LenCap 00, Le 00
A66_R1 = h("A04C124213C186F22399D33AC2A30215")  # E(K, RndB)
A66_C2 = h(
    "90AF000020"  # 90 AF 00 00, Lc 20
    "35C3E05A752E0144BAC0DE51C1F22C56B34408A23D8AEA266CAB947EA8E0118D"  # E(K, RndA||RndB')
    "00"
)
A66_R2 = h("3FA64DB5446D1F34CD6EA311167F5E4985B89690C04A05F17FA7AB2F08120663")
A66_TI = h("9D00C4DF")
A66_ENC = h("1309C877509E5A215007FF0ED19CA564")
A66_MAC = h("4C6626F5E72EA694202139295C7A7FC7")

# AN12196 §7.3 p. 43: GetCardUID under ENC/MAC/TI, CmdCtr 0.
A73_ENC = h("2B4D963C014DC36F24F69A50A394F875")
A73_MAC = h("379D32130CE61705DD5FD8C36B95D764")
A73_TI = h("DF055522")
A73_COMMAND = h("90510000088E2C155ADDA99BE300")  # 90 51 00 00, Lc 08, MACt, Le 00
A73_ANSWER = h("70756055688505B52A5E26E59E329CD6595F672298EA41B79100")  # E(UID) MACt SW
A73_UID = h("04958CAA5C5E80")


def card(*frames: tuple[bytes | None, bytes]) -> Callable[[bytes], bytes]:
    """Return a transmit that expects each command in turn (None: any) and answers it."""
    script = list(frames)

    def transmit(apdu: bytes) -> bytes:
        assert script, f"unexpected extra command {apdu.hex()}"
        expected, answer = script.pop(0)
        if expected is not None:
            assert apdu.hex().upper() == expected.hex().upper()
        return answer

    transmit.script = script  # type: ignore[attr-defined]
    return transmit


def reference_mact(key: bytes, message: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(message)
    return mac.finalize()[1::2]


def a73_session() -> Session:
    return Session(enc_key=A73_ENC, mac_key=A73_MAC, ti=A73_TI)


def read_command(session: Session, header: bytes, counter: int) -> bytes:
    mact = reference_mact(
        session.mac_key, h("BD") + counter.to_bytes(2, "little") + session.ti + header
    )
    return h("90BD00000F") + header + mact + h("00")


def maced_answer(session: Session, data: bytes, counter: int) -> bytes:
    message = h("00") + (counter + 1).to_bytes(2, "little") + session.ti + data
    return data + reference_mact(session.mac_key, message)


# --- crypto known answers ---------------------------------------------------------------


def test_an10922_aes128_diversification() -> None:
    # AN10922 p. 8: M = 01 || UID || AID || "NXP Abu", DivKey = CMAC(K, M).
    key = diversify_aes128(
        h("00112233445566778899AABBCCDDEEFF"), h("04782E21801D80"), h("3042F5"), b"NXP Abu"
    )
    assert key == h("A8DD63A3B89D54B37CA802473FDA9175")


def test_diversification_refuses_an_input_longer_than_32_bytes() -> None:
    with pytest.raises(ValueError, match="at most 32"):
        diversify_aes128(bytes(16), bytes(7), bytes(3), bytes(22))


def test_an12343_session_keys() -> None:
    # AN12343 pp. 33-34, Kx = 00*16.
    enc, mac = session_keys(
        bytes(16), h("B04D0787C93EE0CC8CACC8E86F16C6FE"), h("FA659AD0DCA738DD65DC7DC38612AD81")
    )
    assert enc == h("63DC07286289A7A6C0334CA31C314A04")
    assert mac == h("774F26743ECE6AF5033B6AE8522946F6")


def test_an12196_5_3_mac_mode_command_and_response() -> None:
    # §5.3 p. 21: GetFileSettings (F5) of file 02, CmdCtr 0.
    mac_key, ti = h("8248134A386E86EB7FAF54A52E536CB6"), h("7A21085E")
    mact = command_mac(mac_key, ti, 0, 0xF5, h("02"))
    assert mact == h("6597A457C8CD442C")
    assert wrap(0xF5, h("02") + mact) == h("90F5000009026597A457C8CD442C00")
    settings = h("0040EEEE000100D1FE001F00004400004400002000006A0000")
    assert response_mac(mac_key, ti, 0, settings) == h("2A474282E7A47986")


def test_an12196_6_12_full_mode_command() -> None:
    # §6.12 p. 36: WriteData (8D) in FULL mode with the §6.10 session, CmdCtr 0.
    enc, mac, ti = (
        h("7A93D6571E4B180FCA6AC90C9A7488D4"),
        h("FC4AF159B62E549B5812394CAB1918CC"),
        h("7614281A"),
    )
    header, data = h("030000000A0000"), h("0102030405060708090A")
    ciphertext = encrypt_cbc(enc, command_iv(enc, ti, 0), pad(data))
    apdu = wrap(0x8D, header + ciphertext + command_mac(mac, ti, 0, 0x8D, header + ciphertext))
    assert apdu == h("908D00001F030000000A00006B5E6804909962FC4E3FF5522CF0F8436C0C53315B9C73AA00")
    assert response_mac(mac, ti, 0, b"") == h("C26D236E4A7C046D")


def test_an12343_p54_macs() -> None:
    mac, ti = h("9366FA195EB566F5BD2BAD4020B83002"), h("E2D3AF69")
    write = h("00000000190000") + b"\x22" * 25
    assert command_mac(mac, ti, 0, 0x8D, write) == h("68F2C28C575A1628")
    assert response_mac(mac, ti, 0, b"") == h("0820F68898C2A7F1")  # card MACs with ctr 1
    assert command_mac(mac, ti, 1, 0xAD, h("00000000300000")) == h("0D9BE191D5960834")
    read = b"\x22" * 25 + bytes(23)
    assert response_mac(mac, ti, 1, read) == h("A49A44222D926666")  # card MACs with ctr 2


def test_command_iv() -> None:
    # proxmark3 desfiretest.c TestEV2IVEncode (no NXP document cited there).
    assert command_iv(h("66A8CB93269DC9BC2885B7A91B9C697B"), h("ED56F6E6"), 0) == h(
        "DA0F644A4986275957CF1EC3AF4CCE53"
    )
    assert command_iv(h("445A8626B3338459321232FADF6ADE2B"), h("11223344"), 5) == h(
        "177494FCC4F1DAB2AFBE8FAE2057A9D2"
    )


def test_an12196_7_3_response_iv_decrypts_the_uid() -> None:
    plain = decrypt_cbc(A73_ENC, response_iv(A73_ENC, A73_TI, 0), A73_ANSWER[:16])
    assert plain == A73_UID + h("80") + bytes(8)


def test_truncated_mac_keeps_odd_indexes() -> None:
    assert truncate_mac(bytes(range(16))) == bytes([1, 3, 5, 7, 9, 11, 13, 15])


def test_padding_method_2() -> None:
    assert pad(h("01")) == h("0180") + bytes(14)
    assert pad(bytes(16)) == bytes(16) + h("80") + bytes(15)  # aligned: a whole padding block
    assert unpad(bytes(16) + h("80") + bytes(15)) == bytes(16)
    assert unpad(h("0100") + h("80") + bytes(13)) == h("0100")  # data may end in 00
    for bad in (bytes(16), h("01") * 16, h("80") + bytes(16)):
        with pytest.raises(ValueError, match="padding"):
            unpad(bad)


# --- APDU framing -----------------------------------------------------------------------


def test_wrap() -> None:
    assert wrap(0x5A, h("E011CA")) == h("905A000003E011CA00")
    assert wrap(0xAF) == h("90AF000000")  # no Lc without data
    with pytest.raises(ValueError, match="255"):
        wrap(0xBD, bytes(256))


def test_unwrap_ok_and_more() -> None:
    assert unwrap(h("0102") + OK, 0xBD) == (h("0102"), 0x00)
    assert unwrap(MORE, 0x71) == (b"", 0xAF)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("AE", "authentication error"),
        ("9D", "permission denied"),
        ("A0", "application not found"),
        ("F0", "file not found"),
        ("1E", "integrity error"),
        ("7E", "length error"),
        ("BE", "boundary error"),
        ("77", "unknown status"),
    ],
)
def test_unwrap_names_the_command_and_the_status(status: str, words: str) -> None:
    with pytest.raises(DesfireError, match=f"ReadData failed: 91 {status} {words}") as caught:
        unwrap(h("91" + status), 0xBD)
    assert caught.value.status == int(status, 16)
    assert isinstance(caught.value, EdgeError)
    assert isinstance(caught.value, DesfireAuthenticationError) == (status == "AE")


@pytest.mark.parametrize("response", [b"", h("91"), h("00")])
def test_unwrap_refuses_a_short_answer(response: bytes) -> None:
    with pytest.raises(DesfireError, match="too short for a status word"):
        unwrap(response, 0x5A)


def test_unwrap_refuses_an_iso_status_word() -> None:
    with pytest.raises(DesfireError, match="SelectApplication failed with status word 6E 00"):
        unwrap(h("6E00"), 0x5A)


def test_select_application() -> None:
    select_application(card((h("905A000003E011CA00"), OK)), h("E011CA"))
    with pytest.raises(DesfireError, match="application not found"):
        select_application(card((None, h("91A0"))), h("E011CA"))
    with pytest.raises(DesfireError, match="unexpected data"):
        select_application(card((None, h("00") + OK)), h("E011CA"))


# --- AuthenticateEV2First ---------------------------------------------------------------


def test_an12196_6_6_handshake() -> None:
    transmit = card((A66_C1, A66_R1 + MORE), (A66_C2, A66_R2 + OK))
    session = authenticate_ev2_first(transmit, 0, A66_KEY, rnd_a=A66_RND_A)
    assert (session.enc_key, session.mac_key, session.ti) == (A66_ENC, A66_MAC, A66_TI)
    assert session.counter == 0
    assert not transmit.script  # type: ignore[attr-defined]


def test_an12196_6_10_handshake() -> None:
    transmit = card(
        (A66_C1, h("B875CEB0E66A6C5CD00898DC371F92D1") + MORE),
        (None, h("0CC9A8094A8EEA683ECAAC5C7BF20584206D0608D477110FC6B3D5D3F65C3A6A") + OK),
    )
    session = authenticate_ev2_first(
        transmit, 0, bytes(16), rnd_a=h("B98F4C50CF1C2E084FD150E33992B048")
    )
    assert session.ti == h("7614281A")
    assert session.enc_key == h("7A93D6571E4B180FCA6AC90C9A7488D4")
    assert session.mac_key == h("FC4AF159B62E549B5812394CAB1918CC")


def test_a_wrong_rotated_rnd_a_fails_authentication() -> None:
    tampered = bytearray(A66_R2)
    tampered[20] ^= 0x01  # a bit of block 2: the plaintext RndA' in block 2 changes
    transmit = card((A66_C1, A66_R1 + MORE), (A66_C2, bytes(tampered) + OK))
    with pytest.raises(DesfireAuthenticationError, match="authentication failed"):
        authenticate_ev2_first(transmit, 0, A66_KEY, rnd_a=A66_RND_A)


def test_a_card_without_the_key_fails_authentication() -> None:
    # The genuine answer to another RndA: the card echoes a RndA' that is not ours.
    transmit = card((A66_C1, A66_R1 + MORE), (None, A66_R2 + OK))
    with pytest.raises(DesfireAuthenticationError, match="authentication failed"):
        authenticate_ev2_first(transmit, 0, A66_KEY, rnd_a=bytes(16))


def test_authentication_error_status_is_an_authentication_failure() -> None:
    transmit = card((A66_C1, A66_R1 + MORE), (A66_C2, h("91AE")))
    with pytest.raises(DesfireAuthenticationError, match="91 AE authentication error"):
        authenticate_ev2_first(transmit, 0, A66_KEY, rnd_a=A66_RND_A)


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        (A66_R1 + OK, None, "answered 91 00 where 91 AF was due"),
        (A66_R1[:15] + MORE, None, "15 byte"),
        (A66_R1 + MORE, A66_R2[:31] + OK, "31 byte"),
        (A66_R1 + MORE, A66_R2 + MORE, "answered 91 AF where 91 00 was due"),
        (h("9140"), None, "no such key"),
    ],
)
def test_authentication_refuses_garbled_answers(
    first: bytes, second: bytes | None, message: str
) -> None:
    frames = [(A66_C1, first)] + ([(A66_C2, second)] if second is not None else [])
    with pytest.raises(DesfireError, match=message):
        authenticate_ev2_first(card(*frames), 0, A66_KEY, rnd_a=A66_RND_A)


def test_each_authentication_draws_a_fresh_rnd_a() -> None:
    sent: list[bytes] = []

    def transmit(apdu: bytes) -> bytes:
        sent.append(apdu)
        return A66_R1 + MORE if apdu == A66_C1 else A66_R2 + OK

    for _ in range(2):
        with pytest.raises(DesfireAuthenticationError):  # R2 answers the §6.6 RndA only
            authenticate_ev2_first(transmit, 0, A66_KEY)
    assert sent[1] != sent[3]  # E(K, RndA || RndB'): same RndB, so RndA differed


# --- secured commands -------------------------------------------------------------------


def test_an12196_7_3_get_card_uid() -> None:
    session = a73_session()
    assert get_card_uid(card((A73_COMMAND, A73_ANSWER)), session) == A73_UID
    assert session.counter == 1


def test_a_response_mac_flipped_by_one_bit_is_an_integrity_error() -> None:
    tampered = bytearray(A73_ANSWER)
    tampered[-3] ^= 0x01  # last MAC byte
    session = a73_session()
    with pytest.raises(DesfireError, match="integrity error") as caught:
        get_card_uid(card((A73_COMMAND, bytes(tampered))), session)
    assert caught.value.status == 0x1E
    assert session.ended
    with pytest.raises(DesfireError, match="session ended"):
        get_card_uid(card(), session)


def test_a_replayed_answer_fails_the_next_command() -> None:
    session = a73_session()
    get_card_uid(card((A73_COMMAND, A73_ANSWER)), session)
    with pytest.raises(DesfireError, match="integrity error"):
        get_card_uid(card((None, A73_ANSWER)), session)  # MACed with CmdCtr 1, now 2 is due


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (h("01020304") + OK, "too short for its 8-byte MAC"),
        (h("91AE"), "GetCardUID failed: 91 AE"),
        (maced_answer(a73_session(), A73_ANSWER[:8], 0) + OK, "whole 16-byte blocks"),
    ],
)
def test_get_card_uid_refuses_garbled_answers(answer: bytes, message: str) -> None:
    session = a73_session()
    with pytest.raises(DesfireError, match=message):
        get_card_uid(card((None, answer)), session)
    assert session.ended


STAFF = bytes(range(0x40, 0x60))  # 32 bytes of a staff identity file
BD_HEADER = h("01000000200000")  # file 01, offset 0, length 32 (little-endian)


def test_read_data_in_mac_mode() -> None:
    session = a73_session()
    session.counter = 3
    transmit = card((read_command(session, BD_HEADER, 3), maced_answer(session, STAFF, 3) + OK))
    assert read_data(transmit, session, 1, 32, mode="mac") == STAFF
    assert session.counter == 4


def test_read_data_sends_offset_and_length_little_endian() -> None:
    session = a73_session()
    header = h("1F020100100000")  # file 31, offset 0x000102, length 16
    transmit = card((read_command(session, header, 0), maced_answer(session, STAFF[:16], 0) + OK))
    assert read_data(transmit, session, 31, 16, offset=0x102, mode="mac") == STAFF[:16]


def test_read_data_collects_additional_frames() -> None:
    session = a73_session()
    answer = maced_answer(session, STAFF, 0)
    transmit = card(
        (read_command(session, BD_HEADER, 0), answer[:20] + MORE),
        (h("90AF000000"), answer[20:] + OK),
    )
    assert read_data(transmit, session, 1, 32, mode="mac") == STAFF


def full_ciphertext(plain: bytes, counter: int) -> bytes:
    ivr_input = h("5AA5") + A73_TI + (counter + 1).to_bytes(2, "little") + bytes(8)
    iv = Cipher(algorithms.AES(A73_ENC), modes.ECB()).encryptor().update(ivr_input)
    encryptor = Cipher(algorithms.AES(A73_ENC), modes.CBC(iv)).encryptor()
    return encryptor.update(plain) + encryptor.finalize()


def test_read_data_in_full_mode() -> None:
    session = a73_session()
    session.counter = 2
    ciphertext = full_ciphertext(STAFF + h("80") + bytes(15), 2)  # aligned: a whole pad block
    transmit = card(
        (read_command(session, BD_HEADER, 2), maced_answer(session, ciphertext, 2) + OK)
    )
    assert read_data(transmit, session, 1, 32, mode="full") == STAFF
    assert session.counter == 3


def test_read_data_in_full_mode_refuses_an_answer_without_padding() -> None:
    session = a73_session()
    ciphertext = full_ciphertext(STAFF, 0)  # MACed correctly, decrypts to data ending in 5F
    transmit = card((None, maced_answer(session, ciphertext, 0) + OK))
    with pytest.raises(DesfireError, match="no padding"):
        read_data(transmit, session, 1, 32, mode="full")


def test_read_data_refuses_a_length_other_than_asked() -> None:
    session = a73_session()
    transmit = card((None, maced_answer(session, STAFF[:31], 0) + OK))
    with pytest.raises(DesfireError, match="31 data bytes; 32 were asked for"):
        read_data(transmit, session, 1, 32, mode="mac")


def test_read_data_permission_denied_ends_the_session() -> None:
    session = a73_session()
    with pytest.raises(DesfireError, match="ReadData failed: 91 9D permission denied"):
        read_data(card((None, h("919D"))), session, 1, 32, mode="mac")
    assert session.ended


def test_read_identity_selects_authenticates_and_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "urandom", lambda n: A66_RND_A[:n])
    session = Session(enc_key=A66_ENC, mac_key=A66_MAC, ti=A66_TI)
    transmit = card(
        (h("905A000003E011CA00"), OK),
        (A66_C1, A66_R1 + MORE),
        (A66_C2, A66_R2 + OK),
        (read_command(session, BD_HEADER, 0), maced_answer(session, STAFF, 0) + OK),
    )
    identity = read_identity(
        transmit, aid=h("E011CA"), key_no=0, key=A66_KEY, file_no=1, length=32, mode="mac"
    )
    assert identity == STAFF


def test_session_repr_shows_no_key_material() -> None:
    text = repr(a73_session())
    assert A73_ENC.hex() not in text.lower()
    assert A73_MAC.hex() not in text.lower()
    assert A73_TI.hex() not in text.lower()
    assert "counter=0" in text
