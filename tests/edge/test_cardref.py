"""Card references: stable, keyed, memory-hard, canonical, never echoing the raw identifier."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from edge.cardref import CardIdError, card_reference, card_references, normalise

KEY = bytes(range(32))
# scrypt(b"felica:012E4CD8A1B2C3D4", salt=HMAC-SHA256(KEY, b"card-reference"), N=256, r=10,
# p=1, dklen=32), cross-checked with cryptography's Scrypt.
KNOWN = "183d5a493227b20f22cc7e8d7d478ed5d00f0e98841743495a037b0b763711c3"


def test_known_answer() -> None:
    assert card_reference(KEY, "felica", "012E4CD8A1B2C3D4") == KNOWN
    assert card_reference(KEY, "iso14443a", "04A2B3C4D5E680") == (
        "3120ddb3c356354317490601a1cc2d6d3d9a16cdb66b6d43835280bad1e8fd0d"
    )


def test_reference_is_not_the_plain_hmac() -> None:
    plain = hmac.new(KEY, b"felica:012E4CD8A1B2C3D4", hashlib.sha256).hexdigest()
    assert card_reference(KEY, "felica", "012E4CD8A1B2C3D4") != plain


def test_another_site_key_gives_another_reference() -> None:
    other = bytes(range(1, 33))
    assert card_reference(other, "felica", "012E4CD8A1B2C3D4") != KNOWN


def test_spaces_and_case_do_not_change_the_reference() -> None:
    for typed in ("01 2e 4c d8 a1 b2 c3 d4", "01:2E:4C:D8:A1:B2:C3:D4", "012e4cd8-a1b2c3d4"):
        assert card_reference(KEY, " FeliCa ", typed) == KNOWN


def test_many_references_match_one_by_one_and_keep_their_order() -> None:
    cards = [("felica", f"0114{n:012X}") for n in range(600)] + [("felica", "012E4CD8A1B2C3D4")]
    refs = card_references(KEY, cards, workers=2)
    assert refs[-1] == KNOWN
    assert refs[:600:97] == [card_reference(KEY, t, c) for t, c in cards[:600:97]]
    assert len(set(refs)) == len(refs)


def test_many_references_refuse_a_bad_id_and_a_short_key() -> None:
    with pytest.raises(CardIdError, match="16 hexadecimal digits"):
        card_references(KEY, [("felica", f"0114{n:012X}") for n in range(300)] + [("felica", "01")])
    with pytest.raises(CardIdError, match="at least 16 bytes"):
        card_references(b"short", [])


def test_reference_is_keyed_and_canonical() -> None:
    ref = card_reference(KEY, "FeliCa", "01 2e 4c d8 a1 b2 c3 d4")
    assert ref == card_reference(KEY, "felica", "012E4CD8A1B2C3D4")
    assert len(ref) == 64
    assert ref != card_reference(bytes(32), "felica", "012E4CD8A1B2C3D4")
    assert ref != card_reference(KEY, "iso14443a", "012E4CD8A1B2C3D4"[:14])


def test_normalise_known_lengths() -> None:
    assert normalise("iso14443a", "04:a2:b3:c4:d5:e6:80") == "iso14443a:04A2B3C4D5E680"


@pytest.mark.parametrize(
    ("tech", "ident", "words"),
    [
        ("felica", "012E4CD8", "16 hexadecimal digits"),
        ("iso14443a", "XYZ", "8 or 14 or 20"),
        ("mifare", "04A2B3C4", "use one of felica"),
    ],
)
def test_bad_ids_name_the_fix_but_not_the_id(tech: str, ident: str, words: str) -> None:
    with pytest.raises(CardIdError, match=words) as info:
        card_reference(KEY, tech, ident)
    assert ident not in str(info.value) or tech == "mifare"


def test_short_key_refused() -> None:
    with pytest.raises(CardIdError, match="at least 16 bytes"):
        card_reference(b"short", "felica", "012E4CD8A1B2C3D4")
