"""A site catching up with the centre after a WAN cut, through the generated bridge.

Three real mosquittos on loopback as `tests/wan.py` starts them (a site broker with the
configuration `broker config` and `bridge site` wrote, the central broker with what
`bridge ca` and `bridge central` wrote, TLS between them) and the site's link cut for real.
While cut, one device account publishes --events access events (about 0.5 KB each, as a
device sends them) to the site broker; then the link is restored and the clock runs:

* reconnect: restore -> the centre holds the bridge's state "1" again (its 1 s backoff);
* catch-up: "1" -> every held-back event at a persistent subscriber at the centre;
* baseline, in the same run: the same events published straight to the central broker
  (over TLS, at the same subscriber): the broker and subscriber's own pace.

Figures are printed, never asserted.

    python bench/bridge_catch_up.py [--events 20000] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.link import topics
from tests.wan import ROOT, Client, Wan, start_wan

SITE, DEVICE = "bench-site", "gate-1"


def payloads(first: int, count: int) -> list[bytes]:
    """Return access events shaped (and sized) like a gate's."""
    out = []
    for seq in range(first, first + count):
        body = {
            "v": 1, "id": f"{DEVICE}:{seq}", "seq": seq, "ts": "2026-12-01T00:12:03.412Z",
            "clock_synced": True, "kind": "access", "type": "granted", "door": "gate-east",
            "reader": "gate-east-in", "card_ref": f"{seq:064x}", "from_zone": "lobby",
            "to_zone": "staff-area", "groups": ["staff", "floor-3"], "decision": "granted",
            "reason": "rule staff-weekdays", "authenticated": False, "credentials_version": 41,
            "note": "x" * 140,
        }  # fmt: skip
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


def publish_all(client: Client, topic: str, batch: list[bytes]) -> None:
    """Publish at QoS 1 as fast as the broker acknowledges, then wait for the last PUBACK."""
    infos = [client.client.publish(topic, payload, qos=1) for payload in batch]
    for info in infos:
        info.wait_for_publish(60)


def received(centre: Client, prefix: str) -> int:
    with centre.cond:
        return len(centre.event_ids.get(prefix, ()))


def run(wan: Wan, centre: Client, events: int, first: int) -> tuple[float, float, float]:
    site = wan.sites[SITE]
    device = wan.client(site.broker.port, DEVICE, site.password(DEVICE))
    prefix = topics.device_prefix(ROOT, SITE, DEVICE)
    state = topics.bridge_state(ROOT, SITE)
    site.link.cut()
    centre.wait_for(lambda m: [x.payload for x in centre.on(state)][-1:] == [b"0"], "state 0")
    before = received(centre, prefix)
    publish_all(device, topics.event(ROOT, SITE, DEVICE, "access"), payloads(first, events))
    device.close()
    restored = time.perf_counter()
    site.link.restore()
    centre.wait_for(lambda m: [x.payload for x in centre.on(state)][-1:] == [b"1"], "state 1")
    linked = time.perf_counter()
    centre.wait_for(
        lambda m: len(centre.event_ids.get(prefix, ())) >= before + events, "catch-up", 600
    )
    done = time.perf_counter()
    # Baseline: the same number of events straight into the central broker.
    direct = wan.client(wan.central.port, "tap", wan.tap_password, client_id="bench-direct")
    other = topics.device_prefix(ROOT, SITE, "gate-direct")
    batch = [p.replace(DEVICE.encode(), b"gate-direct", 1) for p in payloads(first, events)]
    before = received(centre, other)
    start = time.perf_counter()
    publish_all(direct, topics.event(ROOT, SITE, "gate-direct", "access"), batch)
    centre.wait_for(lambda m: len(centre.event_ids.get(other, ())) >= before + events, "direct")
    baseline = time.perf_counter() - start
    direct.close()
    return linked - restored, done - linked, baseline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"{platform.python_implementation()} {platform.python_version()}, {args.events} events")
    with tempfile.TemporaryDirectory() as tmp:
        wan = start_wan(Path(tmp), (SITE,), (DEVICE,))
        try:
            centre = wan.client(
                wan.central.port,
                "collector",
                wan.central_password("collector"),
                subscribe=(topics.events_filter(ROOT, SITE), topics.bridge_state(ROOT, SITE)),
                persistent=True,
            )
            results = [run(wan, centre, args.events, 1 + i * args.events) for i in range(args.runs)]
        finally:
            wan.close()
    for name, index in (("reconnect", 0), ("catch-up", 1), ("baseline (direct)", 2)):
        values = [r[index] for r in results]
        print(f"{name:>18}: median {statistics.median(values):.2f} s (runs: "
              + ", ".join(f"{v:.2f}" for v in values) + ")")  # fmt: skip
    catch_up = statistics.median(r[1] for r in results)
    baseline = statistics.median(r[2] for r in results)
    print(f"catch-up rate {args.events / catch_up:,.0f} events/s; direct {args.events / baseline:,.0f}"
          f" events/s; catch-up / direct time {catch_up / baseline:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
