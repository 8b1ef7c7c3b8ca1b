"""Signed commands: verify an envelope, refuse it with a reason, or turn it into a core event.

Checked in this order, each failure a reason code in the reply and a `command` event:
retained -> malformed (too large) -> unknown_command (the topic level must be exactly a
command name) -> malformed (not JSON, too deep, another name than the topic's) ->
unsigned -> malformed (the envelope's fields) -> wrong_device -> bad_signature -> expired ->
replayed -> unknown_door.
Accepted commands become core events (or agent actions: ping, resync).

Expiry is judged against the later of the device clock and the replay high-water mark
(edge.store.nonces), so a clock stepped back does not revive old commands. A mark further
ahead of a synchronised clock than any accepted command could have set it (a console whose
clock ran ahead) is lowered to that bound, so commands work again within a minute.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from edge.core.clock import utc_text
from edge.core.events import (
    Event,
    ForgivePosition,
    ResetAlarms,
    ResetFire,
    SetHoldOpen,
    SetLockdown,
    UnlockOnce,
)
from edge.link.payloads import MAX_COMMAND_BYTES, CommandEnvelope, CommandName
from edge.signing import SignatureError, key_id, verify
from edge.store.guard import CLOCK_SKEW, LIFETIME_MS, MAX_LIFETIME, SKEW_MS, from_ms, ms
from edge.store.nonces import NonceCache

__all__ = ["CLOCK_SKEW", "MAX_LIFETIME", "CommandVerifier", "NonceCache", "Verdict", "sign"]

log = logging.getLogger(__name__)
MAX_DEPTH = 6  # an envelope is an object holding `args`, an object of scalars
# The furthest a mark can honestly be ahead of a synchronised clock: an accepted command's
# expiry, raised past once more by a skew when a fresh store takes over.
PLAUSIBLE_AHEAD_MS = LIFETIME_MS + 2 * SKEW_MS
DOOR_COMMANDS = {"unlock", "hold-open", "alarm-reset"}
KNOWN = set(get_args(CommandName))
CARD_REF = re.compile(r"[0-9a-f]{64}")
ZONE_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class Verdict:
    """What to do with one command message."""

    reason: str  # "accepted" or a refusal code
    detail: str = ""
    envelope: CommandEnvelope | None = None
    event: Event | None = None  # the core event to run, for accepted door/mode commands
    result: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Details go into events, logs and replies: never let a sender make them large.
        object.__setattr__(self, "detail", self.detail[:200])

    @property
    def ok(self) -> bool:
        """True if the command was accepted."""
        return self.reason == "accepted"


def _signed_bytes(fields: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in fields.items() if k != "signature"}
    return json.dumps(unsigned, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(
    private: Ed25519PrivateKey,
    *,
    device: str,
    name: str,
    args: dict[str, Any] | None = None,
    issued_by: str,
    lifetime: timedelta = timedelta(seconds=30),
    now: datetime | None = None,
) -> bytes:
    """Return a signed command envelope (the console's and provisioning's side)."""
    expires = (now or datetime.now(UTC)) + lifetime
    fields: dict[str, Any] = {
        "v": 1,
        "device": device,
        "name": name,
        "args": args or {},
        "nonce": secrets.token_hex(16),
        "expires_at": utc_text(expires),
        "issued_by": issued_by,
        "key_id": key_id(private.public_key()),
    }
    fields["signature"] = base64.b64encode(private.sign(_signed_bytes(fields))).decode()
    return json.dumps(fields).encode()


class CommandVerifier:
    """Checks commands for one device; the nonce cache lives in the device store."""

    def __init__(
        self,
        device: str,
        public: Ed25519PublicKey,
        doors: set[str],
        nonces: NonceCache,
        clock_synced: Callable[[], bool],
    ) -> None:
        self.device = device
        self.public = public
        self.doors = doors
        self.nonces = nonces
        self.clock_synced = clock_synced

    def __repr__(self) -> str:
        return f"<CommandVerifier {self.device} key={key_id(self.public)}>"

    def check(self, topic_name: str, payload: bytes, retained: bool, now: datetime) -> Verdict:
        """Return the verdict on one message received on `cmd/{topic_name}`.

        Any bytes on any topic level get a verdict; only a failing store raises (sqlite3).
        Call inside a store transaction: an accepted nonce is remembered there.
        """
        if retained:
            return Verdict(
                "retained", "a retained command is never acted on; publish without retain"
            )
        if len(payload) > MAX_COMMAND_BYTES:
            return Verdict("malformed", f"a command is at most {MAX_COMMAND_BYTES} bytes")
        if topic_name not in KNOWN:
            return Verdict(
                "unknown_command",
                f"no command {topic_name[:40]!r}; the topic level must be one of: "
                + ", ".join(sorted(KNOWN)),
            )
        try:
            raw = json.loads(payload)
        except (ValueError, RecursionError):  # RecursionError: nesting past Python's limit
            return Verdict("malformed", "the payload is not JSON")
        if not isinstance(raw, dict):
            return Verdict("malformed", "the payload must be a JSON object")
        if _depth(raw) > MAX_DEPTH:
            return Verdict("malformed", f"the payload is nested more than {MAX_DEPTH} deep")
        name = raw.get("name")
        if name != topic_name:
            shown = str(name)[:40] if isinstance(name, str) else type(name).__name__
            return Verdict(
                "malformed", f"the topic says {topic_name!r}, the envelope says {shown!r}"
            )
        if not raw.get("signature"):
            return Verdict("unsigned", "the envelope carries no signature")
        try:
            envelope = CommandEnvelope.model_validate(raw)
        except ValidationError as exc:
            return Verdict("malformed", _short(exc))
        if envelope.device != self.device:
            return Verdict(
                "wrong_device", f"for device {envelope.device!r}, this is {self.device!r}", envelope
            )
        try:
            signature = base64.b64decode(envelope.signature, validate=True)
            verify(self.public, signature, _signed_bytes(raw), f"command {envelope.name}")
        except (binascii.Error, ValueError, SignatureError) as exc:
            return Verdict("bad_signature", _short(exc), envelope)
        try:
            expires = datetime.fromisoformat(envelope.expires_at.replace("Z", "+00:00"))
            if expires.tzinfo is None or expires.utcoffset() is None:
                raise ValueError("expires_at has no UTC offset")
            expires_ms = ms(expires)
        except (ValueError, OverflowError) as exc:
            return Verdict("malformed", _short(exc), envelope)
        return self._judge_time(envelope, expires_ms, ms(now))

    def _judge_time(self, envelope: CommandEnvelope, expires_ms: int, now_ms: int) -> Verdict:
        synced = self.clock_synced()
        mark = self.nonces.mark()
        if synced and mark > now_ms + PLAUSIBLE_AHEAD_MS:
            lowered = now_ms + PLAUSIBLE_AHEAD_MS
            log.warning(
                "command mark %s is further ahead of the synchronised clock than any command "
                "could set it; lowered to %s",
                _text(mark),
                _text(lowered),
            )
            mark = lowered
            self.nonces.lower_mark(mark)
        latest = max(now_ms, mark)
        if expires_ms < latest - SKEW_MS:
            seen = "" if latest == now_ms else f"; this device has seen {_text(latest)}"
            return Verdict("expired", f"expired at {_text(expires_ms)}{seen}", envelope)
        if expires_ms > now_ms + LIFETIME_MS + SKEW_MS:
            return Verdict(
                "expired", "expires more than 60 s ahead: commands must be short-lived", envelope
            )
        if not self.nonces.claim(envelope.nonce, expires_ms, now_ms, synced):
            return Verdict("replayed", "this nonce was already used", envelope)
        return self._accept(envelope)

    def _accept(self, envelope: CommandEnvelope) -> Verdict:
        args, by = envelope.args, f"{envelope.issued_by}"
        door = args.get("door")
        if envelope.name in DOOR_COMMANDS and (not isinstance(door, str) or door not in self.doors):
            return Verdict(
                "unknown_door",
                f"no door {door!r} on this device; doors: {sorted(self.doors)}",
                envelope,
            )
        if envelope.name == "forgive":
            return _forgive(envelope, by)
        on = args.get("on")
        if envelope.name in {"lockdown", "hold-open"} and not isinstance(on, bool):
            return Verdict("malformed", "args.on must be true or false", envelope)
        event: Event | None = None
        match envelope.name:
            case "unlock":
                event = UnlockOnce(str(door), by)
            case "lockdown":
                event = SetLockdown(bool(on), by)
            case "hold-open":
                event = SetHoldOpen(str(door), bool(on), by)
            case "alarm-reset":
                event = ResetAlarms(str(door), by)
            case "fire-reset":
                event = ResetFire(by)
        return Verdict("accepted", "", envelope, event)


def _forgive(envelope: CommandEnvelope, by: str) -> Verdict:
    """Accept a valid `forgive` command, or refuse it naming the argument to fix."""
    card_ref, zone = envelope.args.get("card_ref"), envelope.args.get("zone")
    extra = sorted(set(envelope.args) - {"card_ref", "zone"})
    if extra:
        shown = ", ".join(str(key)[:20] for key in extra[:5])
        return Verdict("malformed", f"forgive takes card_ref and zone only, not: {shown}", envelope)
    if not isinstance(card_ref, str) or not CARD_REF.fullmatch(card_ref):
        return Verdict("malformed", "args.card_ref must be 64 lowercase hex digits", envelope)
    if zone is not None and (not isinstance(zone, str) or not ZONE_ID.fullmatch(zone)):
        return Verdict(
            "malformed", "args.zone must be a zone id (letters, digits, _ . -) or absent", envelope
        )
    return Verdict("accepted", "", envelope, ForgivePosition(card_ref, zone, by))


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def _text(value_ms: int) -> str:
    return utc_text(from_ms(value_ms))


def _depth(value: object) -> int:
    """Return how deep JSON containers nest in `value` (iteratively: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if deepest > MAX_DEPTH:
                return deepest
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest
