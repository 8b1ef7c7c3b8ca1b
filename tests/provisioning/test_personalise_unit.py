"""Lite-S personalisation and proof in one process: nfcpy reader code against the simulated card.

nfcpy's own `FelicaLiteS` (the reader side) sends its frames straight into nfcpy's
`Type3TagEmulation` serving `simulator.nfc_card._LiteS` (the card side): no socket, no
subprocess. The card's cryptography is pinned by nfcpy's known-answer vectors first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("nfc", reason="nfcpy is not installed: pip install -e '.[nfc]'")
import nfc.clf
import nfc.tag
import nfc.tag.tt3

from edge.readers.nfc import LiteSError, lite_s_proves
from provisioning.card_keys import lite_s_key
from provisioning.personalise import PersonaliseError, ck_block, locked_mc, personalise_tag
from simulator.nfc_card import _LiteS

IDM = bytes.fromhex("012E4CD8A1B2C3D4")
LITE_S_PMM = bytes.fromhex("00F1000000FFFF00")  # IC code F1h: FeliCa Lite-S (RC-S966)
STANDARD_PMM = bytes.fromhex("03014B024F4993FF")  # IC code 01h: FeliCa Standard
MASTER = bytes(range(32))

# nfcpy 1.0.4 tests/test_tag_tt3_sony.py, Lite-S authentication with os.urandom patched to
# return 00 01 .. 0F: CK "0123456789abcdef" (ASCII), RC = 000102..0F.
KAT_CK = b"0123456789abcdef"
KAT_RC_BLOCK = bytes.fromhex("07060504030201000F0E0D0C0B0A0908")  # block 0x80 as written
KAT_CK_BLOCK = bytes.fromhex("37363534333231306665646362613938")  # block 0x87 as written


class Field:
    """One card in one reader's field: nfcpy's exchange() goes straight to the emulated card."""

    def __init__(self, pmm: bytes, lite: _LiteS | None, fail_after: int | None = None) -> None:
        sensf_res = b"\x01" + IDM + pmm + b"\x12\xfc"
        local = nfc.clf.LocalTarget("212F", sensf_res=sensf_res, tt3_cmd=b"\x00\xff\xff\x00\x00")
        self.card = nfc.tag.tt3.Type3TagEmulation(self, local)
        if lite is not None:
            lite.power_on()
            for service in (0x0009, 0x000B):
                self.card.add_service(service, lite.read, lite.write)
        self.fail_after = fail_after
        self.tag: Any = nfc.tag.activate(self, nfc.clf.RemoteTarget("212F", sensf_res=sensf_res))

    def exchange(self, data: bytes, timeout: float) -> bytearray:
        if self.fail_after is not None:
            if self.fail_after == 0:
                raise nfc.clf.TimeoutError("the card left")
            self.fail_after -= 1
        response = self.card.process_command(bytearray(data))
        if response is None:
            raise nfc.clf.TimeoutError("no answer")
        return bytearray(response)


def blank() -> _LiteS:
    return _LiteS(IDM)


def personalised(key: bytes) -> _LiteS:
    card = _LiteS(IDM)
    card.personalise(key)
    return card


@pytest.fixture
def fixed_rc(monkeypatch: pytest.MonkeyPatch) -> None:
    """nfcpy's challenge as its own tests fix it: os.urandom gives 00 01 .. 0F."""
    monkeypatch.setattr(os, "urandom", lambda n: bytes(range(n)))


@pytest.mark.parametrize(
    ("id_block", "mac"),
    [
        (bytes(16), "CC97F1B97B8BBC79"),
        (bytes.fromhex("0102030405060708") + bytes(8), "91AEC5B6D9B3B12D"),
    ],
)
def test_the_emulated_card_macs_its_id_block_as_nfcpy_expects(id_block: bytes, mac: str) -> None:
    card = _LiteS(id_block[:8])
    card.personalise(KAT_CK)
    assert card.write(0x80, KAT_RC_BLOCK, True, True)
    assert card.read(0x82, True, False) == id_block
    assert card.read(0x81, False, True) == bytes.fromhex(mac) + bytes(8)


def test_the_emulated_card_checks_mac_a_as_nfcpy_writes_it() -> None:
    card = _LiteS(bytes(8))
    card.personalise(KAT_CK)
    card.wcnt = int.from_bytes(bytes.fromhex("00FEFF"), "little")
    card.write(0x80, KAT_RC_BLOCK, True, True)
    mac_a_block = bytes.fromhex("17C19E3BBDC3E8BD00FEFF0000000000")
    wrong = bytes.fromhex("17C19E3BBDC3E8BE00FEFF0000000000")

    assert card.write(0x92, b"\x01" + bytes(15), True, False)
    assert not card.write(0x91, wrong, False, True)
    assert card.read(0x92, True, True) == bytes(16)  # EXT_AUTH still 0
    assert card.write(0x92, b"\x01" + bytes(15), True, False)
    assert card.write(0x91, mac_a_block, False, True)
    assert card.read(0x92, True, False) == b"\x01" + bytes(15)
    assert card.read(0x81, False, True) == bytes.fromhex("BD73EB7294A00279") + bytes(8)
    assert card.wcnt == 0xFFFE01


def test_nfcpy_authenticates_against_the_emulated_card_with_its_vectors(fixed_rc: None) -> None:
    card = personalised(KAT_CK)
    written: list[tuple[int, bytes]] = []
    write = card.write

    def recording(block: int, data: bytes, wb: bool, we: bool) -> bool:
        written.append((block, bytes(data)))
        return write(block, data, wb, we)

    card.write = recording  # type: ignore[method-assign]
    field = Field(LITE_S_PMM, card)
    assert field.tag.authenticate(KAT_CK)
    assert written[0] == (0x80, KAT_RC_BLOCK)


def test_ck_block_reverses_each_half_as_nfcpy_protect_does() -> None:
    assert ck_block(KAT_CK) == KAT_CK_BLOCK
    with pytest.raises(ValueError, match="16 bytes"):
        ck_block(KAT_CK[:15])


def test_locked_mc_is_what_nfcpy_protect_writes() -> None:
    # nfcpy FelicaLiteS._protect, protect_from=0: mc[2]=00, mc[5]=01, mc[8:10]=mc[10:12]=FF3F
    factory = bytes.fromhex("FFFFFF00070000000000000000000000")
    assert locked_mc(factory) == bytes.fromhex("FFFF000007010000FF3FFF3F00000000")


def test_personalising_a_blank_card_writes_its_diversified_key_and_locks_it() -> None:
    card = blank()
    assert personalise_tag(Field(LITE_S_PMM, card).tag, MASTER) == IDM
    key = lite_s_key(MASTER, IDM)
    assert card.key == key
    assert card.blocks[0x86][:2] == b"\x01\x00"  # card key version 0 -> 1
    assert card.blocks[0x88] == locked_mc(bytes.fromhex("FFFFFF00070000000000000000000000"))
    assert lite_s_proves(Field(LITE_S_PMM, card).tag, key)
    assert not lite_s_proves(Field(LITE_S_PMM, card).tag, lite_s_key(bytes(32), IDM))
    with pytest.raises(nfc.tag.TagCommandError):  # the key cannot be rewritten plainly now
        Field(LITE_S_PMM, card).tag.write_without_mac(bytes(16), 0x87)
    assert card.key == key


@pytest.mark.parametrize(
    ("master", "says"),
    [(MASTER, "already personalised with this site's key"), (bytes(32), "not with this site")],
)
def test_a_personalised_card_is_refused(master: bytes, says: str) -> None:
    card = personalised(lite_s_key(MASTER, IDM))
    with pytest.raises(PersonaliseError, match=says):
        personalise_tag(Field(LITE_S_PMM, card).tag, master)
    assert card.key == lite_s_key(MASTER, IDM)
    assert card.blocks[0x86][:2] == b"\x01\x00"


def test_a_card_that_is_not_lite_s_is_refused() -> None:
    with pytest.raises(PersonaliseError, match="not a FeliCa Lite-S") as caught:
        personalise_tag(Field(STANDARD_PMM, None).tag, MASTER)
    assert IDM.hex() not in str(caught.value).lower()


@pytest.mark.parametrize("exchanges", [1, 3, 5, 12])
def test_a_card_that_leaves_mid_way_is_a_clear_error_and_stays_blank_or_proves(
    exchanges: int,
) -> None:
    card = blank()
    with pytest.raises(PersonaliseError, match="left or answered wrongly"):
        personalise_tag(Field(LITE_S_PMM, card, fail_after=exchanges).tag, MASTER)
    if card.blocks[0x88][2] == 0xFF:  # not locked: personalising again works
        assert personalise_tag(Field(LITE_S_PMM, card).tag, MASTER) == IDM
    assert lite_s_proves(Field(LITE_S_PMM, card).tag, lite_s_key(MASTER, IDM))


CloneCase = Callable[[], tuple[bytes, _LiteS | None]]


@pytest.mark.parametrize(
    "make",
    [
        lambda: (LITE_S_PMM, blank()),  # a blank Lite-S with the same IDm (factory key)
        lambda: (LITE_S_PMM, personalised(lite_s_key(bytes(32), IDM))),  # another site's key
        lambda: (LITE_S_PMM, None),  # a Lite-S PMm and IDm, nothing behind them
    ],
    ids=["blank-lite-s", "other-key", "id-only"],
)
def test_a_clone_does_not_prove_the_key(make: CloneCase) -> None:
    pmm, card = make()
    try:
        proved = lite_s_proves(Field(pmm, card).tag, lite_s_key(MASTER, IDM))
    except nfc.tag.TagCommandError:
        proved = False  # the reader treats a refused command as not authenticated
    assert not proved


def test_the_id_block_must_carry_the_polled_idm() -> None:
    key = lite_s_key(MASTER, IDM)
    card = personalised(key)
    card.blocks[0x82] = bytes.fromhex("0102030405060708") + bytes(8)  # holds key, other id
    assert not lite_s_proves(Field(LITE_S_PMM, card).tag, key)


def test_a_key_that_is_not_16_bytes_is_refused() -> None:
    with pytest.raises(LiteSError, match="16 bytes, not 32"):
        lite_s_proves(Field(LITE_S_PMM, blank()).tag, MASTER)


def test_the_card_state_survives_a_dump_and_load() -> None:
    card = blank()
    personalise_tag(Field(LITE_S_PMM, card).tag, MASTER)
    again = _LiteS(IDM)
    again.load(card.dump())
    assert again.dump() == card.dump()
    assert lite_s_proves(Field(LITE_S_PMM, again).tag, lite_s_key(MASTER, IDM))
