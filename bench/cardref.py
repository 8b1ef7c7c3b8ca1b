"""Card references: cost per reference against a plain HMAC, and a 100k-card import.

One reference is scrypt (edge.cardref: N=2^8, r=10, p=1) keyed by the site card key; the
baseline in the same run is HMAC-SHA256 of the same text. It prints median, p95 and p99 of
single references, then the time to reference an HR import of N cards one by one (what a
loop over `card_reference` costs) and with `card_references` (threads on every core).
The attacker's side is an estimate, not a measurement: see docs/threat-model.md.
Figures are printed, never asserted.

    python bench/cardref.py [--calls 2000] [--cards 100000]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import platform
import ssl
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.cardref import SCRYPT_N, SCRYPT_P, SCRYPT_R, card_reference, card_references

KEY = bytes(range(32))
GPU_RATE_N14_R8 = 7_760  # scrypt N=2^14 r=8 p=1 per second, RTX 5090 (hashcat -m 8900)
YEAR_S = 365.25 * 24 * 3600


def pct(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return statistics.median(ordered), pick(0.95), pick(0.99)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith(("model name", "Model")):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "cpu unknown"


def timed(step: Callable[[str], object], calls: int) -> list[float]:
    samples = []
    for n in range(calls):
        start = time.perf_counter()
        step(f"0114{n:012X}")
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--cards", type=int, default=100_000)
    args = parser.parse_args()
    print(
        f"# {platform.machine()} {cpu_model()}, {os.cpu_count()} cores, "
        f"Python {sys.version.split()[0]}, {ssl.OPENSSL_VERSION}; "
        f"scrypt N=2^{SCRYPT_N.bit_length() - 1} r={SCRYPT_R} p={SCRYPT_P}, "
        f"{128 * SCRYPT_N * SCRYPT_R // 1024} KiB per reference"
    )
    timed(lambda ident: card_reference(KEY, "felica", ident), 50)  # warm up
    old = timed(
        lambda ident: hmac.new(KEY, f"felica:{ident}".encode(), hashlib.sha256).hexdigest(),
        args.calls,
    )
    new = timed(lambda ident: card_reference(KEY, "felica", ident), args.calls)
    for name, samples, unit in (("HMAC-SHA256", old, 1000), ("scrypt ref", new, 1)):
        p50, p95, p99 = pct(samples)
        scale = "us" if unit == 1000 else "ms"
        print(
            f"{name:12} p50 {p50 * unit:8.3f} p95 {p95 * unit:8.3f} p99 {p99 * unit:8.3f} {scale}"
            f"  ({args.calls} calls)"
        )
    print(f"ratio (median): {statistics.median(new) / statistics.median(old):,.0f}x the HMAC")

    cards = [("felica", f"0114{n:012X}") for n in range(args.cards)]
    start = time.perf_counter()
    card_references(KEY, cards[: args.cards // 10], workers=1)
    serial_s = (time.perf_counter() - start) * 10
    start = time.perf_counter()
    card_references(KEY, cards)
    batch_s = time.perf_counter() - start
    print(
        f"{args.cards:,} cards: one by one {serial_s:6.1f} s (from a tenth), "
        f"card_references on {os.cpu_count()} cores {batch_s:6.1f} s"
    )

    work = SCRYPT_N * SCRYPT_R
    gpu_rate = GPU_RATE_N14_R8 * (2**14 * 8) / work
    years = 2**48 / gpu_rate / YEAR_S
    print(
        f"attacker estimate (not measured): {gpu_rate:,.0f} guesses/s per RTX 5090, "
        f"2^48 IDms in {years:.1f} GPU-years, half that ({years / 2:.1f}) on average"
    )


if __name__ == "__main__":
    main()
