"""Door actions: one signed command to many devices at once, each device's answer, audited.

A console user's action (unlock a door once, hold it open, lockdown, a fire reset, ...)
becomes one Ed25519-signed command per device that serves the door or zone, `issued_by` the
user, published together with an MQTT 5 response topic and correlation data. Each device's
answer is gathered within a timeout: accepted, refused with the device's own reason, or no
answer. Every device's outcome is a row of the audit trail (console.users.audit).

Which devices serve what comes from the provisioned configurations (`SITE/devices/*.toml`,
console.claims).
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import sqlite3
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import ValidationError

from console.claims import Claims, Registry
from console.log import CentralLog
from console.mqtt import ConsoleClient, ConsoleLinkError
from console.users import audit
from edge.commands import sign
from edge.errors import EdgeError
from edge.link import topics
from edge.link.payloads import CommandReply

log = logging.getLogger(__name__)
TIMEOUT_S: Final = 5.0  # how long a device has to answer
MAX_PARALLEL: Final = 64  # commands in flight at once (the client allows 256 waiting)
# A command's validity: short, so a device that was cut off when it was sent and gets it from
# the broker's queue later refuses it (devices allow 5 s of clock skew on top).
LIFETIME: Final = timedelta(seconds=15)

Result = Literal["accepted", "refused", "no_answer"]


@dataclass(frozen=True)
class DoorAction:
    """What one door button or `edge-console door` verb sends."""

    action: str  # the key of console.users.ACTIONS
    command: str  # the signed command's name
    args: dict[str, Any]


DOOR_ACTIONS: Final = {
    "unlock": DoorAction("door.unlock", "unlock", {}),
    "reset": DoorAction("door.alarm_reset", "alarm-reset", {}),
    "hold": DoorAction("door.hold", "hold-open", {"on": True}),
    "normal": DoorAction("door.normal", "hold-open", {"on": False}),
}


class ActionError(EdgeError, ValueError):
    """An action cannot be sent: an unknown door or zone, no key, no broker; says what to do."""


@dataclass(frozen=True)
class Outcome:
    """One device's answer to one command."""

    device: str
    result: Result
    reason: str = ""  # the device's reason code and detail, for a refusal

    def text(self) -> str:
        """Return `device: accepted`, `device: refused: reason` or `device: no answer`."""
        if self.result == "refused":
            return f"{self.device}: refused: {self.reason}"
        if self.result == "no_answer" and self.reason:
            return f"{self.device}: no answer ({self.reason})"
        return f"{self.device}: {'accepted' if self.result == 'accepted' else 'no answer'}"


@dataclass(frozen=True)
class ActionResult:
    """What one action did on every device it was sent to."""

    action: str
    target: str
    outcomes: tuple[Outcome, ...]

    @property
    def failed(self) -> list[str]:
        """Return the devices that refused or did not answer."""
        return [o.device for o in self.outcomes if o.result != "accepted"]


