"""A big central log's rows and a mix of searches on it, shared by the console's benches.

`rows` yields plausible events in log order (a year of days, most in office hours: granted,
crossings, denied with a reason, door and alarm events) from any set of (site, door) places,
one device per door; `queries` draws the searches an operator makes (door + day, a door's
newest and a deep page, card prefix seen and never seen, denied + reason, one hour, and with
sites a site's newest page, its denied and its day). Both are seeded: the same arguments give
the same rows and the same searches.
"""

from __future__ import annotations

import calendar
import hashlib
import random
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from console.log import GENESIS, CentralLog, chain_hash
from console.search import Query

CARD_REFS = [hashlib.sha256(f"card-{i}".encode()).hexdigest() for i in range(3000)]
DOORS = [f"door-{floor}f-{side}" for floor in range(1, 9) for side in "abcdef"]  # 48
DENIED = ["unknown_card"] * 40 + ["out_of_schedule"] * 25 + ["expired"] * 10 + ["revoked"] * 10
DENIED += ["no_rule"] * 8 + ["anti_passback"] * 5 + ["not_yet_valid", "lockdown"]
YEAR_START = calendar.timegm((2026, 1, 1, 0, 0, 0))

Place = tuple[str | None, str]  # (site, door); None: the log's own site
HALL: tuple[Place, ...] = tuple((None, door) for door in DOORS)  # one site's doors


def card_refs(count: int) -> list[str]:
    """Return `count` card references (the first 3,000 are CARD_REFS)."""
    return [hashlib.sha256(f"card-{i}".encode()).hexdigest() for i in range(count)]


def pct(samples: list[float]) -> str:
    ordered = sorted(samples)
    return (
        f"p50 {statistics.median(ordered):7.1f} ms  p95 {at(ordered, 0.95):7.1f} ms  "
        f"p99 {at(ordered, 0.99):7.1f} ms  max {ordered[-1]:7.1f} ms  (n={len(ordered)})"
    )


def at(ordered: list[float], q: float) -> float:
    """Return the `q` quantile of sorted samples (nearest rank, as the benches print it)."""
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t * 1000) % 1000:03d}Z"


def day_times(rng: random.Random, day: int, count: int) -> list[float]:
    """`count` sorted times in one day, most of them in office hours."""
    base = YEAR_START + day * 86400
    times = [
        base + (rng.uniform(7 * 3600, 20 * 3600) if rng.random() < 0.9 else rng.uniform(0, 86400))
        for _ in range(count)
    ]
    times.sort()
    return times


def rows(
    count: int,
    days: int,
    seqs: dict[str, int],
    with_hash: bool,
    seed: int,
    places: Sequence[Place] = HALL,
    cards: Sequence[str] = CARD_REFS,
) -> Iterator[tuple[Any, ...]]:
    """Yield plausible events in log order (time order): access, door and alarm events, as
    (site, id, device, seq, ts, kind, type, door, card_ref, reason, body, received_at, hash).

    `seqs` keeps each device's last seq (one device per door; door names unique across
    sites). The hash is one chain over every row with `with_hash`, else GENESIS.
    """
    rng = random.Random(seed)
    head = GENESIS
    per_day, extra = divmod(count, days)
    for day in range(days):
        for t in day_times(rng, day, per_day + (1 if day < extra else 0)):
            site, door = rng.choice(places)
            seqs[door] += 1
            seq = seqs[door]
            ts = iso(t)
            event_id = f"{door}:{seq}"
            roll = rng.random()
            card: str | None = rng.choice(cards)
            reason: str | None
            if roll < 0.70:
                kind, type_, reason = "access", "granted", "granted"
            elif roll < 0.90:
                kind, type_, reason = "access", "crossing", None
            elif roll < 0.94:
                kind, type_, reason = "access", "denied", rng.choice(DENIED)
            elif roll < 0.995:
                kind, type_, reason, card = "door", rng.choice(("opened", "closed")), None, None
            else:
                kind, type_ = "alarm", rng.choice(("door_forced", "held_open"))
                reason, card = None, None
            # Canonical JSON by hand (sorted keys, no spaces): what console.log.canonical gives.
            body = (
                (f'{{"card_ref":"{card}",' if card else "{")
                + f'"clock_synced":true,"device":"{door}","door":"{door}","id":"{event_id}",'
                + f'"kind":"{kind}",'
                + (f'"reason":"{reason}",' if reason else "")
                + f'"seq":{seq},"ts":"{ts}","type":"{type_}","v":1}}'
            )
            if with_hash:
                head = chain_hash(head, body)
            yield (site, event_id, door, seq, ts, kind, type_, door, card, reason, body, ts, head)


def queries(
    log: CentralLog,
    n: int,
    seed: int,
    doors: Sequence[str] = DOORS,
    cards: Sequence[str] = CARD_REFS,
    sites: Sequence[str] = (),
) -> list[tuple[str, Query]]:
    """Return `n` (kind, query) searches on `log`, the kinds in turn, shuffled; with `sites`
    three kinds more that name a site."""
    rng = random.Random(seed)
    last_row = int(log.db.execute("SELECT max(row) FROM events").fetchone()[0])
    first_ts, last_ts = log.db.execute("SELECT min(ts), max(ts) FROM events").fetchone()
    first_day = calendar.timegm(time.strptime(first_ts[:10], "%Y-%m-%d"))
    days = max(1, (calendar.timegm(time.strptime(last_ts[:10], "%Y-%m-%d")) - first_day) // 86400)

    def day_start() -> float:
        return first_day + rng.randrange(days) * 86400

    makers: dict[str, Callable[[], Query]] = {
        "door + one day": lambda: Query(
            door=rng.choice(doors), since=iso(d := day_start()), until=iso(d + 86400)
        ),
        "door, newest page": lambda: Query(door=rng.choice(doors)),
        "card prefix (8 chars)": lambda: Query(card=rng.choice(cards)[:8]),
        # A card never seen (a visitor's, a typo): every row is looked at.
        "card prefix, no match": lambda: Query(card=f"{rng.randrange(16**8):08x}"),
        "denied + reason": lambda: Query(result="denied", reason=rng.choice(DENIED)),
        "since/until one hour": lambda: Query(
            since=iso(h := day_start() + rng.randrange(7, 20) * 3600), until=iso(h + 3600)
        ),
        "door, deep page (before=)": lambda: Query(
            door=rng.choice(doors), before=rng.randrange(1, max(2, last_row // 2))
        ),
    }
    if sites:
        makers["site, newest page"] = lambda: Query(site=rng.choice(sites))
        makers["site + denied"] = lambda: Query(site=rng.choice(sites), result="denied")
        makers["site + one day"] = lambda: Query(
            site=rng.choice(sites), since=iso(d := day_start()), until=iso(d + 86400)
        )
    kinds = list(makers)
    mix = [(kind, makers[kind]()) for kind in (kinds[i % len(kinds)] for i in range(n))]
    rng.shuffle(mix)
    return mix
