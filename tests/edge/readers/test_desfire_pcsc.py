"""DESFire proofs through the real PC/SC stack: the reader adapter against the simulator's card.

The card (simulator/desfire_card.py) and the reader's protocol (edge/readers/desfire.py) were
written apart, each from NXP's documents; here they meet through pyscard, pcscd and vpcd.
"""

from __future__ import annotations

import logging
import queue
from collections.abc import Callable, Iterator
from functools import partial

import pytest

from edge.card_layout import DESFIRE_AID, DESFIRE_FILE
from edge.cardref import card_reference
from edge.core.events import CardPresented, Event
from simulator.desfire_card import Application, DataFile, DesfireCard, Exchange
from simulator.vpcd import Applet
from tests.edge.readers.pcsc_stack import ISO14443A_ATR, READER, PcscStack

pytest.importorskip("smartcard", reason="pyscard is not installed: pip install -e '.[pcsc]'")
from edge.readers.pcsc import PcscCardReader

pytestmark = pytest.mark.services  # pcscd with vpcd

SITE_KEY = bytes(range(32))
UID = bytes.fromhex("04A2B3C4D5E680")
REF = card_reference(SITE_KEY, "iso14443a", UID.hex().upper())
APP_MASTER = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
GATE_KEY = bytes.fromhex("A8DD63A3B89D54B37CA802473FDA9175")
DOOR_KEY = bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0")


class Keys:
    """This device's keys: the gate's read key (key 1) for the one enrolled card."""

    desfire_key_no = 1

    def __init__(self, keys: dict[str, bytes]) -> None:
        self.keys = keys
        self.asked: list[str] = []

    def __call__(self, ref: str) -> bytes | None:
        self.asked.append(ref)
        return self.keys.get(ref)


def staff_card(file_data: bytes = bytes.fromhex(REF), gate_key: bytes = GATE_KEY) -> DesfireCard:
    application = Application(
        keys={0: APP_MASTER, 1: gate_key, 2: DOOR_KEY},
        files={DESFIRE_FILE: DataFile(file_data, "mac", frozenset({1, 2}))},
    )
    return DesfireCard(UID, {DESFIRE_AID: application})


class Replay:
    """A clone that plays back a genuine card's answers, in order, to whatever is asked."""

    def __init__(self, recorded: list[Exchange]) -> None:
        self.answers = [e.response for e in recorded]

    def answer(self, apdu: bytes) -> bytes:
        return self.answers.pop(0) if self.answers else bytes.fromhex("91CA")

    def reset(self) -> None:
        """Nothing to forget: a recording has no state."""


Tap = Callable[[Applet | None], CardPresented]


@pytest.fixture
def tap(pcsc: PcscStack) -> Iterator[Tap]:
    """Present a card with the UID of the enrolled one to a gate reader; return its read."""
    keys = Keys({REF: GATE_KEY})
    reader = PcscCardReader(
        "gate-in", READER, partial(card_reference, SITE_KEY), debounce_s=0, card_keys=keys
    )
    events: queue.Queue[Event] = queue.Queue()
    reader.start(events.put)
    assert reader.wait_for(lambda: reader.online is True), "the reader never found the PCD"

    def present(applet: Applet | None) -> CardPresented:
        card = pcsc.card(ISO14443A_ATR, UID, applet=applet)
        card.insert()
        try:
            event = events.get(timeout=10)
        except queue.Empty:
            pytest.fail("no card read within 10 s")
        card.remove()
        pcsc.wait_reader(present=False)
        assert isinstance(event, CardPresented)
        assert keys.asked[-1] == REF
        return event

    yield present
    reader.close()


def test_the_genuine_card_proves_itself(tap: Tap, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="edge.readers")
    card = staff_card()
    event = tap(card)
    assert event == CardPresented("gate-in", REF, authenticated=True)
    commands = [e.command[1] for e in card.history]
    assert commands == [0x5A, 0x71, 0xAF, 0xBD]  # select, authenticate (2 parts), read
    text = caplog.text.upper()
    assert UID.hex().upper() not in text
    assert GATE_KEY.hex().upper() not in text


def test_a_card_with_another_key_is_not_proven(tap: Tap) -> None:
    event = tap(staff_card(gate_key=DOOR_KEY))
    assert event == CardPresented("gate-in", REF, authenticated=False)


def test_a_uid_only_clone_is_not_proven(tap: Tap) -> None:
    assert tap(None) == CardPresented("gate-in", REF, authenticated=False)


def test_a_card_holding_another_cards_identity_is_not_proven(tap: Tap) -> None:
    other = bytes.fromhex(card_reference(SITE_KEY, "iso14443a", "04000000000001"))
    assert tap(staff_card(file_data=other)).authenticated is False


def test_a_replayed_transcript_of_the_genuine_card_is_not_proven(tap: Tap) -> None:
    genuine = staff_card()
    assert tap(genuine).authenticated is True
    assert tap(Replay(genuine.history)).authenticated is False
