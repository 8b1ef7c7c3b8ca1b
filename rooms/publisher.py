"""What the service sends: the building view and Home Assistant's messages, when they change.

Everything it sends is retained (QoS 1), so only a change is sent again; after the link comes
back, or Home Assistant says `online` on its birth topic, everything is sent once more.
Discovery configs are rebuilt only when the entities change (a door or a counted zone
appears) or everything is due: building them costs far more than a step. The config topics
sent are kept in the journal, so an entity gone while the service was down still gets its
empty retained config. Home Assistant's messages can never stop the view: a failure building
them is counted (`failures`) and logged once until they build again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Protocol

from edge.link import topics
from rooms import homeassistant as ha
from rooms.config import ServiceConfig
from rooms.journal import Journal
from rooms.view import BuildingView

log = logging.getLogger(__name__)

Entities = tuple[tuple[tuple[str, str], ...], tuple[str, ...]]


class Link(Protocol):
    """Where the service publishes: `rooms.mqtt.RoomsLink`, or a test's own."""

    @property
    def connected(self) -> bool: ...

    def publish(self, topic: str, payload: str, *, retain: bool = True) -> None: ...

    def start(self, timeout_s: float = 10.0) -> None: ...

    def close(self) -> None: ...


class Publisher:
    """Sends what changed through the link, and keeps the latest view in the journal."""

    def __init__(self, config: ServiceConfig, link: Link, journal: Journal) -> None:
        self._config = config
        self._link = link
        self._journal = journal
        self._view_topic = topics.rooms_view(config.mqtt.root, config.site)
        self._ha_prefix = f"{config.homeassistant.prefix}/"
        self._sent: dict[str, str] = {}  # topic: the payload last sent (retained)
        self._entities: Entities | None = None
        self._kept: str | None = None  # the view last kept in the journal
        self._everything = True
        self._ha_failing = False
        self.failures = 0
        try:
            self._ha_topics: set[str] = set(journal.ha_topics())
        except Exception:
            log.exception("the journal could not give the Home Assistant topics last sent")
            self._ha_topics = set()

    def __repr__(self) -> str:
        return f"<Publisher {self._view_topic} sent={len(self._sent)}>"

    def again(self) -> None:
        """Send everything at the next `publish` (the link is back, or HA asked)."""
        self._everything = True

    def publish(
        self,
        view: BuildingView,
        doors: Mapping[str, bool | None],
        door_devices: Mapping[str, str],
        counts: Mapping[str, int],
    ) -> None:
        """Send the view and HA states (and configs) that changed since they were last sent."""
        compared = view.model_dump_json(exclude={"at"})  # the time alone is no change
        self._keep(view, compared)
        if not self._link.connected:
            self._everything = True
            return
        everything, self._everything = self._everything, False
        wanted = [(self._view_topic, compared)]
        if self._config.homeassistant.enabled:
            wanted += self._home_assistant(view, doors, door_devices, counts, everything)
        for topic, payload in wanted:
            if not everything and self._sent.get(topic) == payload:
                continue
            self._send(topic, view.model_dump_json() if topic == self._view_topic else payload)
            if payload:
                self._sent[topic] = payload
            else:
                self._sent.pop(topic, None)

    def _home_assistant(
        self,
        view: BuildingView,
        doors: Mapping[str, bool | None],
        door_devices: Mapping[str, str],
        counts: Mapping[str, int],
        everything: bool,
    ) -> list[tuple[str, str]]:
        """Return HA's configs (when due) and states; on a failure none, counted and logged."""
        wanted: list[tuple[str, str]] = []
        try:
            entities = (tuple(sorted(door_devices.items())), tuple(sorted(counts)))
            if everything or entities != self._entities:
                configs = ha.discovery(
                    self._config, doors=door_devices, counted_zones=sorted(counts)
                )
                sent = {t for t in self._sent if t.startswith(self._ha_prefix)}
                previous = self._ha_topics | sent
                wanted += ha.remove(previous, configs) + configs
                self._entities = entities
                self._remember({topic for topic, _ in configs})
            wanted += ha.states(view, doors, dict(counts), root=self._config.mqtt.root)
        except Exception:
            self.failures += 1
            if not self._ha_failing:
                log.exception("Home Assistant's messages could not be built (logged once)")
            self._ha_failing = True
            self._entities = None  # build the configs again at the next publish
            return []
        if self._ha_failing:
            log.info("Home Assistant's messages build again")
        self._ha_failing = False
        return wanted

    def _remember(self, config_topics: set[str]) -> None:
        if config_topics == self._ha_topics:
            return
        try:
            self._journal.save_ha_topics(sorted(config_topics))
            self._ha_topics = config_topics
        except Exception:
            log.exception("the journal could not keep the Home Assistant topics")

    def _keep(self, view: BuildingView, compared: str) -> None:
        if compared == self._kept:
            return
        try:
            self._journal.save_view(view.model_dump_json())
            self._kept = compared
        except Exception:
            log.exception("the journal could not keep the view")

    def _send(self, topic: str, payload: str) -> None:
        try:
            self._link.publish(topic, payload, retain=True)
        except Exception:
            log.exception("publishing to %s failed", topic)
            self._everything = True
