"""Ed25519 signatures for credential snapshots and commands (the `cryptography` library).

Public keys travel as 64 hex digits in a one-line file; a key id is the first 8 hex digits
of the SHA-256 of the raw public key, so a device can say which key it expected.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from edge.errors import EdgeError
from edge.keys import read_key_text


class SignatureError(EdgeError, ValueError):
    """A signature or key is missing, malformed or does not verify."""


def key_id(public: Ed25519PublicKey) -> str:
    """Return the short id of a public key."""
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:8]


def public_key_hex(private: Ed25519PrivateKey) -> str:
    """Return the public half of a private key as 64 hex digits."""
    return private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Read a public key file (64 hex digits)."""

    return parse_public_key(read_key_text(path, "public key", SignatureError), str(path))


def parse_public_key(text: str, where: str = "public key") -> Ed25519PublicKey:
    """Parse 64 hex digits into an Ed25519 public key."""
    try:
        raw = bytes.fromhex(text.strip())
        if len(raw) != 32:
            raise ValueError
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise SignatureError(
            f"{where}: an Ed25519 public key is 64 hexadecimal digits on one line"
        ) from None


def verify(public: Ed25519PublicKey, signature: bytes, message: bytes, what: str) -> None:
    """Raise SignatureError unless `signature` signs `message` under `public`."""
    try:
        public.verify(signature, message)
    except InvalidSignature:
        raise SignatureError(
            f"{what}: the signature does not verify with key {key_id(public)}; "
            "it was altered, or signed with another site's key"
        ) from None
