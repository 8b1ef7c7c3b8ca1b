"""The PC/SC reader on the real stack: pyscard → pcscd → vpcd → a virtual card."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from edge.cardref import card_reference
from edge.core.events import CardPresented, Event, ReaderStatusChanged
from edge.errors import ClosedError
from simulator.vpcd import Misbehaviour
from tests.edge.readers.pcsc_stack import FELICA_ATR, ISO14443A_ATR, READER, PcscStack

pytest.importorskip("smartcard", reason="pyscard is not installed: pip install -e '.[pcsc]'")
from edge.readers.pcsc import PcscCardReader

KEY = bytes(range(32))
IDM = "012E4CD8A1B2C3D4"  # FeliCa IDm
UID7 = "04A2B3C4D5E680"  # ISO 14443 A, double size
RAW_IDS = (IDM, UID7)
ReaderFactory = Callable[..., tuple[PcscCardReader, "queue.Queue[Event]"]]


def next_event(events: queue.Queue[Event], timeout_s: float = 5.0) -> Event:
    """Return the next emitted event or fail after `timeout_s`."""
    try:
        return events.get(timeout=timeout_s)
    except queue.Empty:
        pytest.fail(f"no event within {timeout_s} s")


@pytest.fixture(autouse=True)
def _no_raw_ids_in_logs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    caplog.set_level(logging.DEBUG, logger="edge.readers")
    yield
    # caplog.text is per phase; in teardown it would miss everything the test logged.
    records = [*caplog.get_records("setup"), *caplog.get_records("call"), *caplog.records]
    assert records, "nothing was logged: the check below would prove nothing"
    text = "\n".join(logging.Formatter().format(r) for r in records).upper()
    for raw in RAW_IDS:
        assert raw not in text, "a raw card id reached the logs"


@pytest.fixture
def make_reader(pcsc: PcscStack) -> Iterator[ReaderFactory]:
    made: list[PcscCardReader] = []

    def make(**options: Any) -> tuple[PcscCardReader, queue.Queue[Event]]:
        options.setdefault("match", READER)
        reader = PcscCardReader("door-1-in", referencer=partial(card_reference, KEY), **options)
        events: queue.Queue[Event] = queue.Queue()
        made.append(reader)
        reader.start(events.put)
        return reader, events

    yield make
    for reader in made:
        reader.close()


def ready(make_reader: ReaderFactory, **options: Any) -> tuple[PcscCardReader, queue.Queue[Event]]:
    reader, events = make_reader(**options)
    assert reader.wait_for(lambda: reader.online is True), "the reader never found the PCD"
    return reader, events


def test_felica_tap_arrives_as_its_card_reference(
    pcsc: PcscStack, make_reader: ReaderFactory
) -> None:
    _reader, events = ready(make_reader)
    card = pcsc.card(FELICA_ATR, bytes.fromhex(IDM))
    card.insert()
    expected = card_reference(KEY, "felica", IDM)
    assert next_event(events) == CardPresented("door-1-in", expected, authenticated=False)
    assert card.apdus == [bytes.fromhex("FFCA000000")]


def test_iso14443a_tap_arrives_as_its_card_reference(
    pcsc: PcscStack, make_reader: ReaderFactory
) -> None:
    _reader, events = ready(make_reader)
    card = pcsc.card(ISO14443A_ATR, bytes.fromhex(UID7))
    card.insert()
    expected = card_reference(KEY, "iso14443a", UID7)
    assert next_event(events) == CardPresented("door-1-in", expected, authenticated=False)


def test_card_left_on_the_reader_is_one_tap(pcsc: PcscStack, make_reader: ReaderFactory) -> None:
    reader, events = ready(make_reader)
    card = pcsc.card(FELICA_ATR, bytes.fromhex(IDM))
    card.insert()
    assert isinstance(next_event(events), CardPresented)
    polls = card.controls.count(4)
    assert card.wait_for(lambda: card.controls.count(4) >= polls + 4), "vpcd stopped polling"
    assert events.empty()
    assert len(card.apdus) == 1
    assert reader.taps == 1


def test_retap_within_the_window_is_merged_and_after_it_counts(
    pcsc: PcscStack, make_reader: ReaderFactory
) -> None:
    now = [100.0]  # the debounce clock, moved by the test
    reader, events = ready(make_reader, debounce_s=1.5, monotonic=lambda: now[0])
    card = pcsc.card(FELICA_ATR, bytes.fromhex(IDM))

    def tap_and_wait_until_gone() -> None:
        pcsc.present(card)
        # The reader notes the time a card leaves: move the clock only after it has.
        assert reader.wait_for(lambda: not reader.has_card), "the reader never saw it go"

    tap_and_wait_until_gone()
    now[0] += 1.0
    tap_and_wait_until_gone()  # back within 1.5 s of leaving: the same tap
    now[0] += 1.6
    tap_and_wait_until_gone()  # away for longer than the window: a new tap
    assert len(card.apdus) == 3
    ref = card_reference(KEY, "felica", IDM)
    assert next_event(events) == CardPresented("door-1-in", ref)
    assert next_event(events) == CardPresented("door-1-in", ref)
    assert reader.wait_for(lambda: reader.taps == 2), f"taps: {reader.taps}"
    assert events.empty()


@pytest.mark.parametrize(
    ("misbehave", "logged"),
    [
        (Misbehaviour.EMPTY, "GET DATA answered 0 byte(s)"),
        (Misbehaviour.STATUS, "status word 6A 81"),
        (Misbehaviour.SHORT, "GET DATA answered 1 byte(s)"),
    ],
)
def test_bad_answer_is_no_tap_and_the_next_card_works(
    pcsc: PcscStack,
    make_reader: ReaderFactory,
    caplog: pytest.LogCaptureFixture,
    misbehave: Misbehaviour,
    logged: str,
) -> None:
    _reader, events = ready(make_reader)
    pcsc.present(pcsc.card(FELICA_ATR, bytes.fromhex(IDM), misbehave))
    good = pcsc.card(ISO14443A_ATR, bytes.fromhex(UID7))
    good.insert()
    assert next_event(events) == CardPresented("door-1-in", card_reference(KEY, "iso14443a", UID7))
    assert events.empty()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(logged in m for m in warnings), warnings


def test_card_with_a_bad_atr_is_no_tap(
    pcsc: PcscStack, make_reader: ReaderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    _reader, events = ready(make_reader)
    bad_tck = FELICA_ATR[:-1] + b"\x43"
    pcsc.present(pcsc.card(bad_tck, bytes.fromhex(IDM)))
    good = pcsc.card(FELICA_ATR, bytes.fromhex(IDM))
    good.insert()
    assert next_event(events) == CardPresented("door-1-in", card_reference(KEY, "felica", IDM))
    assert "TCK" in caplog.text


def test_reader_goes_offline_and_comes_back(pcsc: PcscStack, make_reader: ReaderFactory) -> None:
    reader, events = ready(make_reader)  # default offline_after_s: the production figure
    pcsc.stop()
    stopped = time.monotonic()
    event = next_event(events, timeout_s=5.0)
    # What the reader sees first as pcscd goes is a race (the service gone, or for a moment
    # an empty reader list), so the detail's wording is not asserted: only that it says why.
    assert isinstance(event, ReaderStatusChanged)
    assert (event.reader, event.online) == ("door-1-in", False)
    assert event.detail
    assert time.monotonic() - stopped < 5.0
    assert reader.online is False
    pcsc.start()
    event = next_event(events, timeout_s=5.0)
    assert isinstance(event, ReaderStatusChanged)
    assert (event.reader, event.online) == ("door-1-in", True)
    assert reader.wait_for(lambda: reader.online is True), "the reader never said it is back"
    card = pcsc.card(FELICA_ATR, bytes.fromhex(IDM))
    card.insert()
    assert next_event(events) == CardPresented("door-1-in", card_reference(KEY, "felica", IDM))
    assert events.empty()


def test_reader_absent_at_start_is_reported_offline_once(
    make_reader: ReaderFactory, caplog: pytest.LogCaptureFixture
) -> None:
    looks = [0]  # the thread reads the clock once per look for the reader

    def clock() -> float:
        looks[0] += 1
        return time.monotonic()

    reader, events = make_reader(
        match="SONY FeliCa RC-S300", monotonic=clock, offline_after_s=0.3, wait_s=0.1
    )
    event = next_event(events)
    # Which of vpcd's two readers pcscd lists at this moment is its business: the detail
    # names what is missing and the reader the fixture waited for.
    assert isinstance(event, ReaderStatusChanged)
    assert (event.reader, event.online) == ("door-1-in", False)
    assert event.detail.startswith("no PC/SC reader name contains 'SONY FeliCa RC-S300' (has ")
    assert repr(READER) in event.detail
    seen = looks[0]
    assert reader.wait_for(lambda: looks[0] >= seen + 5), "the reader stopped looking"
    assert events.empty()
    assert reader.online is False
    offline_logs = [r for r in caplog.records if r.getMessage().endswith(event.detail)]
    assert len(offline_logs) == 1


def test_close_is_idempotent_and_start_after_close_fails(make_reader: ReaderFactory) -> None:
    reader, events = ready(make_reader)
    assert "door-1-in" in repr(reader)
    assert "online" in repr(reader)
    reader.close()
    reader.close()
    assert "closed" in repr(reader)
    with pytest.raises(ClosedError, match="door-1-in is closed"):
        reader.start(events.put)
    never_started = PcscCardReader("door-2-in", READER, partial(card_reference, KEY))
    never_started.close()
    never_started.close()


def test_a_reader_starts_once(make_reader: ReaderFactory) -> None:
    reader, events = ready(make_reader)
    with pytest.raises(RuntimeError, match="already started"):
        reader.start(events.put)
