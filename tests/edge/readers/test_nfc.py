"""The nfcpy reader against real nfcpy on both sides: a card process on nfcpy's udp driver.

Every card here is `simulator.nfc_card` in its own process, answering the reader over
127.0.0.1. FeliCa (and Lite-S authentication) runs on nfcpy's own Type 3 tag emulation; nfcpy
emulates no ISO 14443 card, so the A and B cards answer nfcpy's activation frames by hand
(see the simulator's docstring). The one fake is the opener in the unplug test: a udp "reader"
cannot be unplugged, so a wrapper refuses to open, as nfcpy does for a missing USB reader.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from edge.cardref import card_reference
from edge.errors import ClosedError, EdgeError
from tests.edge.readers.nfc_fixtures import EmulatedCard, FakeClock, Recorder, free_udp_port

pytest.importorskip("nfc", reason="nfcpy is not installed: pip install -e '.[nfc]'")
from edge.readers.nfc import NfcCardReader, ReaderSetupError, _describe, open_frontend

pytestmark = pytest.mark.services  # starts mosquitto, pcscd, an emulated card or a building

SITE_KEY = b"city-hall-test-site-key-32-bytes"
IDM = "012E4CD8A1B2C3D4"


def ref(technology: str, raw_id: str) -> str:
    return card_reference(SITE_KEY, technology, raw_id)


MakeReader = Callable[..., NfcCardReader]


@pytest.fixture
def port() -> int:
    return free_udp_port()


@pytest.fixture
def make_reader(port: int) -> Iterator[MakeReader]:
    readers: list[NfcCardReader] = []

    def make(**kwargs: Any) -> NfcCardReader:
        kwargs.setdefault("path", f"udp:127.0.0.1:{port}")
        kwargs.setdefault("targets", ("212F",))  # each absent target costs 1 s on udp
        reader = NfcCardReader("door-1", referencer=ref, **kwargs)
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        reader.close()


def tap(port: int, reader: NfcCardReader, *card_args: str) -> None:
    """Present a card until the reader has it, then take it away until the reader notices."""
    with EmulatedCard(port, *card_args) as card:
        assert reader.wait_for(lambda: reader.has_card, timeout_s=10)
        card.remove()
        assert reader.wait_for(lambda: not reader.has_card, timeout_s=10)


def test_a_felica_tap_is_one_card_presented_and_the_raw_id_stays_inside(
    port: int, make_reader: MakeReader, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    reader, events = make_reader(), Recorder()
    reader.start(events)
    tap(port, reader, "--idm", IDM)

    assert len(events.taps) == 1
    assert events.taps[0].reader == "door-1"
    assert events.taps[0].card_ref == ref("felica", IDM)
    assert events.taps[0].authenticated is False
    assert events.statuses == []
    seen = caplog.text + "".join(str(r.args) for r in caplog.records) + repr(reader)
    assert IDM not in seen.upper()
    assert IDM.lower() not in seen


def test_a_card_held_well_past_the_window_is_one_tap(port: int, make_reader: MakeReader) -> None:
    reader, events = make_reader(debounce_s=0.5), Recorder()
    reader.start(events)
    with EmulatedCard(port, "--idm", IDM, hold_s=2.0) as card:
        assert reader.wait_for(lambda: reader.has_card, timeout_s=10)
        card.proc.wait(timeout=10)  # the card leaves by itself, 2 s after it came
    assert reader.wait_for(lambda: not reader.has_card, timeout_s=10)
    assert [t.card_ref for t in events.taps] == [ref("felica", IDM)]


def test_a_second_tap_counts_only_after_the_window(port: int, make_reader: MakeReader) -> None:
    clock = FakeClock()
    reader, events = make_reader(debounce_s=1.5, monotonic=clock), Recorder()
    reader.start(events)
    tap(port, reader, "--idm", IDM)
    clock.advance(0.5)
    tap(port, reader, "--idm", IDM)  # within 1.5 s of leaving: the same tap
    assert len(events.taps) == 1
    clock.advance(1.6)
    tap(port, reader, "--idm", IDM)
    assert len(events.taps) == 2
    assert {t.card_ref for t in events.taps} == {ref("felica", IDM)}


def test_the_default_targets_find_a_felica_card(port: int, make_reader: MakeReader) -> None:
    reader, events = make_reader(targets=("212F", "106A", "106B")), Recorder()
    reader.start(events)
    tap(port, reader, "--idm", IDM)
    assert [t.card_ref for t in events.taps] == [ref("felica", IDM)]


@pytest.mark.parametrize(
    ("target", "card_args", "technology", "raw_id"),
    [
        # NXP Type 2 (7-byte UID): nfcpy probes it (1A, 60), gets no answer, polls it again
        ("106A", ("--uid", "04A2B3C4D5E680"), "iso14443a", "04A2B3C4D5E680"),
        ("106A", ("--uid", "05A1B2C3D4E5F6"), "iso14443a", "05A1B2C3D4E5F6"),  # other Type 2
        ("106A", ("--uid", "3A1B2C4D", "--type4"), "iso14443a", "3A1B2C4D"),  # Type 4A, 4 bytes
        ("106B", ("--pupi", "9F8E7D6C"), "iso14443b", "9F8E7D6C"),  # Type 4B
    ],
    ids=["type2-nxp", "type2", "type4a", "type4b"],
)
def test_iso14443_cards_are_referenced_by_uid_or_pupi(
    port: int,
    make_reader: MakeReader,
    target: str,
    card_args: tuple[str, ...],
    technology: str,
    raw_id: str,
) -> None:
    reader, events = make_reader(targets=(target,)), Recorder()
    reader.start(events)
    tap(port, reader, *card_args)
    assert [(t.card_ref, t.authenticated) for t in events.taps] == [
        (ref(technology, raw_id), False)
    ]


class CountingOpener:
    """nfcpy's own opener, counting the attempts."""

    def __init__(self) -> None:
        self.attempts = 0
        self.changed = threading.Condition()

    def __call__(self, path: str) -> Any:
        with self.changed:
            self.attempts += 1
            self.changed.notify_all()
        return open_frontend(path)

    def wait_for(self, attempts: int, timeout_s: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.attempts >= attempts, timeout_s)


