"""The security desk: lost, revoked and reinstated cards, and day passes, published at once.

The console changes the provisioning registry only through provisioning's functions, then
publishes every device's signed snapshot through the broker as the site's operator account
(the console's own account may not write credentials) and tells how many devices applied
it. The web page and the `edge-console card` / `pass` commands share this module; both
audit each action with its user and outcome on the console's audit chain (and provisioning
writes its own audit row naming the same user).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from console.log import CentralLog
from console.users import audit
from console.web_context import BrokerAccess
from edge.errors import EdgeError
from firmware_config.model import MqttConfig, TlsConfig
from provisioning.passes import DayPass, at_local, issue_pass, list_passes, return_pass, spares
from provisioning.publish import (
    Outcome,
    build_all,
    commit_bases,
    device_ids,
    forget_bases,
    outcome,
    publishing,
    send,
)
from provisioning.registry import Registry, RegistryError, change_cards, find_people

APPLY_WAIT_S = 3.0
"""How long the page waits for devices to apply before it shows the count (then polls)."""
STATUS_OF = {"card.lost": "lost", "card.revoke": "revoked", "card.reinstate": "active"}


class DeskError(EdgeError, ValueError):
    """An action at the desk that cannot be done; `field` names the input to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class NotPublished(DeskError):
    """The registry changed but the devices were not sent it: someone must publish."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(
            "broker",
            f"{what}: changed in the registry, not published: {reason}; run edge-provision publish",
        )


@dataclass(frozen=True)
class Done:
    """What an action did and how far its publish got."""

    what: str
    result: Outcome


def publisher_account(site_dir: Path) -> str:
    """Return the site's operator broker account whose password the site directory holds."""
    registry = Registry(site_dir / "registry.db")
    try:
        names = [a["username"] for a in registry.accounts() if a["role"] == "operator"]
    finally:
        registry.close()
    for name in names:
        if (site_dir / "accounts" / f"{name}.password").is_file():
            return name
    raise DeskError(
        "site_dir",
        f"{site_dir} holds no operator account's password; add one with "
        "edge-provision account add operator --role operator",
    )


