"""End to end through a real PC/SC stack: virtual card inserted -> relay energised.

pcscd with the vpcd virtual reader (in a network namespace, as the tests run it) and a
virtual FeliCa card. Phase A times the whole agent: insertion -> PcscCardReader -> queue ->
core -> committed -> strike relay energised (gpiozero MockFactory). Phase B, in the same run,
times a bare pyscard client: insertion -> UID read. vpcd's own card poll (~400 ms) dominates
both, so compare the ratio. Needs root, pcscd and vsmartcard-vpcd (./check installs them).

    python bench/pcsc.py [--taps 30]
"""

from __future__ import annotations

import argparse
import queue
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

from gpiozero.pins.mock import MockFactory
from smartcard import scard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.app import build_agent, hardware_reader
from edge.system import SystemClock
from firmware_config.loader import load_config
from simulator.pins import idle_inputs
from simulator.readers import SimCardReader
from tests.edge.agent_fixtures import enrol, felica, sim_config
from tests.edge.readers.pcsc_stack import FELICA_ATR, READER, PcscStack

RNG = random.Random(1)


def taps(
    stack: PcscStack, card_id: str, n: int, done: queue.Queue[float], idle: threading.Event
) -> list[float]:
    card = stack.card(FELICA_ATR, bytes.fromhex(card_id))
    out = []
    for _ in range(n):
        time.sleep(RNG.uniform(0, 0.45))  # a random phase against pcscd's reader poll
        start = time.monotonic()
        card.insert()
        out.append((done.get(timeout=10) - start) * 1000)
        card.remove()
        stack.wait_reader(False)
        idle.wait(5)
    return out


def agent_phase(stack: PcscStack, n: int) -> list[float]:
    tmp = Path(tempfile.mkdtemp(prefix="bench-pcsc-"))
    device = sim_config(tmp)
    text = device.config.read_text().replace(
        'kind = "sim"', f'kind = "pcsc"\nmatch = "{READER}"\ndebounce_s = 0.0', 1
    )
    device.config.write_text(text)
    enrol(device.store, range(n + 5), ["gate-east"])
    config = load_config(device.config)
    factory = MockFactory()

    def readers(cfg, referencer, card_keys):  # type: ignore[no-untyped-def]
        return (
            SimCardReader(cfg.id, referencer)
            if cfg.kind == "sim"
            else hardware_reader(cfg, referencer, card_keys)
        )

    agent, startup = build_agent(
        config,
        card_key=device.key,
        pin_factory=factory,
        clock=SystemClock(),
        reader_factory=readers,
    )
    idle_inputs(factory, config)
    relay = factory.pin(17)
    done: queue.Queue[float] = queue.Queue()
    idle = threading.Event()
    idle.set()

    def watch() -> None:  # the relay pin, as a logic analyser would
        was = False
        while not stopping.is_set():
            now = relay.state
            if now and not was:
                done.put(time.monotonic())
            was = bool(now)
            time.sleep(0.0005)

    stopping = threading.Event()
    agent.start(startup)
    loop = threading.Thread(target=agent.run, daemon=True)
    loop.start()
    threading.Thread(target=watch, daemon=True).start()
    time.sleep(1.0)  # let the reader thread find the virtual reader

    results = []
    for i in range(n):  # a different card each time: the same one would meet anti-passback
        results += taps(stack, felica(i), 1, done, idle)
        factory.pin(27).drive_high()  # walk through: the strike relocks on close
        factory.pin(27).drive_low()
        deadline = time.monotonic() + 5
        while relay.state and time.monotonic() < deadline:
            time.sleep(0.001)
    stopping.set()
    agent.stop()
    loop.join(5)
    agent.close()
    return results


def bare_phase(stack: PcscStack, n: int) -> list[float]:
    done: queue.Queue[float] = queue.Queue()
    stop, idle = threading.Event(), threading.Event()

    def run() -> None:
        hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        state = scard.SCARD_STATE_UNAWARE
        while not stop.is_set():
            hr, res = scard.SCardGetStatusChange(ctx, 500, [(READER, state)])
            if hr != 0:
                continue
            event = res[0][1]
            present_before = state & scard.SCARD_STATE_PRESENT
            state = event & ~scard.SCARD_STATE_CHANGED
            if event & scard.SCARD_STATE_PRESENT and not present_before:
                idle.clear()
                hr, handle, proto = scard.SCardConnect(ctx, READER, scard.SCARD_SHARE_SHARED, 3)
                hr, _ = scard.SCardTransmit(handle, proto, [0xFF, 0xCA, 0, 0, 0])
                scard.SCardDisconnect(handle, scard.SCARD_LEAVE_CARD)
                done.put(time.monotonic())
            elif not event & scard.SCARD_STATE_PRESENT:
                idle.set()
        scard.SCardReleaseContext(ctx)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    time.sleep(0.6)
    out = taps(stack, felica(999), n, done, idle)
    stop.set()
    thread.join(2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--taps", type=int, default=30)
    args = parser.parse_args()
    stack = PcscStack(Path(tempfile.mkdtemp(prefix="bench-pcscd-")))
    stack.start()
    try:
        bare = bare_phase(stack, args.taps // 2)
        agent = agent_phase(stack, args.taps)
        bare += bare_phase(stack, args.taps - args.taps // 2)
    finally:
        stack.stop()

    def fmt(xs: list[float]) -> str:
        ordered = sorted(xs)
        return f"median {statistics.median(ordered):6.0f} ms  p95 {ordered[int(0.95 * (len(ordered) - 1))]:6.0f}  min {ordered[0]:5.0f}  max {ordered[-1]:5.0f}"

    print(f"# pcscd + vpcd, virtual FeliCa card, {args.taps} insertions each")
    print(f"insertion -> strike relay energised (whole agent)  {fmt(agent)}")
    print(f"insertion -> UID read (bare pyscard, same pcscd)    {fmt(bare)}")
    print(f"ratio of medians: {statistics.median(agent) / statistics.median(bare):.2f}")


if __name__ == "__main__":
    main()