class Site:
    """The site's doors and the devices that drive them, from the provisioned configurations."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry

    def __repr__(self) -> str:
        return f"<Site {self.registry!r}>"

    def devices(self) -> list[Claims]:
        """Return the provisioned devices that drive doors, by id."""
        found = (self.registry.claims(p.stem) for p in self.registry.devices_dir.glob("*.toml"))
        return sorted((c for c in found if c is not None and c.doors), key=lambda c: c.device)

    def unreadable(self) -> dict[str, str]:
        """Return {device: why} for the configurations that cannot be used: never reached."""
        return self.registry.unreadable()

    def unreached(self) -> str:
        """Return one line naming the devices no action can reach, or "" if there are none."""
        found = self.unreadable()
        if not found:
            return ""
        named = "; ".join(f"{device} ({why})" for device, why in list(found.items())[:20])
        more = f"; and {len(found) - 20} more" if len(found) > 20 else ""
        return f"not reached, their configuration is unusable: {named}{more}"

    def none_to_send(self, what: str) -> ActionError:
        """Return the error for an action that found no device: why, and what to check."""
        unreached = self.unreached()
        where = f"{self.registry.devices_dir} for site {self.registry.site}"
        return ActionError(
            f"{what}: no device to send it to in {where}"
            + (f"; {unreached}" if unreached else "; check --site-dir and --site")
        )

    def doors(self) -> dict[str, Claims]:
        """Return {door: the device that drives it}."""
        return {door: c for c in self.devices() for door in c.doors}

    def device_of(self, door: str) -> str:
        """Return the device that drives `door`; ActionError naming the doors if none."""
        claims = self.doors().get(door)
        if claims is None:
            unreached = self.unreached()
            raise ActionError(
                f"no door {door[:64]!r} on this site; doors: {self._names()}"
                + (f"; {unreached}" if unreached else "")
            )
        return claims.device

    def lockdown_devices(self, zones: Sequence[str] = (), doors: Sequence[str] = ()) -> list[str]:
        """Return the devices to lock down: every door device, or those of `zones`/`doors`.

        A device locks all of its doors down together; a zone is served by every device
        with a door into it.
        """
        devices = self.devices()
        if not zones and not doors:
            return [c.device for c in devices]
        # Only a zone some door leads into can be locked down: a zone that is only ever
        # outside a door would select no device.
        known_zones = {inside for c in devices for _, inside in c.doors.values()}
        for zone in zones:
            if zone not in known_zones:
                shown = ", ".join(sorted(known_zones)) or "none"
                raise ActionError(f"no zone {zone[:64]!r} behind any door; zones: {shown}")
        chosen = {self.device_of(door) for door in doors}
        chosen |= {c.device for c in devices for _, inside in c.doors.values() if inside in zones}
        return sorted(chosen)

    def passback_devices(self, zone: str | None = None) -> list[str]:
        """Return the devices that may hold a card's position: every door device, or those
        with a door into or out of `zone` (or serving it); ActionError naming the zones."""
        devices = self.devices()
        if zone is None:
            return [c.device for c in devices]
        chosen = [
            c.device
            for c in devices
            if zone in c.zones or any(zone in sides for sides in c.doors.values())
        ]
        if not chosen:
            known = {z for c in devices for sides in c.doors.values() for z in sides}
            shown = ", ".join(sorted(known)) or "none"
            raise ActionError(f"no zone {zone[:64]!r} at any door; zones: {shown}")
        return chosen

    def fire_devices(self, door: str | None = None) -> list[str]:
        """Return the devices with a fire input (or the device of `door`)."""
        if door is not None:
            return [self.device_of(door)]
        return [c.device for c in self.devices() if c.fire_inputs]

    def _names(self) -> str:
        return ", ".join(sorted(self.doors())) or "none provisioned"


def site_slug(registry: Path) -> str | None:
    """Return the site id edge-provision's registry holds (read-only), or None."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{registry}?mode=ro", uri=True)) as db:
            row = db.execute("SELECT slug FROM site LIMIT 1").fetchone()
    except sqlite3.Error:
        return None
    return None if row is None else str(row[0])


def password_file_of(site_dir: Path, account: str, given: Path | None) -> Path | None:
    """Return `account`'s password file: the one given, else SITE/accounts/ACCOUNT.password."""
    default = site_dir / "accounts" / f"{account}.password"
    return given if given is not None or not default.is_file() else default


def console_client(
    host: str, port: int, account: str, password_file: Path | None, ca_file: Path | None
) -> ConsoleClient:
    """Return a client (not connected yet) for a broker account of role console.

    The broker takes the account name as the client id whatever is sent, so it is sent.
    """
    return ConsoleClient(
        host,
        port,
        client_id=account,
        username=account,
        password=password_file.read_text().strip() if password_file else None,
        persistent=False,
        ca_file=str(ca_file) if ca_file else None,
    )


def load_command_key(path: Path) -> Ed25519PrivateKey:
    """Read the console's command key (from edge-provision console-key); refuse a loose file."""
    try:
        mode = path.stat().st_mode & 0o077
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise ActionError(
            f"command key {path}: cannot read it ({type(exc).__name__}); "
            "make one with: edge-provision console-key --out FILE"
        ) from None
    if mode:
        raise ActionError(f"command key {path} is readable by others: chmod 600 {path}")
    if not isinstance(key, Ed25519PrivateKey):
        raise ActionError(f"command key {path} is not an Ed25519 key")
    return key


