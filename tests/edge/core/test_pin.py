"""Card + PIN at the door: the core asks for the PIN, hands the digits out, acts on the answer."""

from __future__ import annotations

from dataclasses import replace

import pytest

from edge.core.controller import Controller
from edge.core.credentials import Credential, InMemoryCredentials, PinHash
from edge.core.events import CardPresented, PinChecked, PinEntered, PinOutcome
from edge.core.outputs import CheckPin, EventKind, Indicate, Output, Signal
from edge.core.schedule import ClosureDays
from edge.core.spec import DeviceSpec, PinMode, ReaderSpec
from simulator.clock import FakeClock
from tests.edge.core.harness import MORNING, POLICY, SPEC, Harness, records, relay

PIN = PinHash(2**14, 8, 1, b"s" * 16, b"h" * 32, b"d" * 32)
READERS = (
    ReaderSpec("gate-in", "gate", SPEC.readers[0].direction, pin=PinMode.ALWAYS, has_keypad=True),
    ReaderSpec("gate-out", "gate", SPEC.readers[1].direction, has_keypad=True),
    SPEC.readers[2],
)


def harness(
    readers: tuple[ReaderSpec, ...] = READERS, pin_groups: frozenset[str] = frozenset()
) -> Harness:
    spec = DeviceSpec(SPEC.id, SPEC.timezone, True, SPEC.zones, SPEC.doors, readers, SPEC.presence)
    creds = InMemoryCredentials(
        [
            Credential("ref-alice", frozenset({"staff", "finance"}), pin=PIN),
            Credential("ref-bob", frozenset({"staff"})),  # no PIN enrolled
            Credential("ref-guard", frozenset({"security"}), pin=PIN),
        ]
    )
    policy = replace(POLICY, pin_groups=pin_groups)
    return Harness(Controller(spec, policy, creds, ClosureDays.parse([])), FakeClock(MORNING))


def indications(outputs: list[Output]) -> list[Signal]:
    return [o.signal for o in outputs if isinstance(o, Indicate)]


def key_in(h: Harness, digits: str, outcome: PinOutcome, reader: str = "gate-in") -> list[Output]:
    """Key digits, check the core asks for them to be checked, answer with `outcome`."""
    (check,) = h.send(PinEntered(reader, digits))
    assert isinstance(check, CheckPin)
    assert (check.reader, check.digits, check.pin_hash) == (reader, digits, PIN)
    return h.send(PinChecked(check.reader, check.card_ref, check.ticket, outcome))


def test_card_at_a_pin_reader_waits_for_the_pin() -> None:
    h = harness()
    out = h.send(CardPresented("gate-in", "ref-alice"))
    assert out == [Indicate("gate", Signal.PIN_WANTED, "gate-in")]  # nothing recorded yet


def test_right_pin_opens() -> None:
    h = harness()
    h.send(CardPresented("gate-in", "ref-alice"))
    out = key_in(h, "2580", PinOutcome.RIGHT)
    (access,) = records(out, EventKind.ACCESS, "granted")
    assert access["card_ref"] == "ref-alice"
    assert access["reason"] == "granted"
    assert relay(out, "gate") == ["unlock"]
    assert indications(out) == [Signal.GRANT]
    assert not records(out, EventKind.ALARM)


def test_wrong_pin_is_denied() -> None:
    h = harness()
    h.send(CardPresented("gate-in", "ref-alice"))
    out = key_in(h, "0000", PinOutcome.WRONG)
    (access,) = records(out, EventKind.ACCESS, "denied")
    assert access["reason"] == "wrong_pin"
    assert relay(out, "gate") == []
    assert indications(out) == [Signal.DENY]
    assert h.send(PinEntered("gate-in", "2580")) == []  # a denied card must tap again


def test_attempts_limit_raises_the_alarm_and_a_right_pin_resets_the_count() -> None:
    h = harness()
    for _ in range(2):
        h.send(CardPresented("gate-in", "ref-alice"))
        assert not records(key_in(h, "0000", PinOutcome.WRONG), EventKind.ALARM)
    h.send(CardPresented("gate-in", "ref-alice"))
    key_in(h, "2580", PinOutcome.RIGHT)
    for _ in range(2):
        h.send(CardPresented("gate-in", "ref-alice"))
        assert not records(key_in(h, "0000", PinOutcome.WRONG), EventKind.ALARM)
    h.send(CardPresented("gate-in", "ref-alice"))
    out = key_in(h, "0000", PinOutcome.WRONG)
    (alarm,) = records(out, EventKind.ALARM, "pin_attempts_exceeded")
    assert alarm | {"ts": None} == {
        "kind": "alarm",
        "type": "pin_attempts_exceeded",
        "ts": None,
        "door": "gate",
        "reader": "gate-in",
        "card_ref": "ref-alice",
        "state": "raised",
        "attempts": 3,
        "lockout_s": 300.0,
    }
    assert records(out, EventKind.ACCESS, "denied")[0]["reason"] == "wrong_pin"


