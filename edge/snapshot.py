"""Credential snapshots: signed, versioned, compressed; one format for the file and for MQTT.

    {"format": "edge-credentials/1", "site": …, "device": … or "*", "version": 42,
     "issued_at": "2026-11-25T08:00:00.000Z", "key_id": "ab12cd34",
     "body": base64(zlib(JSON body)), "signature": base64(Ed25519 over the signed fields)}

The body holds the access policy, the credentials (by card reference, never names or raw
card ids) and the deny list. A credential of a card that proves itself (FeliCa Lite-S,
DESFire) carries its profile and the one key this device checks it with, diversified for
that card; the site's master key never leaves provisioning. A credential of a person with a
PIN carries its salted scrypt hash (`edge.pin_hash`), never the PIN. Provisioning builds and
signs; devices verify and apply.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.core.clock import utc_text
from edge.core.credentials import CardProfile, Credential, DenyReason
from edge.core.policy import AccessPolicy
from edge.core.schedule import ScheduleError
from edge.errors import EdgeError
from edge.pin_hash import PinError, parse_pin, pin_text
from edge.policy_json import policy_from_json, policy_to_json
from edge.signing import SignatureError, key_id, verify

FORMAT = "edge-credentials/1"
MAX_BODY = 256 * 1024 * 1024  # decompressed; a bigger body is refused, not inflated


class SnapshotError(EdgeError, ValueError):
    """A credential snapshot that cannot be trusted or applied; the message says why."""


@dataclass(frozen=True)
class Snapshot:
    """A verified credential snapshot, ready to apply."""

    site: str
    device: str
    version: int
    issued_at: datetime
    policy: AccessPolicy
    credentials: tuple[Credential, ...]
    deny: Mapping[str, DenyReason]
    card_keys: Mapping[str, bytes] = field(default_factory=dict)  # ref -> key, never logged

    def __repr__(self) -> str:
        return (
            f"<Snapshot v{self.version} {self.site}/{self.device} cards={len(self.credentials)} "
            f"denied={len(self.deny)} issued {self.issued_at:%Y-%m-%d %H:%M}Z>"
        )


def _signed_bytes(envelope: Mapping[str, Any]) -> bytes:
    fields = [
        str(envelope[k]) for k in ("format", "site", "device", "version", "issued_at", "body")
    ]
    return "\n".join(fields).encode()


class Prepared:
    """The credentials and deny list of snapshots, serialised and compressed once.

    Devices that take the same cards differ only in their policy, which the body holds last
    (its keys are sorted): each device's body continues a copy of the shared compressor.
    """

    def __init__(
        self,
        credentials: Iterable[Credential],
        deny: Mapping[str, DenyReason],
        card_keys: Mapping[str, bytes] | None = None,
    ) -> None:
        keys = card_keys or {}
        rows = [credential_row(c, keys.get(c.ref)) for c in credentials]
        self.cards = len(rows)
        denied = sorted([ref, str(reason)] for ref, reason in deny.items())
        head = f'{{"credentials":{_compact(rows)},"deny":{_compact(denied)},"policy":'
        self._deflate = zlib.compressobj(9)
        self._packed = self._deflate.compress(head.encode())

    def __repr__(self) -> str:
        return f"<Prepared cards={self.cards}>"

    def build(
        self,
        private: Ed25519PrivateKey,
        *,
        site: str,
        device: str,
        version: int,
        policy: AccessPolicy,
        issued_at: datetime | None = None,
    ) -> bytes:
        """Return one device's signed snapshot as UTF-8 JSON bytes."""
        deflate = self._deflate.copy()
        tail = f"{_compact(policy_to_json(policy))}}}".encode()
        packed = self._packed + deflate.compress(tail) + deflate.flush()
        envelope: dict[str, Any] = {
            "format": FORMAT,
            "site": site,
            "device": device,
            "version": version,
            "issued_at": _iso(issued_at or datetime.now(UTC)),
            "key_id": key_id(private.public_key()),
            "body": base64.b64encode(packed).decode(),
        }
        envelope["signature"] = base64.b64encode(private.sign(_signed_bytes(envelope))).decode()
        return json.dumps(envelope).encode()


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def build(
    private: Ed25519PrivateKey,
    *,
    site: str,
    device: str,
    version: int,
    policy: AccessPolicy,
    credentials: Iterable[Credential],
    deny: Mapping[str, DenyReason],
    issued_at: datetime | None = None,
    card_keys: Mapping[str, bytes] | None = None,
) -> bytes:
    """Return a signed snapshot as UTF-8 JSON bytes (provisioning's side)."""
    return Prepared(credentials, deny, card_keys).build(
        private, site=site, device=device, version=version, policy=policy, issued_at=issued_at
    )


