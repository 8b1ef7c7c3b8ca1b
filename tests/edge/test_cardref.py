"""Card references: stable, keyed, canonical, and never echoing the raw identifier."""

from __future__ import annotations

import pytest

from edge.cardref import CardIdError, card_reference, normalise

KEY = bytes(range(32))


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
