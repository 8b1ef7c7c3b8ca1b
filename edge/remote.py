"""Inbound messages in the agent's loop: signed commands, credential snapshots and their
deltas, and the crossings of peers (handed to `edge.peers`).

The MQTT link only queues what arrives; this runs on the loop's thread, so a command drives
a door through the core exactly like a card does, and its `command` event is recorded with
the rest. A reply goes back to the (validated) MQTT 5 response topic with the correlation
data echoed.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlite_utils import Database

from edge.commands import CommandVerifier, Verdict
from edge.core.clock import Clock, Instant, utc_text
from edge.core.controller import Controller
from edge.core.outputs import EventKind, Output, Record, record
from edge.credentials_freshness import CredentialRefresh
from edge.link import topics
from edge.link.messages import InboundMessage, SnapshotResult
from edge.link.payloads import CommandReply
from edge.peers import PeerCrossings
from edge.snapshot import SnapshotError, parse
from edge.snapshot_delta import parse as parse_delta
from edge.store import Store, outbox
from edge.store.connection import connect, write_transaction
from edge.store.credentials import SqliteCredentials
from edge.store.nonces import NonceCache

log = logging.getLogger(__name__)
SHOWN_NAME = 40  # how much of a topic level that is no command name goes into events


class ReplyChannel(Protocol):
    """What the remote side needs from the MQTT link."""

    def reply(self, topic: str, correlation: bytes | None, payload: bytes) -> None:
        """Publish a command reply to a validated response topic."""

    def resubscribe_credentials(self) -> None:
        """Ask the broker for the retained credential snapshot again."""


class NoReplies:
    """The reply channel of an agent without a broker: replies go nowhere."""

    def __repr__(self) -> str:
        return "<NoReplies>"

    def reply(self, topic: str, correlation: bytes | None, payload: bytes) -> None:
        """Drop the reply: nobody is connected to receive it."""

    def resubscribe_credentials(self) -> None:
        """Do nothing: there is no broker to ask."""


@dataclass(frozen=True)
class SnapshotVerifier:
    """Verifies credential snapshots for one device and applies them to a store.

    A set applied goes with its `credentials_applied` event, in the same transaction.
    """

    key: Ed25519PublicKey
    site: str
    device: str
    clock_synced: Callable[[], bool] = lambda: True

    def apply(
        self, payload: bytes, db: Database, now: Instant, *, delta: bool = False
    ) -> SnapshotResult:
        """Verify a snapshot (or a delta) and apply it on connection `db`; never raises.

        Everything is checked before the transaction starts; the check against what the
        store holds (base, version, floor) and the change are one transaction.
        """
        try:
            if delta:
                changes = parse_delta(payload, self.key, site=self.site, device=self.device)
                with write_transaction(db):
                    credentials = SqliteCredentials(db)
                    applied = credentials.apply_delta(changes, now.utc, recorded=True)
                    self._record(db, credentials, applied, now)
                return SnapshotResult(changes.version if applied else None)
            snapshot = parse(payload, self.key, site=self.site, device=self.device)
            with write_transaction(db):
                credentials = SqliteCredentials(db)
                applied = credentials.apply(snapshot, now.utc, recorded=True)
                self._record(db, credentials, applied, now)
        except (SnapshotError, sqlite3.Error) as exc:  # a duplicate card, a full disk
            return SnapshotResult(None, str(exc))
        return SnapshotResult(snapshot.version if applied else None)

    def _record(
        self, db: Database, credentials: SqliteCredentials, applied: bool, now: Instant
    ) -> None:
        if not applied:
            return
        meta = credentials.meta()
        event = record(
            EventKind.SYSTEM,
            "credentials_applied",
            now.utc,
            version=meta["version"],
            cards=meta["cards"],
            issued_at=meta["issued_at"],
        )
        outbox.append(db, self.device, [event.event], self.clock_synced())


class Snapshots(Protocol):
    """Where the remote side hands the credential snapshots it receives."""

    def submit(self, payload: bytes, now: Instant, *, delta: bool = False) -> SnapshotResult | None:
        """Apply a snapshot (or delta) now and return its result, or later (None; queued)."""

    def close(self) -> None:
        """Stop taking snapshots; idempotent."""


class InlineSnapshots:
    """Applies snapshots on the loop's own store connection, before the next event."""

    def __init__(self, verifier: SnapshotVerifier, store: Store) -> None:
        self.verifier = verifier
        self.store = store

    def __repr__(self) -> str:
        return f"<InlineSnapshots {self.verifier.device}>"

    def submit(self, payload: bytes, now: Instant, *, delta: bool = False) -> SnapshotResult:
        """Verify and apply the snapshot (or delta) at once; an empty one is nothing to do."""
        if not payload:
            return SnapshotResult(None)
        return self.verifier.apply(payload, self.store.db, now, delta=delta)

    def close(self) -> None:
        """Nothing to stop."""


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
        credentials: CredentialRefresh,
        commands_key: Ed25519PublicKey,
        clock_synced: Callable[[], bool],
        replies: ReplyChannel,
        snapshots: Snapshots,
        peers: PeerCrossings | None = None,
    ) -> None:
        self.root, self.site, self.device = root, site, device
        self.controller = controller
        self.store = store
        self.credentials = credentials
        self.replies = replies
        self.snapshots = snapshots
        self.peers = peers
        self.verifier = CommandVerifier(
            device, commands_key, set(controller.doors), NonceCache(store.db), clock_synced
        )
        # Replies wait until their command's event is stored and its outputs performed:
        # a console told "unlocked" finds the relay energised and the event in the outbox.
        self._replies: list[tuple[str, bytes | None, bytes]] = []

    def __repr__(self) -> str:
        return f"<Remote {self.device} {self.verifier!r} {self.snapshots!r}>"

    def send_replies(self) -> None:
        """Publish the replies of the commands handled since the last call (in order)."""
        waiting, self._replies = self._replies, []
        for topic, correlation, payload in waiting:
            self.replies.reply(topic, correlation, payload)

    def close(self) -> None:
        """Stop applying snapshots (after the one in hand); idempotent."""
        self.snapshots.close()

    def handle(self, message: InboundMessage, now: Instant) -> list[Output]:
        """Handle one inbound message; return the outputs to record and perform."""
        if message.topic == topics.credentials(self.root, self.site, self.device):
            return self._credentials(message, now)
        if message.topic == topics.credentials_delta(self.root, self.site, self.device):
            return self._credentials(message, now, delta=True)
        if self.peers is not None and (
            topics.crossing_levels(message.topic, self.root, self.site)
            or topics.positions_levels(message.topic, self.root, self.site)
        ):
            return self.peers.handle(message, now)
        name = topics.command_name(message.topic, self.root, self.site, self.device)
        return self._command(message.topic if name is None else name, message, now)

    def _credentials(
        self, message: InboundMessage, now: Instant, *, delta: bool = False
    ) -> list[Output]:
        if not message.payload:
            if delta:  # a full snapshot follows: a delta still waiting for the worker is void
                self.snapshots.submit(b"", now, delta=True)
            return []  # the retained snapshot (or delta) was cleared
        # With a worker, a large set is verified and written off the loop, so the doors
        # never wait; taps meanwhile use the old set, and the swap is one transaction.
        result = self.snapshots.submit(message.payload, now, delta=delta)
        return [] if result is None else self.snapshot_done(result, now)

    def snapshot_done(self, result: SnapshotResult, now: Instant) -> list[Output]:
        """Record the outcome of a snapshot; pick the new set up at once if it was applied."""
        if result.error is not None:
            log.warning("credential snapshot refused: %s", result.error)
            return [
                record(EventKind.SYSTEM, "credentials_refused", now.utc, detail=result.error[:300])
            ]
        return self.credentials.check(now) if result.version is not None else []

    def _command(self, name: str, message: InboundMessage, now: Instant) -> list[Output]:
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
                result = {"pong": utc_text(now.utc)}
            elif verdict.envelope.name == "resync-credentials":
                self.replies.resubscribe_credentials()
                result = {"credentials_version": self.credentials.credentials.version()}
            door = verdict.envelope.args.get("door")
            if isinstance(door, str) and door in self.controller.doors:
                machine = self.controller.doors[door]
                result.update(door=door, unlocked=machine.unlocked, mode=str(machine.mode))
            if verdict.envelope.name == "lockdown":
                result["lockdown"] = self.controller.lockdown
            result.update(_forgiven(outputs))
            verdict = _refused_by_core(verdict, outputs)
        envelope = verdict.envelope
        event = record(
            EventKind.COMMAND,
            "accepted" if verdict.ok else "refused",
            now.utc,
            command=envelope.name if envelope else name[:SHOWN_NAME],
            reason=verdict.reason,
            detail=verdict.detail,
            issued_by=envelope.issued_by if envelope else None,
            replied=message.response_topic is not None,
        )
        if not verdict.ok:
            shown = name[:SHOWN_NAME]
            log.warning("command %r refused: %s %r", shown, verdict.reason, verdict.detail)
        self._send_reply(message, verdict, result, name)
        return [event, *outputs]

    def _send_reply(
        self, message: InboundMessage, verdict: Verdict, result: dict[str, object], name: str
    ) -> None:
        if message.response_topic is None:
            return
        body = CommandReply(
            device=self.device,
            command=verdict.envelope.name if verdict.envelope else name[:SHOWN_NAME],
            ok=verdict.ok,
            reason=verdict.reason,
            detail=verdict.detail,
            result=result,
        )
        self._replies.append(
            (message.response_topic, message.correlation, json.dumps(body.model_dump()).encode())
        )


