"""ATR and GET DATA parsing: hex fixtures, one comment per frame."""

from __future__ import annotations

import pytest

from edge.errors import EdgeError
from edge.readers.apdu import (
    GET_UID,
    CardResponseError,
    card_identity,
    technology_from_atr,
    uid_from_response,
)

h = bytes.fromhex

# ATRs made up by PC/SC readers (part 3).
FELICA = h("3B8F8001804F0CA00000030611003B0000000042")  # FeliCa, name 003B (real reader)
MIFARE_1K = h("3B8F8001804F0CA000000306030001000000006A")  # ISO 14443 A-3, MIFARE 1K (real)
MIFARE_4K = h("3B8F8001804F0CA0000003060300020000000069")  # ISO 14443 A-3, MIFARE 4K
TYPE_B_MEMORY = h("3B8F8001804F0CA000000306070000000000006F")  # ISO 14443 B-3, no name
ICODE_SLI = h("3B8F8001804F0CA0000003060B00140000000077")  # ISO 15693-3, I·CODE SLI
DESFIRE = h("3B8180018080")  # ISO 14443-4 type A, 1 historical byte (from the ATS)
ISO_DEP_B = h("3B88800100000000778181007E")  # ISO 14443-4, 8 historical bytes (ATQB-shaped)
BAD_TCK = h("3B8F8001804F0CA00000030611003B0000000043")  # FeliCa with the TCK off by one
CONTACT = h("3B021450")  # a contact card (Schlumberger Multiflex 3k), T=0, no TCK
TRUNCATED = h("3B8F8001804F0CA0000003061100")  # FeliCa ATR cut short

IDM = h("012E4CD8A1B2C3D4")  # FeliCa IDm, 8 bytes
UID7 = h("04A2B3C4D5E680")  # ISO 14443 A double-size UID


def test_get_uid_is_get_data_p1_zero() -> None:
    assert h("FFCA000000") == GET_UID  # CLA FF, INS CA, P1 00 (UID), P2 00, Le 00


@pytest.mark.parametrize(
    ("atr", "technology"),
    [
        (FELICA, "felica"),
        (MIFARE_1K, "iso14443a"),
        (MIFARE_4K, "iso14443a"),
        (TYPE_B_MEMORY, "iso14443b"),
    ],
)
def test_storage_card_atrs(atr: bytes, technology: str) -> None:
    assert technology_from_atr(atr) == technology


def test_iso_dep_type_a_is_told_by_the_uid_or_the_historical_bytes() -> None:
    assert technology_from_atr(DESFIRE, uid_length=7) == "iso14443a"
    assert technology_from_atr(DESFIRE, uid_length=4) == "iso14443a"  # B would have 8 bytes
    assert technology_from_atr(ISO_DEP_B, uid_length=7) == "iso14443a"  # a PUPI is 4 bytes


@pytest.mark.parametrize("uid_length", [None, 4])
def test_iso_dep_that_could_be_a_or_b_is_refused(uid_length: int | None) -> None:
    with pytest.raises(CardResponseError, match="does not tell type A from type B"):
        technology_from_atr(ISO_DEP_B, uid_length=uid_length)


@pytest.mark.parametrize(
    ("atr", "message"),
    [
        (BAD_TCK, r"check byte \(TCK\) is wrong: bytes XOR to 0x01"),
        (CONTACT, "not a contactless card's"),
        (TRUNCATED, "announces 15 historical bytes; expected 20 bytes"),
        (ICODE_SLI, "standard 0x0B"),
        (b"", "0-byte ATR"),
    ],
)
def test_atrs_we_refuse(atr: bytes, message: str) -> None:
    with pytest.raises(CardResponseError, match=message):
        technology_from_atr(atr)


@pytest.mark.parametrize(
    ("response", "uid"),
    [
        (h("012E4CD8A1B2C3D49000"), IDM),  # FeliCa IDm + 90 00
        (h("04A2B3C4D5E6809000"), UID7),  # 7-byte UID + 90 00
        (h("DEADBEEF9000"), h("DEADBEEF")),  # 4-byte UID (or PUPI) + 90 00
        (h("0102030405060708090A9000"), h("0102030405060708090A")),  # triple-size UID
    ],
)
def test_uid_from_good_responses(response: bytes, uid: bytes) -> None:
    assert uid_from_response(response) == uid


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (b"", "answered 0 byte"),  # nothing: vpcd/pcscd pass an empty answer as success
        (h("90"), "answered 1 byte"),  # half a status word
        (h("9000"), "90 00 with no identifier"),  # success, no data
        (h("6A81"), "status word 6A 81 "),  # function not supported
        (h("012E4CD8A1B2C3D46A81"), r"6A 81 \(8 data bytes\)"),  # data but a failure status
        (h("6300"), "status word 63 00"),  # no UID available
        (h("0102039000"), "3-byte identifier"),  # implausible length
        (h("0102030405069000"), "6-byte identifier"),  # implausible length
    ],
)
def test_uid_from_bad_responses(response: bytes, message: str) -> None:
    with pytest.raises(CardResponseError, match=message) as caught:
        uid_from_response(response)
    data = response[:-2]
    if data:  # the message never repeats the card's bytes
        assert data.hex() not in str(caught.value).lower()


def test_card_identity_checks_uid_length_against_technology() -> None:
    assert card_identity(FELICA, IDM + h("9000")) == ("felica", IDM)
    assert card_identity(MIFARE_1K, UID7 + h("9000")) == ("iso14443a", UID7)
    with pytest.raises(CardResponseError, match="felica card answered a 7-byte identifier"):
        card_identity(FELICA, UID7 + h("9000"))
    with pytest.raises(CardResponseError, match="iso14443b card answered a 8-byte"):
        card_identity(TYPE_B_MEMORY, IDM + h("9000"))


def test_errors_are_ours_and_value_errors() -> None:
    with pytest.raises(CardResponseError) as caught:
        uid_from_response(b"")
    assert isinstance(caught.value, EdgeError)
    assert isinstance(caught.value, ValueError)
