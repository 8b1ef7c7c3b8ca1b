"""Signed commands: verify an envelope, refuse it with a reason, or turn it into a core event.

Checked in this order, each failure a reason code in the reply and a `command` event:
retained -> malformed -> wrong_device -> unsigned -> bad_signature -> expired -> replayed ->
unknown_door. Accepted commands become core events (or agent actions: ping, resync).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, get_args

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import ValidationError

from edge.core.events import Event, ResetAlarms, ResetFire, SetHoldOpen, SetLockdown, UnlockOnce
from edge.link.payloads import CommandEnvelope, CommandName
from edge.signing import SignatureError, key_id, verify

MAX_LIFETIME = timedelta(seconds=60)
CLOCK_SKEW = timedelta(seconds=5)
DOOR_COMMANDS = {"unlock", "hold-open", "alarm-reset"}
KNOWN = set(get_args(CommandName))


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
        "expires_at": expires.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "issued_by": issued_by,
        "key_id": key_id(private.public_key()),
    }
    fields["signature"] = base64.b64encode(private.sign(_signed_bytes(fields))).decode()
    return json.dumps(fields).encode()


class CommandVerifier:
    """Checks commands for one device; the nonce cache lives in the device store."""

    def __init__(
        self, device: str, public: Ed25519PublicKey, doors: set[str], nonces: NonceCache
    ) -> None:
        self.device = device
        self.public = public
        self.doors = doors
        self.nonces = nonces

    def __repr__(self) -> str:
        return f"<CommandVerifier {self.device} key={key_id(self.public)}>"

    def check(
        self, topic_name: str | None, payload: bytes, retained: bool, now: datetime
    ) -> Verdict:
        """Return the verdict on one message received on a `cmd/` topic."""
        if retained:
            return Verdict(
                "retained", "a retained command is never acted on; publish without retain"
            )
        try:
            raw = json.loads(payload)
        except (ValueError, UnicodeDecodeError):
            return Verdict("malformed", "the payload is not JSON")
        if not isinstance(raw, dict):
            return Verdict("malformed", "the payload must be a JSON object")
        name = raw.get("name")
        if not isinstance(name, str) or name not in KNOWN or (topic_name or name) not in KNOWN:
            shown = str(name if topic_name is None else topic_name)[:40]
            return Verdict(
                "unknown_command", f"no command {shown!r}; known: {', '.join(sorted(KNOWN))}"
            )
        if not raw.get("signature"):
            return Verdict("unsigned", "the envelope carries no signature")
        try:
            envelope = CommandEnvelope.model_validate(raw)
        except ValidationError as exc:
            return Verdict("malformed", _short(exc))
        if topic_name is not None and envelope.name != topic_name:
            return Verdict(
                "malformed", f"topic says {topic_name!r}, envelope says {envelope.name!r}", envelope
            )
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
            if expires.tzinfo is None:
                raise ValueError("expires_at has no time zone")
        except ValueError as exc:
            return Verdict("malformed", _short(exc), envelope)
        # Judge expiry by the latest time this device has ever seen: a clock stepped back (a
        # Pi without a real-time clock reboots in the past) must not revive old commands.
        latest = self.nonces.latest(now)
        if expires < latest - CLOCK_SKEW:
            return Verdict("expired", f"expired at {envelope.expires_at}", envelope)
        if expires > now + MAX_LIFETIME + CLOCK_SKEW:
            return Verdict(
                "expired", "expires more than 60 s ahead: commands must be short-lived", envelope
            )
        if not self.nonces.claim(envelope.nonce, expires, latest):
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


def _short(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


class NonceCache:
    """Nonces seen, kept in the store until they expire (so a restart does not forget them)."""

    def __init__(self, db: Any) -> None:
        self._db = db

    def latest(self, now: datetime) -> datetime:
        """Return the later of `now` and the latest time ever seen here, and remember it."""
        row = self._db.execute("SELECT value FROM device_state WHERE key = 'clock_hwm'").fetchone()
        seen = datetime.fromisoformat(row[0]) if row else None
        if seen is None or now > seen:
            self._db.execute(
                "INSERT INTO device_state (key, value) VALUES ('clock_hwm', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [now.isoformat()],
            )
            return now
        return seen

    def claim(self, nonce: str, expires: datetime, now: datetime) -> bool:
        """Record a nonce; return False if it was already used."""
        self._db.execute(
            "DELETE FROM nonces WHERE expires_at < ?", [(now - CLOCK_SKEW).isoformat()]
        )
        seen = self._db.execute("SELECT 1 FROM nonces WHERE nonce = ?", [nonce]).fetchone()
        if seen:
            return False
        self._db.execute(
            "INSERT INTO nonces (nonce, expires_at) VALUES (?, ?)", [nonce, expires.isoformat()]
        )
        return True
