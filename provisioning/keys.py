"""Site keys: the card-reference key and the command and credential signing keys.

Private keys are written 0600 from their first byte and never printed; only their paths and
key ids are shown. Devices get the card key and the two *public* keys in their bundle.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from edge.errors import EdgeError
from edge.signing import key_id, public_key_hex
from provisioning.files import PUBLIC, private_dir, write_file


class KeysError(EdgeError, ValueError):
    """Site keys are missing, unreadable or would be overwritten."""


@dataclass(frozen=True)
class SiteKeys:
    """Where a site's keys live."""

    directory: Path

    @property
    def card_key(self) -> Path:
        return self.directory / "card-key"

    def private(self, name: str) -> Path:
        """Return the private key file of `commands` or `credentials`."""
        return self.directory / f"{name}.key"

    def public(self, name: str) -> Path:
        """Return the public key file (64 hex digits) of `commands` or `credentials`."""
        return self.directory / f"{name}.pub"

    def load_private(self, name: str) -> Ed25519PrivateKey:
        """Read a signing key."""
        try:
            key = load_pem_private_key(self.private(name).read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise KeysError(
                f"{self.private(name)}: {exc}; run edge-provision site init first"
            ) from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeysError(f"{self.private(name)} is not an Ed25519 key")
        return key


def generate(directory: Path) -> dict[str, str]:
    """Create the site keys in `directory` (refusing to overwrite); return key ids by name."""
    keys = SiteKeys(directory)
    private_dir(directory)
    existing = [
        p
        for p in (keys.card_key, keys.private("commands"), keys.private("credentials"))
        if p.exists()
    ]
    if existing:
        raise KeysError(
            f"keys already exist ({', '.join(str(p) for p in existing)}); a new key would lock "
            "every device out: move them away first if you really mean to rotate"
        )
    write_file(keys.card_key, secrets.token_hex(32).encode() + b"\n", new=True)
    ids = {}
    for name in ("commands", "credentials"):
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
        write_file(keys.private(name), pem, new=True)
        write_file(keys.public(name), public_key_hex(private).encode() + b"\n", PUBLIC, new=True)
        ids[name] = key_id(private.public_key())
    return ids
