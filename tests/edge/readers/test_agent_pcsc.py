"""The whole agent on a real PC/SC stack: pcscd + vpcd + virtual cards -> core -> relay pins.

A known card energises the gate's strike relay (MockFactory pin) and lights green; an unknown
card lights red and leaves the relay alone; both are in the outbox. Stopping pcscd (the
reader vanishes) raises reader_offline; starting it again clears it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edge.app import build_agent, hardware_reader
from edge.runtime import Agent
from edge.system import SystemClock
from firmware_config.loader import load_config
from simulator.pins import WatchedFactory, idle_inputs
from simulator.readers import SimCardReader
from tests.edge.agent_fixtures import enrol, felica, sim_config
from tests.edge.readers.pcsc_stack import FELICA_ATR, READER, PcscStack

pytest.importorskip("smartcard", reason="pyscard is not installed: ./check installs it")

RELAY, GREEN, RED = 17, 5, 6  # the gate example's strike relay and entry reader lights


@pytest.fixture
def agent(tmp_path: Path, pcsc: PcscStack) -> Iterator[Agent]:
    device = sim_config(tmp_path)
    text = device.config.read_text()
    # The entry reader becomes the vpcd virtual reader; the exit reader stays simulated.
    text = text.replace('kind = "sim"', f'kind = "pcsc"\nmatch = "{READER}"\ndebounce_s = 0.3', 1)
    device.config.write_text(text)
    enrol(device.store, range(3), ["gate-east"])
    config = load_config(device.config)
    factory = WatchedFactory()  # pins announce changes: tests wait on them, never poll

    def readers(cfg, referencer, card_keys):  # type: ignore[no-untyped-def]
        if cfg.kind == "sim":
            return SimCardReader(cfg.id, referencer, cfg.debounce_s)
        return hardware_reader(cfg, referencer, card_keys)

    built, startup = build_agent(
        config,
        card_key=device.key,
        pin_factory=factory,
        clock=SystemClock(),
        reader_factory=readers,
    )
    idle_inputs(factory, config)
    built.factory = factory  # type: ignore[attr-defined]
    handled = threading.Condition()

    def notify(*_: object) -> None:
        with handled:
            handled.notify_all()

    built.when_processed(notify)
    built.handled = handled  # type: ignore[attr-defined]
    built.start(startup)
    loop = threading.Thread(target=built.run, daemon=True)
    loop.start()
    yield built
    built.stop()
    loop.join(5)
    built.close()


def pins(agent: Agent, predicate: Callable[[], bool], what: str) -> None:
    """Wait until a pin change makes `predicate` true (gpiozero drives LEDs on its threads)."""
    if not agent.factory.wait_for(predicate, 5.0):  # type: ignore[attr-defined]
        pytest.fail(f"timed out waiting for {what}")


def handled(agent: Agent, predicate: Callable[[], bool], what: str, timeout_s: float = 5) -> None:
    """Wait until, after some event the agent handled, `predicate` holds."""
    condition: threading.Condition = agent.handled  # type: ignore[attr-defined]
    with condition:
        if not condition.wait_for(predicate, timeout_s):
            pytest.fail(f"timed out after {timeout_s} s waiting for {what}")


def outbox(agent: Agent) -> list[dict[str, object]]:
    with sqlite3.connect(agent.store.path) as conn:
        return [json.loads(p) for (p,) in conn.execute("SELECT payload FROM outbox ORDER BY seq")]


def decisions(agent: Agent) -> list[str]:
    return [
        str(e["reason"]) for e in outbox(agent) if e["kind"] == "access" and e["type"] != "crossing"
    ]


def test_known_card_opens_unknown_card_does_not(agent: Agent, pcsc: PcscStack) -> None:
    factory = agent.factory  # type: ignore[attr-defined]
    relay, green, red = (factory.pin(p) for p in (RELAY, GREEN, RED))
    pcsc.present(pcsc.card(FELICA_ATR, bytes.fromhex(felica(1))))
    pins(agent, lambda: relay.state is True, "the strike relay to energise")
    pins(agent, lambda: any(s.state for s in green.states), "the green light")
    assert decisions(agent) == ["granted"]

    factory.pin(27).drive_high()  # the door opens ...
    factory.pin(27).drive_low()  # ... and closes: the strike relocks
    pins(agent, lambda: relay.state is False, "the strike to relock")
    changes = len(relay.states)
    pcsc.present(pcsc.card(FELICA_ATR, bytes.fromhex(felica(99))))
    handled(agent, lambda: len(decisions(agent)) == 2, "the second decision")
    assert decisions(agent) == ["granted", "unknown_card"]
    pins(agent, lambda: any(s.state for s in red.states), "the red light")
    assert len(relay.states) == changes  # the relay never moved for the unknown card
    raw = [felica(1), felica(99)]
    text = Path(agent.store.path).read_bytes()
    assert not any(r.encode() in text for r in raw)


def test_reader_unplugged_raises_an_alarm_and_clears_it(agent: Agent, pcsc: PcscStack) -> None:
    pcsc.stop()
    handled(
        agent,
        lambda: any(
            e["type"] == "reader_offline" and e["state"] == "raised" for e in outbox(agent)
        ),
        "reader_offline within 5 s",
    )
    pcsc.start()
    handled(
        agent,
        lambda: any(
            e["type"] == "reader_offline" and e["state"] == "cleared" for e in outbox(agent)
        ),
        "reader_offline to clear",
        timeout_s=10,
    )
    pcsc.present(pcsc.card(FELICA_ATR, bytes.fromhex(felica(2))))
    handled(agent, lambda: "granted" in decisions(agent), "a tap after the reader came back")


def test_probe_finds_the_pcsc_reader_or_says_what_it_sees(tmp_path: Path, pcsc: PcscStack) -> None:
    from edge.probe import probe

    device = sim_config(tmp_path)
    text = device.config.read_text()
    text = text.replace('kind = "sim"', f'kind = "pcsc"\nmatch = "{READER}"', 1)
    text = text.replace('kind = "sim"', 'kind = "pcsc"\nmatch = "SONY FeliCa RC-S300"', 1)
    device.config.write_text(text)
    found = {f.item: f for f in probe(load_config(device.config))}
    assert found["reader gate-east-in"].ok
    assert READER in found["reader gate-east-in"].detail
    assert not found["reader gate-east-out"].ok
    assert "PC/SC sees" in found["reader gate-east-out"].detail
    assert READER in found["reader gate-east-out"].detail
