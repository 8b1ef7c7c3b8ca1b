"""PIN lockout: after too many wrong PINs the card's PIN doors refuse it for a while."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.i18n import code
from edge.core.controller import Controller
from edge.core.credentials import Credential, InMemoryCredentials, PinHash
from edge.core.decision import Reason
from edge.core.events import CardPresented, PinChecked, PinEntered, PinOutcome
from edge.core.outputs import CheckPin, EventKind, Indicate, Output, Signal
from edge.core.schedule import ClosureDays
from edge.core.spec import DeviceSpec, PinMode, ReaderSpec
from simulator.clock import FakeClock
from tests.edge.core.harness import MORNING, POLICY, SPEC, Harness, records, relay

PIN = PinHash(2**14, 8, 1, b"s" * 16, b"h" * 32, b"d" * 32)


def harness(lockout_s: float = 300.0, attempts: int = 3) -> Harness:
    """gate-in asks every card for its PIN; gate-out asks only the finance group's cards."""
    direction_in, direction_out = SPEC.readers[0].direction, SPEC.readers[1].direction
    readers = (
        ReaderSpec(
            "gate-in",
            "gate",
            direction_in,
            pin=PinMode.ALWAYS,
            has_keypad=True,
            pin_attempts=attempts,
            pin_lockout_s=lockout_s,
        ),
        ReaderSpec("gate-out", "gate", direction_out, has_keypad=True),
        SPEC.readers[2],
    )
    spec = DeviceSpec(SPEC.id, SPEC.timezone, True, SPEC.zones, SPEC.doors, readers, SPEC.presence)
    creds = InMemoryCredentials(
        [
            Credential("ref-alice", frozenset({"staff", "finance"}), pin=PIN),
            Credential("ref-bob", frozenset({"staff"}), pin=PIN),
        ],
        deny={},
    )
    policy = replace(POLICY, pin_groups=frozenset({"finance"}))
    return Harness(Controller(spec, policy, creds, ClosureDays.parse([])), FakeClock(MORNING))


def tap(
    h: Harness, outcome: PinOutcome, reader: str = "gate-in", card: str = "ref-alice"
) -> list[Output]:
    """Tap `card`; if the core asks for a PIN, key one and answer the check with `outcome`."""
    out = h.send(CardPresented(reader, card))
    if out != [Indicate("gate", Signal.PIN_WANTED, reader)]:
        return out
    (check,) = h.send(PinEntered(reader, "1357"))
    assert isinstance(check, CheckPin)
    return h.send(PinChecked(reader, card, check.ticket, outcome))


def reason(out: list[Output]) -> str | None:
    access = [r for r in records(out, EventKind.ACCESS) if r["type"] != "crossing"]
    return access[0]["reason"] if access else None


def lock(h: Harness, attempts: int = 3, card: str = "ref-alice") -> list[Output]:
    out: list[Output] = []
    for _ in range(attempts):
        out = tap(h, PinOutcome.WRONG, card=card)
        assert reason(out) == "wrong_pin"
    return out


def test_the_limit_locks_the_card_out_and_the_alarm_says_for_how_long() -> None:
    h = harness()
    (alarm,) = records(lock(h), EventKind.ALARM, "pin_attempts_exceeded")
    assert (alarm["card_ref"], alarm["attempts"], alarm["lockout_s"]) == ("ref-alice", 3, 300.0)
    out = h.send(CardPresented("gate-in", "ref-alice"))
    (access,) = records(out, EventKind.ACCESS)
    assert (access["type"], access["reason"]) == ("denied", "pin_locked_out")
    assert [o for o in out if isinstance(o, Indicate)] == [Indicate("gate", Signal.DENY, "gate-in")]
    assert relay(out, "gate") == []
    assert h.send(PinEntered("gate-in", "1357")) == []  # no PIN is asked for, none checked


@pytest.mark.parametrize(
    ("lockout_s", "later_s", "expected"),
    [
        (300.0, 0.0, "pin_locked_out"),
        (300.0, 299.0, "pin_locked_out"),
        (300.0, 300.0, "granted"),
        (60.0, 59.5, "pin_locked_out"),
        (60.0, 60.0, "granted"),
        (0.0, 0.0, "granted"),  # 0: no lockout, only the alarm
    ],
)
def test_a_locked_out_card_works_again_after_the_lockout(
    lockout_s: float, later_s: float, expected: str
) -> None:
    h = harness(lockout_s)
    lock(h)
    h.advance(later_s, step=10.0)
    assert reason(tap(h, PinOutcome.RIGHT)) == expected


