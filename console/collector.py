"""The collector: every device's events, status and occupancy into the central log.

A collector takes one or more sites. For each it subscribes, in its own persistent MQTT 5
session (it never expires), to the devices' events, status and occupancy, the rooms
service's view and the site's bridge state; each message is acknowledged to the broker only
after it is stored or refused, so neither a collector restart nor a broker restart loses an
event. The subscriptions are plain, never `$share` ones: mosquitto restores plain ones with
the session after its own restart and not shared ones. Several collectors may take the same
sites for redundancy (each receives every message; the log stores each event once, keyed by
its site and id) or different sites to share the load.

Each message is judged alone: read under limits (`console.intake`), then checked against
what its device was provisioned with in its own site's directory (`console.claims`). A
message that fails is refused with its reason, kept aside without its payload
(`console.refusals`), acknowledged, and raises the device's console alarm; it never holds
back another message. Only a failure of the database itself (disk full, locked) leaves a
batch unacknowledged, to be delivered again. Messages wait in one lane per device of each
site, drained in turn behind a per-device rate budget (`console.lanes`), so a device that
floods delays nobody else.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from console import refusals
from console.anchor import Anchorer
from console.claims import Registry
from console.judged import (
    UNKNOWN,
    Judged,
    Refuse,
    claim,
    parsed,
    rooms,
)
from console.lanes import Lanes
from console.log import CentralLog, open_log
from console.mqtt import ConsoleClient, Message
from console.refusals import BAD_MESSAGES, CLAIM_REFUSED, Refusal
from edge.core.clock import utc_text
from edge.link import topics

log = logging.getLogger(__name__)

BATCH = 500
NEVER = 0xFFFFFFFF  # MQTT 5: a session expiry interval that never ends
BATCH_WAIT_S = 0.02
RETRY_S: Final = 1.0  # between attempts to store a batch while the database is failing
# Per device: the agent drains its outbox at about 11,200 events/s at most (bench/link.py,
# x86-64 on loopback; a Raspberry Pi is slower), so an honest device never exceeds this.
RATE_PER_S: Final = 15_000.0
BURST: Final = 30_000.0


class Collector:
    """Runs until `close()`: receive, judge and store in batches, then acknowledge."""

    def __init__(
        self,
        log_target: str | Path,
        *,
        host: str,
        port: int,
        sites: Mapping[str, Path] | None = None,
        site_dir: Path | None = None,
        site: str | None = None,
        root: str = "edge",
        username: str | None = None,
        password: str | None = None,
        client_id: str = "console-collector",
        ca_file: str | None = None,
        rate_per_s: float = RATE_PER_S,
        burst: float = BURST,
        anchorer: Anchorer | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        """Take `sites` ({site id: its directory}), or one `site` in `site_dir`."""
        if sites is None:
            if site is None or site_dir is None:
                raise ValueError(
                    "a collector takes sites={site: directory}, or site= and site_dir="
                )
            sites = {site: site_dir}
        elif site is not None or site_dir is not None:
            raise ValueError("give a collector sites= or site= with site_dir=, not both")
        if not sites:
            raise ValueError("a collector takes at least one site")
        self.registries = {name: Registry(directory, name) for name, directory in sites.items()}
        self.log = open_log(log_target)
        self.clock = clock  # the console's time: receive times, and what device times face
        self._anchorer = anchorer  # signs the chains' heads into a file outside, on a schedule
        self.root = root
        self._prefix = f"{root}/"
        self.received = 0
        self.stored = 0
        self.rejected = 0  # messages refused (their own, over the budget, or by the log)
        self.accepted = 0  # messages judged good (stored, or already stored)
        self.over_budget = 0
        # Per site: how far behind its newest event was when its last batch was stored.
        self.lag_s: dict[str, float] = {}
        self.log_failing_since: datetime | None = None  # while the database fails writes
        self.lanes: Lanes[Message] = Lanes(rate_per_s, burst)
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._listeners: list[Callable[[list[str]], None]] = []
        self._lost_at: datetime | None = self._last_heard()
        self.client = ConsoleClient(
            host,
            port,
            client_id=client_id,
            username=username,
            password=password,
            persistent=True,
            # The session never expires: the broker keeps every event for the console however
            # long it is away (up to the broker's max_queued_messages).
            session_expiry_s=NEVER,
            manual_ack=True,
            ca_file=ca_file,
            on_connect=self._connected,
        )
        self.client.subscribe(*self.filters(), handler=self._receive)
        self._writer = threading.Thread(target=self._write_loop, name="collector", daemon=True)
        log.info(
            "collector %s: %s, sites %s, budget %.0f/s (burst %.0f) per device",
            client_id,
            root,
            ", ".join(f"{s} (claims from {r.devices_dir})" for s, r in self.registries.items()),
            rate_per_s,
            burst,
        )

    @property
    def sites(self) -> list[str]:
        """The sites this collector takes."""
        return list(self.registries)

    def filters(self) -> list[str]:
        """Return the topic filters this collector subscribes to, every site's in turn."""
        filters: list[str] = []
        for site in self.registries:
            filters += [
                topics.events_filter(self.root, site),
                topics.status_filter(self.root, site),  # the rooms service's status too
                topics.occupancy_filter(self.root, site),
                topics.rooms_view(self.root, site),  # the rooms service's building view
                topics.bridge_state(self.root, site),  # the site broker's link
                topics.bridge_stored(self.root, site),
            ]
        return filters

    def __repr__(self) -> str:
        return f"<Collector {self.client.client_id} stored={self.stored} rejected={self.rejected}>"

    def start(self) -> None:
        """Start writing, then connect (messages waiting in the session arrive at once)."""
        self._writer.start()
        self.client.start()

    def close(self) -> None:
        """Stop receiving, store what was received, then close; idempotent."""
        if self._stop.is_set():
            return
        self.client.close()
        self._stop.set()
        if self._writer.is_alive():
            self._writer.join(10)
        self.log.close()

    def on_stored(self, listener: Callable[[list[str]], None]) -> Callable[[], None]:
        """Call `listener` with the ids of each batch's new events once they are committed
        (on the writer's thread; keep it short). Return the way to remove it."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    def wait_for(self, predicate: Callable[[CentralLog], bool], timeout_s: float) -> bool:
        """Wait until `predicate(log)` holds after some batch; False after `timeout_s`."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self.log), timeout_s)

    # -- paho's thread: file the message in its device's lane, nothing more -----------------

    def _receive(self, message: Message) -> None:
        if not self.lanes.put(self._lane(message.topic), message):
            self.client.ack(message)  # over the device's budget: refused, counted, gone

    def _lane(self, topic: str) -> str:
        """Return `{site}/{device}` for a provisioned device of a site taken, else UNKNOWN."""
        if not topic.startswith(self._prefix):
            return UNKNOWN
        parts = topic[len(self._prefix) :].split("/", 2)
        registry = self.registries.get(parts[0])
        if registry is None or len(parts) < 3:
            return UNKNOWN
        device = parts[1]
        if registry.known(device) or device in (topics.ROOMS, topics.BRIDGE):
            return f"{parts[0]}/{device}"
        return UNKNOWN

    def _connected(self) -> None:
        now = self.clock()
        if self._lost_at is not None:
            self.lanes.credit((now - self._lost_at).total_seconds())
        self._lost_at = now

    def _last_heard(self) -> datetime | None:
        """When the newest stored event came (off the chains' heads: no scan of the events)."""
        newest = self.log.last_received_at()
        try:
            return datetime.fromisoformat(newest) if newest else None
        except ValueError:
            return None

    # -- the writer -------------------------------------------------------------------------

    def _write_loop(self) -> None:
        batch: list[Message] = []
        over: Mapping[str, int] = {}
        while True:
            self._anchor(self._anchorer.tick if self._anchorer else None)
            if not batch and not over:  # else the batch the database failed, again
                if self._stop.is_set() and not len(self.lanes):
                    break
                batch = self.lanes.take(BATCH, 0.2, BATCH_WAIT_S)
                over = self.lanes.over_budget()
                if not batch and not over:
                    continue
            try:
                stored = self._store(batch, over)
            except Exception as error:
                # The database itself failed (a bad message is refused alone, never here).
                # Unacknowledged, the batch is stored again once the database is back; the
                # broker holds what follows (and on stop, delivers it all to the next run).
                if self.log_failing_since is None:
                    log.error("the log failed; %d messages wait for it: %s", len(batch), error)
                    self.log_failing_since = self.clock()
                if self._stop.wait(RETRY_S):
                    break
                continue
            if self.log_failing_since is not None:
                log.warning("the log is back; storing again")
                self.log_failing_since = None
            for message in batch:
                self.client.ack(message)
            batch, over = [], {}
            for listener in list(self._listeners):
                listener(stored)
            with self._cond:
                self._cond.notify_all()
            self._lost_at = self.clock()
        self._anchor(self._anchorer.anchor if self._anchorer else None)  # as this run leaves it

    def _anchor(self, step: Callable[[CentralLog], None] | None) -> None:
        """Anchor the heads if it is time; a failure of the log there is the next write's."""
        if step is None:
            return
        try:
            step(self.log)
        except Exception:
            log.exception("anchoring failed")

    def _store(self, batch: list[Message], over: Mapping[str, int]) -> list[str]:
        now_dt = self.clock()
        now = utc_text(now_dt)
        judged: dict[str, Judged] = {}  # only the sites this batch has messages of
        strays: list[Refusal] = []  # refused before any site of ours could be named
        accepted = 0
        for message in batch:
            try:
                self._judge(message, judged, now_dt)
                accepted += 1
            except Refuse as refuse:
                site = self._site_of(message.topic)
                refusal = Refusal.of(
                    refuse.device, refuse.alarm, refuse.reason, message.topic, message.payload
                )
                (_share(judged, site, now_dt).refused if site else strays).append(refusal)
        for lane, count in over.items():
            site, _, device = lane.rpartition("/")
            reason = f"{count} messages over the budget of {self.lanes.rate_per_s:.0f}/s"
            refusal = Refusal(device, BAD_MESSAGES, reason, "", 0, "", count)
            taken = site in self.registries
            (_share(judged, site, now_dt).refused if taken else strays).append(refusal)
        stored: list[str] = []
        for site, share in judged.items():
            new = share.write(self.log, now)
            stored += new
            if share.newest is not None:
                self.lag_s[site] = (now_dt - datetime.fromisoformat(share.newest)).total_seconds()
        refused = strays + [r for share in judged.values() for r in share.refused]
        refusals.keep(self.log, strays, now)  # under no site of ours: the log's own
        for site, share in judged.items():
            refusals.keep(self.log, share.refused, now, site=site)
        # Counted once stored: a batch the database failed is judged again.
        self.received += len(batch)
        self.accepted += accepted
        self.over_budget += sum(over.values())
        self.stored += len(stored)
        self.rejected += sum(r.count for r in refused)
        if refused:  # one line a batch, however many: a flood must not flood the log
            first = refused[0]
            log.warning(
                "refused %d messages (from %s: %s%s)",
                sum(r.count for r in refused),
                first.device,
                first.reason,
                ", …" if len(refused) > 1 else "",
            )
        return stored

    def _site_of(self, topic: str) -> str | None:
        """Return the site a topic is under if this collector takes it, else None."""
        if not topic.startswith(self._prefix):
            return None
        site = topic[len(self._prefix) :].split("/", 1)[0]
        return site if site in self.registries else None

    def _judge(self, message: Message, judged: dict[str, Judged], now: datetime) -> None:
        site = self._site_of(message.topic)
        levels = None if site is None else topics.device_levels(message.topic, self.root, site)
        if site is None or levels is None or len(levels) < 2:
            raise Refuse("not under the topics of a site this collector takes", UNKNOWN)
        share = _share(judged, site, now)
        device, where, *rest = levels
        if device == topics.ROOMS and not rest:  # never a device's id: the rooms service's
            rooms(where, message.payload, share)
            return
        if device == topics.BRIDGE and not rest:  # never a device's id: the site broker's bridge
            share.link(where, message.payload)
            return
        claims = self.registries[site].claims(device)
        if claims is None:
            raise Refuse(f"device {device[:40]!r} is not provisioned", UNKNOWN, CLAIM_REFUSED)
        if not message.payload and where in ("status", "occupancy"):
            return  # a retained message cleared: nothing to store
        body = parsed(message.payload, device)
        if not isinstance(body, dict):
            raise Refuse(f"{where} payload is not a JSON object", device)
        if where == "status" and not rest:
            share.statuses.append((device, message.payload.decode()))
        elif where == "occupancy" and len(rest) == 1:
            claim(claims.occupancy(rest[0], body), device)
            order = share.plausible(body.get("ts"))
            ts = str(body["ts"]) if order is None else order
            share.occupancy.append((device, rest[0], body.get("count") or 0, body, ts))
            if "id" in body:  # an occupancy change is an event of the device's sequence too
                share.event(body, device)
        elif where == "events" and len(rest) == 1:
            claim(claims.event(rest[0], body), device)
            share.event(body, device)
        else:
            raise Refuse("not a status, event or occupancy topic", device)


def _share(judged: dict[str, Judged], site: str, now: datetime) -> Judged:
    """Return the batch's share of `site`, made at its first message."""
    share = judged.get(site)
    if share is None:
        share = judged[site] = Judged(site, now)
    return share
