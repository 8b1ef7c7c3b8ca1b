"""Inbound messages in the agent's loop: signed commands and credential snapshots.

The MQTT link only queues what arrives; this runs on the loop's thread, so a command drives
a door through the core exactly like a card does, and its `command` event is recorded with
the rest. A reply goes back to the (validated) MQTT 5 response topic with the correlation
data echoed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge.commands import CommandVerifier, NonceCache, Verdict
from edge.core.clock import Instant
from edge.core.controller import Controller
from edge.core.outputs import EventKind, Output, record
from edge.link import topics
from edge.link.messages import InboundMessage
from edge.link.payloads import CommandReply
from edge.snapshot import SnapshotError, parse
from edge.store import Store
from edge.store.credentials import SqliteCredentials

log = logging.getLogger(__name__)
MAX_COMMAND_BYTES = 8192

Reply = Callable[[str, bytes | None, bytes], None]


class Remote:
    """Turns inbound MQTT messages into core events, stored credentials and replies."""

    def __init__(
        self,
        *,
        root: str,
        site: str,
        device: str,
        controller: Controller,
        store: Store,
        credentials: SqliteCredentials,
        commands_key: Ed25519PublicKey,
        credentials_key: Ed25519PublicKey,
        refresh: Callable[[Instant], list[Output]],
    ) -> None:
        self.root, self.site, self.device = root, site, device
        self.controller = controller
        self.store = store
        self.credentials = credentials
        self.credentials_key = credentials_key
        self.refresh = refresh
        self.verifier = CommandVerifier(
            device, commands_key, set(controller.doors), NonceCache(store.db)
        )
        self.reply: Reply | None = None
        self.resubscribe: Callable[[], None] | None = None

    def __repr__(self) -> str:
        return f"<Remote {self.device} {self.verifier!r}>"

    def handle(self, message: InboundMessage, now: Instant) -> list[Output]:
        """Handle one inbound message; return the outputs to record and perform."""
        if message.topic == topics.credentials(self.root, self.site, self.device):
            return self._credentials(message, now)
        name = topics.command_name(message.topic, self.root, self.site, self.device)
        return self._command(name, message, now)

    def _credentials(self, message: InboundMessage, now: Instant) -> list[Output]:
        if not message.payload:
            return []  # the retained snapshot was cleared
        try:
            snapshot = parse(
                message.payload, self.credentials_key, site=self.site, device=self.device
            )
            with self.store.transaction():
                applied = self.credentials.apply(snapshot, now.utc)
        except (SnapshotError, sqlite3.Error) as exc:  # a duplicate card, a full disk
            log.warning("credential snapshot refused: %s", exc)
            return [record(EventKind.SYSTEM, "credentials_refused", now.utc, detail=str(exc)[:300])]
        return self.refresh(now) if applied else []

    def _command(self, name: str | None, message: InboundMessage, now: Instant) -> list[Output]:
        if len(message.payload) > MAX_COMMAND_BYTES:
            verdict = Verdict("malformed", f"a command is at most {MAX_COMMAND_BYTES} bytes")
        else:
            try:
                with self.store.transaction():  # the nonce is remembered in the store
                    verdict = self.verifier.check(name, message.payload, message.retained, now.utc)
            except sqlite3.Error as exc:
                verdict = Verdict("refused", f"the device store is busy or full ({exc})"[:200])
        outputs: list[Output] = []
        result: dict[str, object] = {}
        if verdict.ok and verdict.envelope is not None:
            if verdict.event is not None:
                outputs = self.controller.handle(verdict.event, now)
            elif verdict.envelope.name == "ping":
                result = {"pong": now.utc.isoformat(timespec="milliseconds")}
            elif verdict.envelope.name == "resync-credentials" and self.resubscribe is not None:
                self.resubscribe()
                result = {"credentials_version": self.credentials.version()}
            door = verdict.envelope.args.get("door")
            if isinstance(door, str) and door in self.controller.doors:
                machine = self.controller.doors[door]
                result.update(door=door, unlocked=machine.unlocked, mode=str(machine.mode))
            if verdict.envelope.name == "lockdown":
                result["lockdown"] = self.controller.lockdown
        envelope = verdict.envelope
        event = record(
            EventKind.COMMAND,
            "accepted" if verdict.ok else "refused",
            now.utc,
            command=envelope.name if envelope else name,
            reason=verdict.reason,
            detail=verdict.detail,
            issued_by=envelope.issued_by if envelope else None,
            replied=message.response_topic is not None,
        )
        if not verdict.ok:
            log.warning("command %s refused: %s %s", name, verdict.reason, verdict.detail)
        self._send_reply(message, verdict, result, name)
        return [event, *outputs]

    def _send_reply(
        self, message: InboundMessage, verdict: Verdict, result: dict[str, object], name: str | None
    ) -> None:
        if self.reply is None or message.response_topic is None:
            return
        body = CommandReply(
            device=self.device,
            command=verdict.envelope.name if verdict.envelope else name,
            ok=verdict.ok,
            reason=verdict.reason,
            detail=verdict.detail,
            result=result,
        )
        self.reply(
            message.response_topic, message.correlation, json.dumps(body.model_dump()).encode()
        )