def parse(data: bytes, public: Ed25519PublicKey, *, site: str, device: str) -> Snapshot:
    """Verify and decode a snapshot for this site and device; SnapshotError says what is wrong."""
    try:
        envelope = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise SnapshotError("credential snapshot is not JSON; was the file truncated?") from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise SnapshotError(f'credential snapshot: "format" must be "{FORMAT}"')
    missing = [
        k
        for k in ("site", "device", "version", "issued_at", "body", "signature")
        if k not in envelope
    ]
    if missing:
        raise SnapshotError(f"credential snapshot: missing fields {missing}")
    if envelope["site"] != site:
        raise SnapshotError(
            f"credential snapshot is for site {envelope['site']!r}, this device is in {site!r}"
        )
    if envelope["device"] not in (device, "*"):
        raise SnapshotError(
            f"credential snapshot is for device {envelope['device']!r}, not {device!r}"
        )
    if not isinstance(envelope["version"], int) or envelope["version"] < 1:
        raise SnapshotError("credential snapshot: version must be a whole number >= 1")
    try:
        signature = base64.b64decode(envelope["signature"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise SnapshotError("credential snapshot: signature is not base64") from None
    try:
        verify(
            public,
            signature,
            _signed_bytes(envelope),
            f"credential snapshot v{envelope['version']}",
        )
    except SignatureError as exc:
        raise SnapshotError(str(exc)) from None
    body = inflate(envelope["body"])
    try:
        issued_at = datetime.fromisoformat(str(envelope["issued_at"]).replace("Z", "+00:00"))
        rows = [read_credential(row) for row in body["credentials"]]
        credentials = tuple(credential for credential, _ in rows)
        card_keys = {c.ref: key for c, key in rows if key is not None}
        deny = {str(ref): DenyReason(reason) for ref, reason in body["deny"]}
        policy = policy_from_json(body["policy"])
    except PinError as exc:  # its message never quotes the hash
        raise SnapshotError(f"credential snapshot v{envelope['version']}: {exc}") from None
    except (KeyError, TypeError, ValueError, ScheduleError) as exc:
        raise SnapshotError(
            f"credential snapshot v{envelope['version']}: body is malformed: {exc}"
        ) from None
    if issued_at.tzinfo is None:
        raise SnapshotError("credential snapshot: issued_at must carry a time zone (UTC, with Z)")
    if policy.version != envelope["version"]:
        policy = replace(policy, version=envelope["version"])
    return Snapshot(
        envelope["site"],
        envelope["device"],
        envelope["version"],
        issued_at,
        policy,
        credentials,
        deny,
        card_keys,
    )


def credential_row(credential: Credential, key: bytes | None) -> list[Any]:
    """Return one credential as its JSON row (snapshots and deltas share it)."""
    c = credential
    row: list[Any] = [c.ref, sorted(c.groups), _iso(c.valid_from), _iso(c.valid_until)]
    if c.profile.proves or c.pin is not None:
        row += [str(c.profile), key.hex() if key is not None else None]
    if c.pin is not None:
        row.append(pin_text(c.pin))
    return row


def read_credential(row: object) -> tuple[Credential, bytes | None]:
    """Read one credential row: [ref, groups, from, until], then [profile, key hex], then pin."""
    if not isinstance(row, list) or len(row) not in (4, 6, 7):
        raise ValueError(
            "a credential is [ref, groups, valid_from, valid_until, profile?, key?, pin?]"
        )
    ref, groups, vf, vu = row[:4]
    profile = CardProfile(row[4]) if len(row) >= 6 else CardProfile.UID
    key = bytes.fromhex(row[5]) if len(row) >= 6 and row[5] is not None else None
    if key is not None and len(key) != 16:
        raise ValueError(f"card key of {str(ref)[:8]}… must be 16 bytes")
    try:
        pin = parse_pin(row[6]) if len(row) == 7 else None
    except PinError as exc:
        raise PinError(f"PIN of {str(ref)[:8]}…: {exc}") from None
    credential = Credential(str(ref), frozenset(map(str, groups)), _dt(vf), _dt(vu), profile, pin)
    return credential, key


def inflate(text: object, what: str = "credential snapshot") -> dict[str, Any]:
    """Decode a base64 zlib JSON body, refusing one that inflates past MAX_BODY."""
    try:
        packed = base64.b64decode(str(text), validate=True)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, MAX_BODY)
        if inflater.unconsumed_tail:
            raise SnapshotError(f"{what} body is larger than {MAX_BODY // 2**20} MiB")
        body = json.loads(raw)
    except SnapshotError:
        raise
    except (binascii.Error, zlib.error, ValueError):
        raise SnapshotError(f"{what} body is not base64 zlib JSON") from None
    if not isinstance(body, dict):
        raise SnapshotError(f"{what} body must be a JSON object")
    return body


def _iso(value: datetime | None) -> str | None:
    return None if value is None else utc_text(value)


def _dt(value: object) -> datetime | None:
    if value is None:
        return None
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"validity time {value!r} has no time zone")
    return parsed
