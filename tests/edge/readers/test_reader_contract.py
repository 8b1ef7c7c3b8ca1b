"""The CardReader port's contract, run against the simulated and the PC/SC reader.

The two hardware adapters (PC/SC, nfcpy) also share the names a probe or a test waits on.
"""

from __future__ import annotations

import inspect
import queue
from collections.abc import Iterator
from functools import partial
from typing import Any, Protocol

import pytest

from edge.cardref import card_reference
from edge.core.events import CardPresented, Event, ReaderStatusChanged
from edge.errors import ClosedError
from edge.ports import CardReader
from simulator.readers import SimCardReader
from tests.edge.readers.nfc_fixtures import free_udp_port
from tests.edge.readers.pcsc_stack import ATRS, READER, PcscStack

KEY = bytes(range(32))
referencer = partial(card_reference, KEY)
CARDS = [("felica", "012E4CD8A1B2C3D4"), ("iso14443a", "04A2B3C4D5E680")]


class Harness(Protocol):
    """Drives one implementation of the port the way hands and cables would."""

    reader: CardReader

    def ready(self) -> None: ...
    def tap(self, technology: str, card_id: str) -> None: ...
    def unplug(self) -> None: ...
    def plug(self) -> None: ...


class SimHarness:
    def __init__(self) -> None:
        self.sim = SimCardReader("door-1-in", referencer)
        self.reader: CardReader = self.sim

    def ready(self) -> None:
        pass

    def tap(self, technology: str, card_id: str) -> None:
        self.sim.tap(technology, card_id)

    def unplug(self) -> None:
        self.sim.unplug()

    def plug(self) -> None:
        self.sim.plug()


class PcscHarness:
    def __init__(self, stack: PcscStack) -> None:
        from edge.readers.pcsc import PcscCardReader

        self.stack = stack
        self.pcsc = PcscCardReader("door-1-in", READER, referencer)
        self.reader: CardReader = self.pcsc

    def ready(self) -> None:
        assert self.pcsc.wait_for(lambda: self.pcsc.online is True), "the PCD was never found"

    def tap(self, technology: str, card_id: str) -> None:
        self.stack.present(self.stack.card(ATRS[technology], bytes.fromhex(card_id)))

    def unplug(self) -> None:
        self.stack.stop()  # pcscd gone: the reader vanishes for its clients

    def plug(self) -> None:
        self.stack.start()


@pytest.fixture(
    params=["sim", pytest.param("pcsc", marks=[pytest.mark.services, pytest.mark.pcscd])]
)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "sim":
        made: Harness = SimHarness()
    else:
        pytest.importorskip(
            "smartcard", reason="pyscard is not installed: pip install -e '.[pcsc]'"
        )
        made = PcscHarness(request.getfixturevalue("pcsc"))
    yield made
    made.reader.close()


def started(harness: Harness) -> queue.Queue[Event]:
    events: queue.Queue[Event] = queue.Queue()
    harness.reader.start(events.put)
    harness.ready()
    return events


def next_event(events: queue.Queue[Event], timeout_s: float = 5.0) -> Event:
    try:
        return events.get(timeout=timeout_s)
    except queue.Empty:
        pytest.fail(f"no event within {timeout_s} s")


def test_each_tap_is_one_card_presented_with_the_reference(harness: Harness) -> None:
    events = started(harness)
    for technology, card_id in CARDS:
        harness.tap(technology, card_id)
    # The second card is the barrier: a duplicate of the first would come before it.
    assert [next_event(events) for _ in CARDS] == [
        CardPresented("door-1-in", card_reference(KEY, t, c), authenticated=False) for t, c in CARDS
    ]
    assert harness.reader.reader_id == "door-1-in"


def test_raw_ids_never_appear_in_events(harness: Harness) -> None:
    events = started(harness)
    for technology, card_id in CARDS:
        harness.tap(technology, card_id)
    emitted = [next_event(events) for _ in CARDS]
    for event in emitted:
        assert isinstance(event, CardPresented)
        assert len(event.card_ref) == 64
        for _, card_id in CARDS:
            assert card_id.upper() not in repr(event).upper()


def test_offline_then_online(harness: Harness) -> None:
    events = started(harness)
    harness.unplug()
    offline = next_event(events)
    assert isinstance(offline, ReaderStatusChanged)
    assert (offline.reader, offline.online) == ("door-1-in", False)
    harness.plug()
    online = next_event(events)
    assert isinstance(online, ReaderStatusChanged)
    assert (online.reader, online.online) == ("door-1-in", True)
    harness.tap(*CARDS[0])
    assert next_event(events) == CardPresented("door-1-in", card_reference(KEY, *CARDS[0]))


def test_close_is_idempotent_and_start_after_close_fails(harness: Harness) -> None:
    events = started(harness)
    harness.reader.close()
    harness.reader.close()
    with pytest.raises(ClosedError):
        harness.reader.start(events.put)


def _adapter(kind: str) -> CardReader:
    """Return one of the two hardware adapters, built but not started."""
    if kind == "nfc":
        pytest.importorskip("nfc", reason="nfcpy is not installed: pip install -e '.[nfc]'")
        from edge.readers.nfc import NfcCardReader

        return NfcCardReader("door-1-in", f"udp:127.0.0.1:{free_udp_port()}", referencer)
    pytest.importorskip("smartcard", reason="pyscard is not installed: pip install -e '.[pcsc]'")
    from edge.readers.pcsc import PcscCardReader

    return PcscCardReader("door-1-in", READER, referencer)


@pytest.mark.parametrize("kind", ["pcsc", "nfc"])
def test_both_adapters_share_one_shape(kind: str) -> None:
    """Card in the field, waiting for a state, the tap count and the first online state."""
    reader: Any = _adapter(kind)
    try:
        assert reader.online is None  # not yet known: neither adapter has looked
        assert reader.has_card is False
        assert reader.taps == 0
        parameters = inspect.signature(reader.wait_for).parameters
        assert list(parameters) == ["predicate", "timeout_s"]
        assert reader.wait_for(lambda: reader.taps == 0, timeout_s=0.1) is True
        assert reader.wait_for(lambda: reader.has_card, timeout_s=0.05) is False
    finally:
        reader.close()