def test_a_reader_that_cannot_open_goes_offline_once(caplog: pytest.LogCaptureFixture) -> None:
    opener = CountingOpener()  # bus 999 device 999 does not exist: nfcpy raises ENODEV
    reader = NfcCardReader(
        "door-2", "usb:999:999", ref, reopen_first_s=0.05, reopen_max_s=0.1, opener=opener
    )
    events = Recorder()
    with caplog.at_level(logging.WARNING, logger="edge.readers.nfc"):
        reader.start(events)
        assert events.wait_for(lambda r: bool(r.statuses), timeout_s=5)
        assert opener.wait_for(attempts=4, timeout_s=5)
        reader.close()
    [offline] = events.statuses
    assert (offline.reader, offline.online) == ("door-2", False)
    assert "usb:999:999" in offline.detail
    assert len([r for r in caplog.records if r.name == "edge.readers.nfc"]) == 1
    assert not reader.online


class Plug:
    """Opens real nfcpy frontends while plugged in; refuses as nfcpy does for a missing reader."""

    def __init__(self) -> None:
        self.plugged = True
        self.current: Any = None
        self.lock = threading.Lock()

    def __call__(self, path: str) -> Any:
        with self.lock:
            if not self.plugged:
                raise OSError(errno.ENODEV, "No such device")
            self.current = open_frontend(path)
            return self.current

    def unplug(self) -> None:
        with self.lock:
            self.plugged = False
            self.current.close()  # the device goes away under nfcpy: its next I/O fails


def test_an_unplugged_reader_goes_offline_and_comes_back(
    port: int, make_reader: MakeReader
) -> None:
    plug, events = Plug(), Recorder()
    reader = make_reader(opener=plug, reopen_first_s=0.1, reopen_max_s=0.5)
    reader.start(events)
    tap(port, reader, "--idm", IDM)

    plug.unplug()
    assert events.wait_for(lambda r: len(r.statuses) == 1, timeout_s=5)
    plug.plugged = True
    assert events.wait_for(lambda r: len(r.statuses) == 2, timeout_s=5)
    assert [s.online for s in events.statuses] == [False, True]
    assert reader.online

    tap(port, reader, "--idm", "0000000000000001")
    assert [t.card_ref for t in events.taps] == [
        ref("felica", IDM),
        ref("felica", "0000000000000001"),
    ]


def test_close_is_idempotent_and_ends_the_thread(make_reader: MakeReader) -> None:
    reader = make_reader()
    reader.start(Recorder())
    assert repr(reader).startswith("<NfcCardReader door-1 udp:127.0.0.1:")
    with pytest.raises(EdgeError, match="already started"):
        reader.start(Recorder())
    reader.close()
    reader.close()
    assert "closed" in repr(reader)
    assert not [t for t in threading.enumerate() if t.name == "nfc-door-1"]
    with pytest.raises(ClosedError):
        reader.start(Recorder())


def test_close_before_start_then_start_raises(make_reader: MakeReader) -> None:
    reader = make_reader()
    reader.close()
    with pytest.raises(ClosedError, match="door-1 is closed"):
        reader.start(Recorder())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "bluetooth:1"}, "use usb"),
        ({"path": "udp:127.0.0.1:1"}, "'tcpmux' in /etc/services"),
        ({"path": "udp:127.0.0.1:x"}, "must be a number"),
        ({"targets": ("424B",)}, "use some of"),
        ({"reopen_first_s": 5.0, "reopen_max_s": 1.0}, "0 < reopen_first_s <= reopen_max_s"),
        ({"poll_gap_s": -1}, "poll_gap_s >= 0"),
    ],
)
def test_setup_mistakes_say_what_to_do(make_reader: MakeReader, kwargs: Any, message: str) -> None:
    with pytest.raises(ReaderSetupError, match=message):
        make_reader(**kwargs)


def test_error_text_for_logs_and_events_has_anything_like_a_card_id_masked() -> None:
    error = ValueError(f"frame 01 2E 4C D8 A1 from {IDM} as {bytes.fromhex(IDM)!r}")
    assert _describe(error) == "ValueError: frame … from … as …"
    assert _describe(OSError(19, "No such device")) == "OSError: [Errno 19] No such device"
