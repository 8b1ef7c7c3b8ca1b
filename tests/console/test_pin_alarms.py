"""The console knows the PIN alarms and reasons: door roles may raise them, guards read them."""

from __future__ import annotations

import pytest

from console.alarms import ONE_SHOT
from console.claims import ROLE_EVENTS
from console.i18n import code


@pytest.mark.parametrize("alarm", ["duress", "pin_attempts_exceeded"])
def test_door_roles_raise_the_pin_alarms_and_guards_acknowledge_them(alarm: str) -> None:
    assert alarm in ROLE_EVENTS["gate"]["alarm"]
    assert alarm in ROLE_EVENTS["door"]["alarm"]
    assert alarm not in ROLE_EVENTS["sensor-node"].get("alarm", frozenset())
    assert alarm in ONE_SHOT  # raised once, never cleared by the device


@pytest.mark.parametrize(
    ("name", "ja", "en"),
    [
        ("duress", "脅迫コード (duress)", "Duress code"),
        ("pin_attempts_exceeded", "暗証番号の誤りが続いた", "Too many wrong PINs"),
        ("wrong_pin", "暗証番号の誤り", "wrong PIN"),
        ("pin_timeout", "暗証番号の入力なし", "PIN not keyed in time"),
        ("no_pin", "暗証番号の未登録", "no PIN enrolled"),
    ],
)
def test_pin_words_in_both_languages(name: str, ja: str, en: str) -> None:
    assert (code(name, "ja"), code(name, "en")) == (ja, en)