class Commander:
    """Sends signed commands through one broker connection (opened at the first action)."""

    def __init__(
        self,
        client: ConsoleClient,
        key: Ed25519PrivateKey,
        *,
        site: str,
        account: str,
        root: str = topics.DEFAULT_ROOT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.client = client
        self.key = key
        self.site, self.account, self.root = site, account, root
        self.clock = clock
        self.timeout_s = timeout_s
        self._started = False
        self._start_lock = threading.Lock()
        client.listen_for_replies(topics.replies_filter(root, site, account=account))

    def __repr__(self) -> str:
        return f"<Commander {self.root}/{self.site} as {self.account} {self.client!r}>"

    def close(self) -> None:
        """Disconnect from the broker; idempotent."""
        with self._start_lock:
            if self._started:
                self.client.close()
                self._started = False

    def send(
        self,
        devices: Sequence[str],
        name: str,
        args: dict[str, Any],
        issued_by: str,
        on_outcome: Callable[[Outcome], None] = lambda outcome: None,
    ) -> list[Outcome]:
        """Send command `name` to every device at once; return each one's outcome.

        `on_outcome` hears each answer as it comes, on the calling thread; a device whose
        path fails inside the console is `no answer`, and the others' outcomes still come.
        """
        if not devices:
            return []
        try:
            self._start()
        except ConsoleLinkError as error:
            raise ActionError(str(error)) from None
        outcomes: dict[int, Outcome] = {}
        with ThreadPoolExecutor(min(MAX_PARALLEL, len(devices))) as pool:
            sent = {
                pool.submit(self._one, device, name, args, issued_by): (i, device)
                for i, device in enumerate(devices)
            }
            for future in as_completed(sent):
                i, device = sent[future]
                try:
                    outcome = future.result()
                except Exception:  # one device's failure must not hide the others' answers
                    log.exception("command %s to %s failed in the console", name, device)
                    outcome = Outcome(device, "no_answer", "console error")
                outcomes[i] = outcome
                on_outcome(outcome)
        return [outcomes[i] for i in range(len(devices))]

    def _start(self) -> None:
        with self._start_lock:
            if not self._started:
                self.client.start()
                self._started = True

    def _one(self, device: str, name: str, args: dict[str, Any], issued_by: str) -> Outcome:
        envelope = sign(
            self.key,
            device=device,
            name=name,
            args=args,
            issued_by=issued_by,
            lifetime=LIFETIME,
            now=self.clock(),
        )
        try:
            raw = self.client.request(
                topics.command(self.root, self.site, device, name),
                envelope,
                topics.reply(self.root, self.site, device, self.account),
                secrets.token_bytes(16),
                self.timeout_s,
            )
        except (ConsoleLinkError, RuntimeError):  # paho: the link went down while publishing
            return Outcome(device, "no_answer")
        return _judge(device, raw)


def _judge(device: str, raw: bytes | None) -> Outcome:
    """Turn a device's reply (untrusted bytes) into its outcome."""
    if raw is None:
        return Outcome(device, "no_answer")
    try:
        reply = CommandReply.model_validate(json.loads(raw))
    except (ValueError, ValidationError, RecursionError):  # RecursionError: nested too deep
        return Outcome(device, "refused", "malformed reply")
    if reply.device != device:
        return Outcome(device, "refused", "the reply names another device")
    if reply.ok:
        return Outcome(device, "accepted")
    detail: str = reply.reason
    if reply.detail:  # "refused" says nothing the detail does not
        detail = reply.detail if reply.reason == "refused" else f"{reply.reason}: {reply.detail}"
    return Outcome(device, "refused", detail[:200])


def perform(
    log: CentralLog,
    commander: Commander,
    *,
    user: str,
    action: str,
    target: str,
    devices: Sequence[str],
    name: str,
    args: dict[str, Any],
    on_outcome: Callable[[Outcome], None] = lambda outcome: None,
) -> ActionResult:
    """Send one action to `devices` as `user`; audit it before, and each outcome as it comes.

    The audit says `TARGET: sending to DEVICES` first, so an action that dies on its way
    still left its trace, then one row per device as its answer arrives.
    """
    audit(log, user, action, f"{target}: sending to {', '.join(devices) or 'no device'}")

    def heard(outcome: Outcome) -> None:
        audit(log, user, action, f"{target}: {outcome.text()}")
        on_outcome(outcome)

    try:
        outcomes = commander.send(devices, name, args, user, heard)
    except ActionError as error:
        audit(log, user, action, f"{target}: not sent: {error}")
        raise
    return ActionResult(action, target, tuple(outcomes))