def test_no_pin_before_the_timeout_is_denied() -> None:
    h = harness()
    h.send(CardPresented("gate-in", "ref-alice"))
    assert h.controller.next_deadline() == pytest.approx(h.clock.now().mono + 10)
    assert not records(h.advance(9), EventKind.ACCESS)
    out = h.advance(1)
    (access,) = records(out, EventKind.ACCESS, "denied")
    assert access["reason"] == "pin_timeout"
    assert indications(out) == [Signal.DENY]
    assert relay(out, "gate") == []
    assert h.send(PinEntered("gate-in", "2580")) == []
    assert h.controller.next_deadline() is None


def test_duress_pin_opens_silently_and_raises_the_alarm() -> None:
    h = harness()
    h.send(CardPresented("gate-in", "ref-alice"))
    out = key_in(h, "2581", PinOutcome.DURESS)
    assert relay(out, "gate") == ["unlock"]
    assert indications(out) == [Signal.GRANT]  # what a right PIN shows
    (access,) = records(out, EventKind.ACCESS)
    assert access["type"] == "granted"
    assert access["reason"] == "granted"
    (alarm,) = records(out, EventKind.ALARM, "duress")
    assert (alarm["door"], alarm["reader"], alarm["card_ref"], alarm["state"]) == (
        "gate",
        "gate-in",
        "ref-alice",
        "raised",
    )


def test_a_group_needs_a_pin_at_a_reader_with_a_keypad() -> None:
    h = harness(pin_groups=frozenset({"finance"}))
    assert indications(h.send(CardPresented("gate-out", "ref-alice"))) == [Signal.PIN_WANTED]
    assert relay(key_in(h, "2580", PinOutcome.RIGHT, "gate-out"), "gate") == ["unlock"]


def test_a_group_needs_no_pin_at_a_reader_without_pin_or_keypad() -> None:
    readers = (READERS[0], replace(READERS[1], has_keypad=False), READERS[2])
    h = harness(readers, pin_groups=frozenset({"finance"}))
    assert relay(h.send(CardPresented("gate-out", "ref-alice")), "gate") == ["unlock"]
    h = harness(pin_groups=frozenset({"finance"}))
    # bob is in no PIN group: the keypad reader with pin = never lets him through on his card.
    assert relay(h.send(CardPresented("gate-out", "ref-bob")), "gate") == ["unlock"]


def test_a_card_without_a_pin_is_refused_where_one_is_wanted() -> None:
    h = harness()
    out = h.send(CardPresented("gate-in", "ref-bob"))
    assert records(out, EventKind.ACCESS, "denied")[0]["reason"] == "no_pin"
    assert indications(out) == [Signal.DENY]


def test_a_card_denied_on_its_own_never_asks_for_a_pin() -> None:
    h = harness()
    out = h.send(CardPresented("gate-in", "ref-stranger"))
    assert records(out, EventKind.ACCESS, "denied")[0]["reason"] == "unknown_card"


def test_a_new_tap_replaces_the_waiting_card_and_stale_answers_are_ignored() -> None:
    h = harness()
    h.send(CardPresented("gate-in", "ref-alice"))
    (first,) = h.send(PinEntered("gate-in", "2580"))
    assert isinstance(first, CheckPin)
    assert h.send(PinEntered("gate-in", "1111")) == []  # one check at a time
    h.send(CardPresented("gate-in", "ref-guard"))
    assert h.send(PinChecked("gate-in", "ref-alice", first.ticket, PinOutcome.RIGHT)) == []
    out = key_in(h, "2580", PinOutcome.RIGHT)
    assert records(out, EventKind.ACCESS, "granted")[0]["card_ref"] == "ref-guard"


def test_the_pin_is_decided_again_after_it_is_keyed() -> None:
    h = harness()
    h.send(CardPresented("gate-in", "ref-alice"))
    h.controller.lockdown = True
    out = key_in(h, "2581", PinOutcome.DURESS)
    assert records(out, EventKind.ACCESS, "denied")[0]["reason"] == "lockdown"
    assert records(out, EventKind.ALARM, "duress")  # the person is still under threat


def test_digits_never_show() -> None:
    h = harness()
    h.send(CardPresented("gate-in", "ref-alice"))
    (check,) = h.send(PinEntered("gate-in", "2580"))
    assert "2580" not in repr(check)
    assert "2580" not in repr(PinEntered("gate-in", "2580"))
    assert repr(PIN.hash) not in repr(check)
    assert "hhhh" not in repr(Credential("r", frozenset(), pin=PIN))