def _forgiven(outputs: list[Output]) -> dict[str, object]:
    """Return what a `forgive` changed here: whether the card had a position, and which."""
    for output in outputs:
        if isinstance(output, Record) and output.event.type == "anti_passback_card_forgiven":
            was = output.event.data.get("was_in")
            changed = bool(output.event.data.get("changed"))
            return {"had_position": was is not None, "was_in": was, "forgiven": changed}
    return {}


def _refused_by_core(verdict: Verdict, outputs: list[Output]) -> Verdict:
    """Return a refusal if the core turned a valid command down (a fire reset while the
    fire input is still active), so the sender learns it from the reply."""
    for output in outputs:
        if isinstance(output, Record) and output.event.type == "fire_reset_refused":
            inputs = ", ".join(map(str, output.event.data.get("inputs", ())))
            detail = f"the fire input is still active ({inputs}); reset once it has cleared"
            return Verdict("refused", detail, verdict.envelope, verdict.event)
    return verdict


class SnapshotWorker:
    """Verifies and applies credential snapshots on its own thread and store connection.

    It holds the latest snapshot and the latest delta apart: a delta never displaces the
    snapshot it is built on, and a pending snapshot is applied before a pending delta.
    """

    def __init__(
        self,
        verifier: SnapshotVerifier,
        store_path: Path,
        clock: Clock,
        done: Callable[[SnapshotResult], None],
    ) -> None:
        self.verifier = verifier
        self.store_path = store_path
        self.clock = clock
        self.done = done
        self._latest: bytes | None = None
        self._delta: bytes | None = None
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="credentials", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        pending = self._latest is not None or self._delta is not None
        return f"<SnapshotWorker {self.store_path} pending={pending}>"

    def submit(self, payload: bytes, now: Instant, *, delta: bool = False) -> None:
        """Queue a snapshot or delta; a newer one of the same kind replaces one not started.

        An empty delta drops the one waiting (the retained delta was cleared).
        """
        with self._cond:
            if delta:
                self._delta = payload or None
            else:
                self._latest = payload
            self._cond.notify()

    def close(self) -> None:
        """Stop after the snapshot in hand; idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(30)

    def _run(self) -> None:
        db = connect(self.store_path)
        try:
            while True:
                with self._cond:
                    self._cond.wait_for(
                        lambda: self._latest is not None or self._delta is not None or self._closed
                    )
                    if self._closed:
                        return
                    delta = self._latest is None
                    if delta:
                        payload, self._delta = self._delta, None
                    else:
                        payload, self._latest = self._latest, None
                assert payload is not None
                try:
                    result = self.verifier.apply(payload, db, self.clock.now(), delta=delta)
                except Exception as exc:  # never let the worker die
                    log.exception("credential snapshot worker failed")
                    result = SnapshotResult(None, f"{type(exc).__name__}: {exc}")
                self.done(result)
        finally:
            db.close()
