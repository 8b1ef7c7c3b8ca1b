"""Credential deltas: signed, cumulative changes on top of one full snapshot (the base).

    {"format": "edge-credentials-delta/1", "site": …, "device": …, "base": 40,
     "version": 42, "issued_at": "2026-11-25T08:00:00.000Z", "key_id": "ab12cd34",
     "body": base64(zlib(JSON body)), "signature": base64(Ed25519 over the signed fields)}

The body names every card whose entry changed on this device since the base, with its
entry as of `version`:

    {"credentials": [row, …],    # set (added or changed), rows as in a snapshot
     "removed": [ref, …],        # no credential any more
     "deny": [[ref, reason], …], # denied outright from now on
     "allowed": [ref, …]}        # no longer on the deny list

Because it is cumulative from the base, a device holding the base, or the base with any
earlier delta on it, reaches exactly `version` by applying it; a device on another base
refuses it and waits for the next full snapshot. The policy is the base's (provisioning
sends a full snapshot when a device's policy changes); only its version moves. The format
string is signed, so a snapshot's signature never passes for a delta's.
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.core.clock import utc_text
from edge.core.credentials import Credential, DenyReason
from edge.pin_hash import PinError
from edge.signing import SignatureError, key_id, verify
from edge.snapshot import SnapshotError, credential_row, inflate, read_credential

FORMAT = "edge-credentials-delta/1"
SIGNED = ("format", "site", "device", "base", "version", "issued_at", "body")


@dataclass(frozen=True)
class Delta:
    """A verified delta from snapshot `base` to `version`, ready to apply."""

    site: str
    device: str
    base: int
    version: int
    issued_at: datetime
    credentials: tuple[Credential, ...] = ()
    removed: frozenset[str] = frozenset()
    deny: Mapping[str, DenyReason] = field(default_factory=dict)
    allowed: frozenset[str] = frozenset()
    card_keys: Mapping[str, bytes] = field(default_factory=dict)  # ref -> key, never logged

    def __repr__(self) -> str:
        return (
            f"<Delta v{self.base}->v{self.version} {self.site}/{self.device} "
            f"set={len(self.credentials)} removed={len(self.removed)} denied={len(self.deny)} "
            f"allowed={len(self.allowed)}>"
        )


def _signed_bytes(envelope: Mapping[str, Any]) -> bytes:
    return "\n".join(str(envelope[k]) for k in SIGNED).encode()


def build(
    private: Ed25519PrivateKey,
    *,
    site: str,
    device: str,
    base: int,
    version: int,
    credentials: Iterable[Credential] = (),
    removed: Iterable[str] = (),
    deny: Mapping[str, DenyReason] | None = None,
    allowed: Iterable[str] = (),
    issued_at: datetime | None = None,
    card_keys: Mapping[str, bytes] | None = None,
) -> bytes:
    """Return a signed delta as UTF-8 JSON bytes (provisioning's side)."""
    if not 1 <= base < version:
        raise ValueError(f"a delta goes from a base to a later version, not v{base} -> v{version}")
    keys = card_keys or {}
    body = {
        "credentials": [credential_row(c, keys.get(c.ref)) for c in credentials],
        "removed": sorted(removed),
        "deny": sorted([ref, str(reason)] for ref, reason in (deny or {}).items()),
        "allowed": sorted(allowed),
    }
    raw = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    envelope: dict[str, Any] = {
        "format": FORMAT,
        "site": site,
        "device": device,
        "base": base,
        "version": version,
        "issued_at": utc_text(issued_at or datetime.now(UTC)),
        "key_id": key_id(private.public_key()),
        "body": base64.b64encode(zlib.compress(raw, 9)).decode(),
    }
    envelope["signature"] = base64.b64encode(private.sign(_signed_bytes(envelope))).decode()
    return json.dumps(envelope).encode()


def parse(data: bytes, public: Ed25519PublicKey, *, site: str, device: str) -> Delta:
    """Verify and decode a delta for this site and device; SnapshotError says what is wrong."""
    try:
        envelope = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise SnapshotError("credential delta is not JSON; was it truncated?") from None
    if not isinstance(envelope, dict) or envelope.get("format") != FORMAT:
        raise SnapshotError(f'credential delta: "format" must be "{FORMAT}"')
    missing = [k for k in (*SIGNED, "signature") if k not in envelope]
    if missing:
        raise SnapshotError(f"credential delta: missing fields {missing}")
    if envelope["site"] != site:
        raise SnapshotError(
            f"credential delta is for site {envelope['site']!r}, this device is in {site!r}"
        )
    if envelope["device"] != device:  # a base is one device's: no "*" here
        raise SnapshotError(
            f"credential delta is for device {envelope['device']!r}, not {device!r}"
        )
    base, version = envelope["base"], envelope["version"]
    if not (isinstance(base, int) and isinstance(version, int) and 1 <= base < version):
        raise SnapshotError(
            "credential delta: base and version must be whole numbers, 1 <= base < version"
        )
    try:
        signature = base64.b64decode(envelope["signature"], validate=True)
    except (binascii.Error, TypeError, ValueError):
        raise SnapshotError("credential delta: signature is not base64") from None
    try:
        verify(public, signature, _signed_bytes(envelope), f"credential delta v{base}->v{version}")
    except SignatureError as exc:
        raise SnapshotError(str(exc)) from None
    body = inflate(envelope["body"], "credential delta")
    try:
        issued_at = datetime.fromisoformat(str(envelope["issued_at"]).replace("Z", "+00:00"))
        rows = [read_credential(row) for row in body["credentials"]]
        removed = frozenset(_refs(body["removed"]))
        deny = {str(ref): DenyReason(reason) for ref, reason in body["deny"]}
        allowed = frozenset(_refs(body["allowed"]))
    except PinError as exc:  # its message never quotes the hash
        raise SnapshotError(f"credential delta v{version}: {exc}") from None
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"credential delta v{version}: body is malformed: {exc}") from None
    if issued_at.tzinfo is None:
        raise SnapshotError("credential delta: issued_at must carry a time zone (UTC, with Z)")
    credentials = tuple(c for c, _ in rows)
    refs = [c.ref for c in credentials]
    if len(set(refs)) != len(refs) or removed & set(refs) or allowed & deny.keys():
        raise SnapshotError(
            f"credential delta v{version}: a card is named twice (set and removed, or denied "
            "and allowed); it was not built by edge-provision"
        )
    return Delta(
        site=envelope["site"],
        device=envelope["device"],
        base=base,
        version=version,
        issued_at=issued_at,
        credentials=credentials,
        removed=removed,
        deny=deny,
        allowed=allowed,
        card_keys={c.ref: key for c, key in rows if key is not None},
    )


def _refs(values: object) -> list[str]:
    if not isinstance(values, list) or not all(isinstance(v, str) and v for v in values):
        raise ValueError("a list of card references must hold non-empty strings")
    return list(values)
