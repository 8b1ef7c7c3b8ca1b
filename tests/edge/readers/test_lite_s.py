"""FeliCa Lite-S over nfcpy's udp driver: the reader's proof, and personalisation at the desk.

Every card is `simulator.nfc_card` in its own process on 127.0.0.1 (no pcscd, no broker).
The reader gets only each card's own key through its `card_key` lookup, never the master.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.cardref import card_reference
from provisioning.card_keys import lite_s_key
from tests.edge.readers.nfc_fixtures import EmulatedCard, Recorder, free_udp_port

pytest.importorskip("nfc", reason="nfcpy is not installed: pip install -e '.[nfc]'")
from edge.readers.nfc import NfcCardReader
from provisioning.personalise import PersonaliseError, personalise_lite_s

pytestmark = pytest.mark.services  # starts an emulated card

SITE_KEY = b"city-hall-test-site-key-32-bytes"
IDM = "012E4CD8A1B2C3D4"
LITE_S_PMM = "00F1000000FFFF00"  # IC F1h (Lite-S); slow read/write timing: a busy host keeps up
STANDARD_PMM = "03014B024F4993FF"  # IC 01h: FeliCa Standard
MASTER = bytes(range(32))
OTHER_MASTER = bytes(range(1, 33))


def ref(raw_id: str, technology: str = "felica") -> str:
    return card_reference(SITE_KEY, technology, raw_id)


def enrolled(key: bytes | None) -> Callable[[str], bytes | None]:
    """The device's lookup: IDM's reference enrolled as a Lite-S card with `key`."""
    return lambda card_ref: key if card_ref == ref(IDM) else None


@pytest.fixture
def port() -> int:
    return free_udp_port()


@pytest.fixture
def make_reader(port: int) -> Iterator[Callable[..., NfcCardReader]]:
    readers: list[NfcCardReader] = []

    def make(**kwargs: Any) -> NfcCardReader:
        path = f"udp:127.0.0.1:{port}"
        reader = NfcCardReader(
            "door-1", path, lambda tech, raw: ref(raw, tech), targets=("212F",), **kwargs
        )
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        reader.close()


def tap_authenticated(port: int, reader: NfcCardReader, *card_args: str) -> list[bool]:
    """Present a card until the reader has had it; return `authenticated` of each tap."""
    events = Recorder()
    reader.start(events)
    with EmulatedCard(port, "--idm", IDM, *card_args) as card:
        assert reader.wait_for(lambda: reader.has_card, timeout_s=10)
        card.remove()
        assert reader.wait_for(lambda: not reader.has_card, timeout_s=10)
    assert {t.card_ref for t in events.taps} == {ref(IDM)}
    return [t.authenticated for t in events.taps]


@pytest.mark.parametrize(
    ("lookup_key", "card_args", "authenticated"),
    [
        (lite_s_key(MASTER, bytes.fromhex(IDM)), ("--card-key",), True),
        (lite_s_key(OTHER_MASTER, bytes.fromhex(IDM)), ("--card-key",), False),
        (None, ("--card-key",), False),  # not enrolled here as a Lite-S card
        (lite_s_key(MASTER, bytes.fromhex(IDM)), (), False),  # blank Lite-S, same IDm
    ],
    ids=["right-key", "wrong-key", "not-enrolled", "blank-clone"],
)
def test_a_lite_s_card_is_authenticated_only_with_its_own_key(
    port: int,
    make_reader: Callable[..., NfcCardReader],
    lookup_key: bytes | None,
    card_args: tuple[str, ...],
    authenticated: bool,
) -> None:
    if card_args:  # the card holds the key provisioning gives it
        card_args = (*card_args, lite_s_key(MASTER, bytes.fromhex(IDM)).hex())
    reader = make_reader(card_key=enrolled(lookup_key))
    assert tap_authenticated(port, reader, "--pmm", LITE_S_PMM, *card_args) == [authenticated]


def test_a_plain_felica_card_with_the_same_idm_is_not_authenticated(
    port: int, make_reader: Callable[..., NfcCardReader]
) -> None:
    looked_up: list[str] = []

    def lookup(card_ref: str) -> bytes | None:
        looked_up.append(card_ref)
        return lite_s_key(MASTER, bytes.fromhex(IDM))

    reader = make_reader(card_key=lookup)
    assert tap_authenticated(port, reader, "--pmm", STANDARD_PMM) == [False]
    assert looked_up == []  # not a Lite-S: nothing to prove, no key asked for


def test_a_failing_lookup_denies_authentication(
    port: int, make_reader: Callable[..., NfcCardReader]
) -> None:
    def lookup(card_ref: str) -> bytes | None:
        raise RuntimeError("snapshot gone")

    reader = make_reader(card_key=lookup)
    key = lite_s_key(MASTER, bytes.fromhex(IDM)).hex()
    assert tap_authenticated(port, reader, "--pmm", LITE_S_PMM, "--card-key", key) == [False]


def test_personalising_a_blank_card_gives_it_its_key_and_the_reader_proves_it(
    port: int, make_reader: Callable[..., NfcCardReader], tmp_path: Path
) -> None:
    state = tmp_path / "card.json"
    key = lite_s_key(MASTER, bytes.fromhex(IDM))
    with EmulatedCard(port, "--idm", IDM, "--pmm", LITE_S_PMM, "--state", str(state)) as card:
        idm = personalise_lite_s(f"udp:127.0.0.1:{port}", MASTER, timeout_s=10)
        card.remove()
    assert idm == bytes.fromhex(IDM)
    saved = json.loads(state.read_text())
    assert saved["card_key"] == key.hex().upper()
    assert saved["blocks"]["86"][:4] == "0100"  # card key version 1
    assert saved["blocks"]["88"][4:6] == "00"  # MC_ALL: system blocks locked

    reader = make_reader(card_key=enrolled(key))
    assert tap_authenticated(port, reader, "--pmm", LITE_S_PMM, "--state", str(state)) == [True]


def test_personalising_a_personalised_card_is_refused(port: int, tmp_path: Path) -> None:
    key = lite_s_key(MASTER, bytes.fromhex(IDM)).hex()
    state = tmp_path / "card.json"
    args = ("--idm", IDM, "--pmm", LITE_S_PMM, "--card-key", key, "--state", str(state))
    with EmulatedCard(port, *args) as card:
        with pytest.raises(PersonaliseError, match="already personalised") as caught:
            personalise_lite_s(f"udp:127.0.0.1:{port}", MASTER, timeout_s=10)
        card.remove()
    assert IDM not in str(caught.value).upper()
    assert json.loads(state.read_text())["card_key"] == key.upper()


def test_no_card_within_the_timeout_is_a_clear_error(port: int) -> None:
    with pytest.raises(PersonaliseError, match="no FeliCa card on the reader within 1 s"):
        personalise_lite_s(f"udp:127.0.0.1:{port}", MASTER, timeout_s=1)
