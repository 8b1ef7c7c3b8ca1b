"""The sites bench's traffic: paced device events at each site, and a watch on the bridges.

A publisher process (spawned: the bench's own process runs paho threads) runs one paho
client per site, publishing for all of that site's devices at QoS 1 with a window of
unacknowledged messages. Each site's events are spread evenly over the phase: event k of a
site with D devices is device k mod D's next seq, due at k / rate; an event's `ts` is the
moment it is handed to paho, so commit time - ts is the end-to-end lag. Device i's seqs run
on from one phase to the next, so the log sees one gap-free sequence per device.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edge.link import topics

CARD_REFS = [hashlib.sha256(f"card-{i}".encode()).hexdigest() for i in range(3000)]


def iso(t: float) -> str:
    """Return `t` as the contract's UTC text, to the millisecond."""
    ms = round(t * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def crossing(root: str, site: str, device: str, seq: int, t: float) -> tuple[str, bytes]:
    """Return the topic and payload of one crossing of `device`'s door, lobby to staff."""
    body = (
        f'{{"v":1,"id":"{device}:{seq}","seq":{seq},"device":"{device}","ts":"{iso(t)}",'
        f'"clock_synced":true,"kind":"access","type":"crossing","door":"{device}",'
        f'"from_zone":"lobby","to_zone":"staff-area",'
        f'"card_ref":"{CARD_REFS[(seq * 7 + len(device)) % len(CARD_REFS)]}"}}'
    )
    return topics.event(root, site, device, "access"), body.encode()


@dataclass(frozen=True)
class SitePlan:
    """What one site publishes in a phase: its devices' events first_seq..first_seq+per-1."""

    site: str
    port: int
    username: str | None
    password: str | None
    devices: tuple[str, ...]
    first_seq: int
    per_device: int

    @property
    def total(self) -> int:
        """Return how many events the site publishes."""
        return len(self.devices) * self.per_device

    def ids(self) -> list[str]:
        """Return the ids of the events the plan publishes."""
        last = self.first_seq + self.per_device
        return [f"{d}:{s}" for d in self.devices for s in range(self.first_seq, last)]


@dataclass
class SiteResult:
    """What a site's publisher did: acknowledged, refused, and how late it fell behind."""

    site: str
    published: int = 0
    failed: int = 0
    late_s: float = 0.0
    errors: list[str] = field(default_factory=list)


def _publish_site(plan: SitePlan, duration_s: float, window: int, start: float) -> SiteResult:
    result = SiteResult(plan.site)
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=plan.username or f"pub-{plan.site}",
        protocol=mqtt.MQTTv5,
    )  # fmt: skip
    if plan.username is not None:
        client.username_pw_set(plan.username, plan.password)
    client.max_inflight_messages_set(window)
    client.max_queued_messages_set(0)
    free = threading.Semaphore(window)
    lock = threading.Lock()
    done = threading.Event()
    total = plan.total

    def on_publish(c: object, u: object, mid: int, reason: Any, props: object) -> None:
        with lock:
            if reason.is_failure:
                result.failed += 1
                if len(result.errors) < 3:
                    result.errors.append(str(reason))
            else:
                result.published += 1
            finished = result.published + result.failed == total
        free.release()
        if finished:
            done.set()

    client.on_publish = on_publish
    client.connect("127.0.0.1", plan.port)
    client.loop_start()
    try:
        step = duration_s / total if total else 0.0
        n = len(plan.devices)
        for k in range(total):
            due = start + k * step
            ahead = due - time.time()
            if ahead > 0:
                time.sleep(ahead)  # pacing the schedule, not waiting for a condition
            else:
                result.late_s = max(result.late_s, -ahead)
            free.acquire()
            seq = plan.first_seq + k // n
            topic, payload = crossing("edge", plan.site, plan.devices[k % n], seq, time.time())
            client.publish(topic, payload, qos=1)
        if total and not done.wait(600):
            result.errors.append(f"{total - result.published - result.failed} never acknowledged")
    finally:
        client.disconnect()
        client.loop_stop()
    return result


def _publisher_process(
    plans: Sequence[SitePlan], duration_s: float, window: int, ready: Any, go: Any, out: Any
) -> None:
    ready.set()
    go.wait()
    start = time.time() + 0.2
    results: list[SiteResult] = [SiteResult(p.site) for p in plans]

    def run(i: int) -> None:
        try:
            results[i] = _publish_site(plans[i], duration_s, window, start)
        except Exception as error:  # reported, not raised: the bench prints what broke
            results[i].errors.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(plans))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put(results)


class Publisher:
    """Publish `plans` over `duration_s` from a child process; `wait()` returns the results."""

    def __init__(self, plans: Sequence[SitePlan], duration_s: float, window: int = 50) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._ready, self._go, self._out = ctx.Event(), ctx.Event(), ctx.Queue()
        self._process = ctx.Process(
            target=_publisher_process,
            args=(list(plans), duration_s, window, self._ready, self._go, self._out),
        )
        self._process.start()
        if not self._ready.wait(60):
            raise RuntimeError("the publisher process did not start in 60 s")

    def go(self) -> float:
        """Start publishing; return the wall time the schedule starts at (about)."""
        self._go.set()
        return time.time() + 0.2

    def wait(self, timeout_s: float) -> list[SiteResult]:
        """Return each site's result once the process is done."""
        results: list[SiteResult] = self._out.get(timeout=timeout_s)
        self._process.join(30)
        return results

    def kill(self) -> None:
        """End the process if it still runs."""
        if self._process.is_alive():
            self._process.kill()
            self._process.join(10)


class BridgeWatch:
    """Follow every site's bridge state at the centre (a console account that reads it)."""

    def __init__(self, port: int, ca: Path, username: str, password: str, sites: list[str]):
        self.states: dict[str, list[tuple[float, str]]] = {s: [] for s in sites}
        self.cond = threading.Condition()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=username, protocol=mqtt.MQTTv5
        )
        self.client.username_pw_set(username, password)
        self.client.tls_set(ca_certs=str(ca), tls_version=ssl.PROTOCOL_TLS_CLIENT)
        filters = [(topics.bridge_state("edge", s), 1) for s in sites]
        self.client.on_connect = lambda c, *a: c.subscribe(filters)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        site = message.topic.split("/")[1]
        with self.cond:
            if site in self.states:
                self.states[site].append((time.time(), message.payload.decode(errors="replace")))
            self.cond.notify_all()

    def state(self, site: str) -> str | None:
        """Return the last state the site's bridge said ("1" or "0"), if any."""
        with self.cond:
            return self.states[site][-1][1] if self.states[site] else None

    def wait(self, sites: Sequence[str], state: str, timeout_s: float) -> bool:
        """Wait until every one of `sites` last said `state`."""
        with self.cond:
            return self.cond.wait_for(
                lambda: all(self.states[s] and self.states[s][-1][1] == state for s in sites),
                timeout_s,
            )

    def close(self) -> None:
        """Disconnect."""
        self.client.disconnect()
        self.client.loop_stop()
