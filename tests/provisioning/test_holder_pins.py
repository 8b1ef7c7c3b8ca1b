"""The desk's PIN rules: weak PINs refused, PIN and duress PIN kept apart under one salt."""

from __future__ import annotations

import pytest

from edge.core.events import PinOutcome
from edge.pin_hash import check_pin, hash_pin
from provisioning.holder_pins import HolderPinError, new_pin_hash, weakness


@pytest.mark.parametrize(
    ("pin", "why"),
    [
        ("0000", "one digit repeated"),
        ("77777777", "one digit repeated"),
        ("1234", "a run of digits"),
        ("12345678", "a run of digits"),
        ("9876", "a run of digits"),
        ("7890", "a run of digits"),  # runs wrap round 9 -> 0 too
        ("1212", "one pair of digits repeated"),
        ("696969", "one pair of digits repeated"),
        ("2580", "one of the most used PINs"),
        ("1004", "one of the most used PINs"),
        ("4826", None),
        ("1357", None),
        ("12341234", None),
        ("90210", None),
    ],
)
def test_weak_pins(pin: str, why: str | None) -> None:
    found = weakness(pin)
    assert (found is None) == (why is None)
    if why is not None:
        assert found is not None
        assert why in found


def test_a_new_pin_keeps_the_duress_pin_under_its_salt() -> None:
    current = hash_pin("4826", "7391")
    changed = new_pin_hash(current, "5938", duress=False)
    assert changed.salt == current.salt
    assert changed.duress == current.duress
    assert check_pin(changed, "5938") is PinOutcome.RIGHT
    assert check_pin(changed, "7391") is PinOutcome.DURESS
    assert check_pin(changed, "4826") is PinOutcome.WRONG


def test_a_pin_without_a_duress_pin_gets_a_fresh_salt() -> None:
    current = hash_pin("4826")
    assert new_pin_hash(current, "5938", duress=False).salt != current.salt
    assert new_pin_hash(None, "5938", duress=False).duress is None


@pytest.mark.parametrize(
    ("current", "pin", "duress", "words"),
    [
        (hash_pin("4826", "7391"), "7391", False, "must differ from the duress PIN"),
        (hash_pin("4826", "7391"), "4826", True, "must differ from the PIN"),
        (None, "7391", True, "set the PIN first"),
        (None, "48a6", False, "4 to 8 digits"),
        (None, "1111", True, "duress PIN is too easy to guess"),
    ],
)
def test_refusals_name_the_rule_not_the_pin(
    current: object, pin: str, duress: bool, words: str
) -> None:
    with pytest.raises(HolderPinError) as refused:
        new_pin_hash(current, pin, duress=duress)  # type: ignore[arg-type]
    assert words in str(refused.value)
    assert pin not in str(refused.value)
