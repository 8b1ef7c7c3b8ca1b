"""Access-decision latency and memory per cardholder, in memory, at several scales.

For each size: N cardholders (1-3 of 50 groups each), 200 doors, rules giving every group
20 doors on an office-hours or an always-open schedule. It times 20,000 taps (90 % enrolled,
5 % unknown, 5 % revoked) three ways: a bare dict lookup of the card reference (the
baseline, measured in the same run), the pure decision, and the whole controller step
(decision, door machine, records). Memory per cardholder is what tracemalloc sees the
credential store allocate, divided by N. Figures are printed, never asserted.

    python bench/decision.py                 # 1k, 100k, 1M
    python bench/decision.py --sizes 1000 100000 --taps 50000
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import hmac
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, datetime
from datetime import time as clock_time

from edge.core.clock import Instant
from edge.core.controller import Controller
from edge.core.credentials import Credential, DenyReason, InMemoryCredentials
from edge.core.decision import Request, decide
from edge.core.events import CardPresented
from edge.core.policy import AccessPolicy, Rule
from edge.core.schedule import WEEKDAYS, NoHolidays, Schedule, TimeRange, Window
from edge.core.spec import (
    AntiPassback,
    CardSecurity,
    DeviceSpec,
    Direction,
    DoorSpec,
    FailMode,
    ReaderSpec,
    ZoneSpec,
)

GROUPS = [f"group-{i:02d}" for i in range(50)]
DOORS = [f"door-{i:03d}" for i in range(200)]
KEY = b"bench-site-key-not-a-secret"
WHEN = Instant.at(datetime(2026, 12, 1, 0, 30, tzinfo=UTC))  # Tuesday 09:30 in Tokyo


def card_ref(n: int) -> str:
    return hmac.new(KEY, f"felica:{n:016X}".encode(), hashlib.sha256).hexdigest()


def build_policy(rng: random.Random) -> AccessPolicy:
    office = Schedule("office", (Window(WEEKDAYS, TimeRange(clock_time(7), clock_time(20))),))
    rules = tuple(
        Rule(group, frozenset(rng.sample(DOORS, 20)), rng.choice(["office", "always"]))
        for group in GROUPS
    )
    return AccessPolicy(version=1, schedules={"office": office}, rules=rules)


def build_credentials(n: int, rng: random.Random) -> InMemoryCredentials:
    interned: dict[tuple[str, ...], frozenset[str]] = {}

    def groups() -> frozenset[str]:
        key = tuple(sorted(rng.sample(GROUPS, rng.randint(1, 3))))
        return interned.setdefault(key, frozenset(key))

    creds = (Credential(card_ref(i), groups()) for i in range(n))
    deny = {card_ref(n + i): DenyReason.REVOKED for i in range(max(1, n // 100))}
    return InMemoryCredentials(creds, deny)


def percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    ordered = sorted(samples_ns)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000  # noqa: E731
    return statistics.median(ordered) / 1000, pick(0.95), pick(0.99)


def time_each(fn: Callable[[str], object], refs: list[str]) -> list[int]:
    samples = []
    clock = time.perf_counter_ns
    for ref in refs:
        start = clock()
        fn(ref)
        samples.append(clock() - start)
    return samples


def run(n: int, taps: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    policy = build_policy(rng)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    store = build_credentials(n, rng)
    build_s = time.perf_counter() - t0
    per_card = (tracemalloc.get_traced_memory()[0] - before) / n
    tracemalloc.stop()

    door = rng.choice([d for d in DOORS if policy.rules_for(d)])
    refs = []
    for _ in range(taps):
        roll = rng.random()
        if roll < 0.90:
            refs.append(card_ref(rng.randrange(n)))
        elif roll < 0.95:
            refs.append(card_ref(10 * n + rng.randrange(n)))  # never enrolled
        else:
            refs.append(card_ref(n + rng.randrange(max(1, n // 100))))  # revoked

    spec = DeviceSpec(
        "bench",
        zones=(ZoneSpec("out"), ZoneSpec("in", anti_passback=AntiPassback.SOFT)),
        doors=(DoorSpec(door, "out", "in", FailMode.SECURE, has_contact=False),),
        readers=(ReaderSpec("r", door, Direction.IN),),
    )
    controller = Controller(spec, policy, store, NoHolidays())
    local = WHEN.utc.astimezone(controller._tz)

    def pure(ref: str) -> object:
        request = Request(ref, door, False, CardSecurity.UID, "in", None, AntiPassback.SOFT)
        return decide(
            request,
            utc=WHEN.utc,
            local=local,
            credentials=store,
            policy=policy,
            calendar=controller.calendar,
            lockdown=False,
        )

    def whole(ref: str) -> object:
        return controller.handle(CardPresented("r", ref), WHEN)

    baseline = time_each(store.find, refs)
    decisions = time_each(pure, refs)
    steps = time_each(whole, refs)
    b50, _, b99 = percentiles(baseline)
    d50, d95, d99 = percentiles(decisions)
    s50, s95, s99 = percentiles(steps)
    return {
        "cardholders": n,
        "bytes_per_cardholder": per_card,
        "build_s": build_s,
        "lookup_p50_us": b50,
        "lookup_p99_us": b99,
        "decide_p50_us": d50,
        "decide_p95_us": d95,
        "decide_p99_us": d99,
        "step_p50_us": s50,
        "step_p95_us": s95,
        "step_p99_us": s99,
        "decide_vs_lookup": d50 / b50 if b50 else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000, 100_000, 1_000_000])
    parser.add_argument("--taps", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(
        f"# {platform.machine()} {platform.processor() or ''} Python {sys.version.split()[0]}, "
        f"{len(GROUPS)} groups x {len(DOORS)} doors, {args.taps} taps per size"
    )
    print(
        f"{'cardholders':>11} {'B/card':>7} {'build s':>7} | {'lookup p50':>10} | "
        f"{'decide p50':>10} {'p95':>6} {'p99':>6} | {'step p50':>8} {'p95':>6} {'p99':>6} | "
        f"{'decide/lookup':>13}"
    )
    for n in args.sizes:
        r = run(n, args.taps, args.seed)
        print(
            f"{n:>11,} {r['bytes_per_cardholder']:>7.0f} {r['build_s']:>7.1f} | "
            f"{r['lookup_p50_us']:>8.2f}µs | "
            f"{r['decide_p50_us']:>8.2f}µs {r['decide_p95_us']:>6.2f} "
            f"{r['decide_p99_us']:>6.2f} | {r['step_p50_us']:>6.2f}µs {r['step_p95_us']:>6.2f} "
            f"{r['step_p99_us']:>6.2f} | {r['decide_vs_lookup']:>12.1f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