def test_the_lockout_covers_every_pin_reader_of_the_device_and_no_other_reader() -> None:
    h = harness()
    lock(h)
    # gate-out asks alice (finance) for a PIN: locked out there too.
    assert reason(h.send(CardPresented("gate-out", "ref-alice"))) == "pin_locked_out"
    # Another card at the same reader is not affected.
    assert reason(tap(h, PinOutcome.RIGHT, card="ref-bob")) == "granted"


def test_a_door_that_asks_no_pin_still_admits_the_card() -> None:
    h = harness()
    lock(h)
    h.controller.policy = replace(h.controller.policy, pin_groups=frozenset())
    out = h.send(CardPresented("gate-out", "ref-alice"))
    assert reason(out) == "granted"
    assert relay(out, "gate") == ["unlock"]


def test_a_wall_clock_step_does_not_lift_the_lockout() -> None:
    h = harness()
    lock(h)
    h.clock.step_wall_clock(24 * 3600)  # NTP jumps a day: the monotonic clock rules
    assert reason(tap(h, PinOutcome.RIGHT)) == "pin_locked_out"


def test_a_pin_keyed_elsewhere_while_the_lockout_began_is_refused_and_duress_still_alarms() -> None:
    h = harness()
    for _ in range(2):
        tap(h, PinOutcome.WRONG)
    # The same card waits at gate-out with its PIN being checked (a clone there, say) …
    assert h.send(CardPresented("gate-out", "ref-alice")) == [
        Indicate("gate", Signal.PIN_WANTED, "gate-out")
    ]
    (check,) = h.send(PinEntered("gate-out", "1357"))
    assert isinstance(check, CheckPin)
    lock(h, attempts=1)  # … when the third wrong PIN at gate-in locks it out.
    out = h.send(PinChecked("gate-out", "ref-alice", check.ticket, PinOutcome.DURESS))
    assert reason(out) == "pin_locked_out"
    assert relay(out, "gate") == []
    assert records(out, EventKind.ALARM, "duress")  # the person is still under threat


def test_other_refusals_come_first() -> None:
    h = harness()
    lock(h)
    h.controller.lockdown = True
    assert reason(h.send(CardPresented("gate-in", "ref-alice"))) == "lockdown"
    assert reason(h.send(CardPresented("gate-in", "ref-stranger"))) == "unknown_card"


def test_taps_during_the_lockout_neither_extend_it_nor_count_as_wrong() -> None:
    h = harness()
    lock(h)
    h.advance(200, step=10.0)
    for _ in range(5):
        assert reason(h.send(CardPresented("gate-in", "ref-alice"))) == "pin_locked_out"
    h.advance(100, step=10.0)
    out = tap(h, PinOutcome.RIGHT)
    assert reason(out) == "granted"
    assert not records(out, EventKind.ALARM)


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from([PinOutcome.WRONG, PinOutcome.RIGHT]), st.floats(0, 200)),
        max_size=25,
    ),
    attempts=st.integers(1, 4),
    lockout_s=st.sampled_from([0.0, 30.0, 120.0]),
)
def test_the_core_follows_a_simple_model_of_counts_and_lockouts(
    steps: list[tuple[PinOutcome, float]], attempts: int, lockout_s: float
) -> None:
    h = harness(lockout_s, attempts)
    wrong, until, now = 0, None, 0.0
    for outcome, wait_s in steps:
        h.clock.advance(wait_s)
        now += wait_s
        out = tap(h, outcome)
        if until is not None and now < until:
            assert reason(out) == "pin_locked_out"
            assert relay(out, "gate") == []
            continue
        if outcome is PinOutcome.RIGHT:
            wrong = 0
            assert reason(out) == "granted"
            continue
        wrong += 1
        assert reason(out) == "wrong_pin"
        alarmed = bool(records(out, EventKind.ALARM, "pin_attempts_exceeded"))
        assert alarmed == (wrong == attempts)
        if wrong == attempts:
            wrong = 0
            until = now + lockout_s if lockout_s > 0 else None


def test_every_reason_has_a_label_for_guards_in_both_languages() -> None:
    unlabelled = [r for r in Reason if code(r, "ja") == str(r)]  # unknown codes show as is
    assert unlabelled == []