class Desk:
    """Cards and passes of one site, published through one broker."""

    def __init__(
        self,
        site_dir: Path | None,
        broker: BrokerAccess | None,
        log: CentralLog,
        clock: Callable[[], float],
        publisher: str | None = None,
        wait_s: float = APPLY_WAIT_S,
    ) -> None:
        if site_dir is None or not (site_dir / "registry.db").is_file():
            raise DeskError(
                "site_dir", "the console has no --site-dir with a registry: it only watches"
            )
        self.site_dir = site_dir
        self.broker = broker  # None: the desk shows cards and passes but changes nothing
        self.log = log
        self.clock = clock
        self.publisher = publisher
        self.wait_s = wait_s

    def __repr__(self) -> str:
        where = f"{self.broker.host}:{self.broker.port}" if self.broker else "no broker"
        return f"<Desk {self.site_dir} via {where}>"

    def _acting(self) -> tuple[BrokerAccess, str]:
        """Return the broker and the operator account to publish as, or refuse before any
        change (a change that cannot be published would wait for someone's publish)."""
        if self.broker is None:
            raise DeskError(
                "broker",
                "this console only watches: serve it with the broker options (as for the "
                "doors page) to change cards and passes",
            )
        return self.broker, self.publisher or publisher_account(self.site_dir)

    def now(self) -> datetime:
        """Return the console's time (the clock it was given)."""
        return datetime.fromtimestamp(self.clock(), UTC)

    def find(self, who: str) -> list[dict[str, Any]]:
        """Return the people matching a staff number or part of a name, with their cards."""
        if len(who) > 100:
            raise DeskError("who", "who: a staff number or part of a name, at most 100 characters")
        with self._registry() as registry:
            return find_people(registry, who)

    def card(
        self,
        user: str,
        action: str,
        staff_no: str,
        card: str | None,
        may_unrevoke: bool = False,
    ) -> Done:
        """Mark a card lost or revoked, or reinstate it; publish; audit with the outcome.

        A revoked card is reinstated only by who may revoke (`may_unrevoke`): a guard
        reinstates a lost card that turned up, not a manager's revocation.
        """
        status = STATUS_OF[action]
        self._acting()
        try:
            with self._registry() as registry:
                changed = change_cards(
                    registry,
                    _staff(staff_no),
                    status,
                    _card(card),
                    f"console:{user}",
                    may_unrevoke=may_unrevoke,
                )
        except RegistryError as error:
            return self._refused(user, action, _field_of(str(error), "card"), error)
        what = f"staff {staff_no}: card {', '.join(c + '…' for c in changed)} {status}"
        return self._publish(user, action, what)

    def issue(self, user: str, staff_no: str, number: str, until: str) -> Done:
        """Lend a spare card to a person until HH:MM today (or the end of the site's day)."""
        self._acting()
        now = self.now()
        try:
            with self._registry() as registry:
                end = at_local(registry, now, until) if until.strip() else None
                given = issue_pass(registry, _staff(staff_no), number, now, end, f"console:{user}")
                zone = ZoneInfo(registry.site()["timezone"])
        except RegistryError as error:
            return self._refused(user, "pass.issue", _field_of(str(error), "spare"), error)
        until_text = f"{given.until.astimezone(zone):%Y-%m-%d %H:%M %Z}"
        what = f"pass {given.number} to staff {given.staff_no} until {until_text}"
        return self._publish(user, "pass.issue", what)

    def give_back(self, user: str, number: str) -> Done:
        """Take a spare card back: its pass stops everywhere once published."""
        self._acting()
        try:
            with self._registry() as registry:
                back = return_pass(registry, number, self.now(), f"console:{user}")
        except RegistryError as error:
            return self._refused(user, "pass.return", "spare", error)
        return self._publish(
            user, "pass.return", f"pass {back.number} of staff {back.staff_no} returned"
        )

    def passes(self) -> list[DayPass]:
        """Return the newest passes: live, returned or expired."""
        with self._registry() as registry:
            return list_passes(registry, self.now())

    def spares(self) -> list[dict[str, str]]:
        """Return the spare cards and who has each."""
        with self._registry() as registry:
            return spares(registry, self.now())

    def progress(self, version: int) -> Outcome:
        """Return how far `version` got, from the statuses in the console's log."""
        with self._registry() as registry:
            devices = device_ids(registry)
            # A log of many sites keys its devices `site/device` unless asked for one site's.
            site = str(registry.site()["slug"]) if self.log.keys_sites else None
        stored = self.log.devices(site=site)
        statuses: dict[str, dict[str, object] | None] = {}
        for device in devices:
            text = stored.get(device, {}).get("status")
            try:
                body = json.loads(text) if text else None
            except ValueError:
                body = None
            statuses[device] = body if isinstance(body, dict) else None
        return outcome(version, statuses)

    def _publish(self, user: str, action: str, what: str) -> Done:
        try:
            broker, account = self._acting()
            config = _mqtt(broker, account, self.site_dir)
            with publishing(self.site_dir), self._registry() as registry:
                site = registry.site()["slug"]
                built = build_all(registry, self.site_dir, now=self.now())
                try:
                    result = send(config, site, built, f"{account}-desk-{os.getpid()}", self.wait_s)
                except Exception:
                    forget_bases(registry, built)  # the broker may hold any of them
                    raise
                commit_bases(registry, built, result)
        # The registry has changed already: whatever stops the publish (the broker, paho,
        # a device file, a site without devices) is reported and audited, never a crash.
        except Exception as error:
            reason = str(error) or type(error).__name__
            audit(self.log, user, f"{action} not published", f"{what}: {reason}")
            raise NotPublished(what, reason) from None
        audit(self.log, user, action, f"{what}; {result.summary()}")
        return Done(what, result)

    def _refused(self, user: str, action: str, field: str, error: Exception) -> Done:
        audit(self.log, user, f"{action} refused", str(error))
        raise DeskError(field, str(error)) from None

    def _registry(self) -> closing[Registry]:
        return closing(Registry(self.site_dir / "registry.db"))


def _mqtt(broker: BrokerAccess, account: str, site_dir: Path) -> MqttConfig:
    return MqttConfig(
        host=broker.host,
        port=broker.port,
        root=broker.root,
        username=account,
        password_file=site_dir / "accounts" / f"{account}.password",
        tls=TlsConfig(ca_file=broker.ca_file) if broker.ca_file else None,
    )


def _staff(staff_no: str) -> str:
    staff_no = staff_no.strip()
    if not staff_no or len(staff_no) > 32:
        raise RegistryError("staff_no: give the person's staff number, e.g. K10234")
    return staff_no


def _card(card: str | None) -> str | None:
    card = (card or "").strip()
    if len(card) > 64:
        raise RegistryError("card: give the start of the card's reference, e.g. 3f9a2c1b")
    return card or None


def _field_of(message: str, otherwise: str) -> str:
    """Name the form field a refusal is about."""
    if message.startswith("until") or "not in the future" in message:
        return "until"
    if message.startswith(("staff_no", "no staff", "staff ")) and "spare" not in message:
        return "staff_no"
    return otherwise
