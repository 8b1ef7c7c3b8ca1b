"""The site card key: read from its file, checked, never logged."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from edge.errors import EdgeError


class KeyFileError(EdgeError, ValueError):
    """The card key file is missing, unreadable, malformed or too open."""


def read_key_text(path: Path, what: str, error: type[EdgeError]) -> str:
    """Return a key file's one line of text; `error` names what is wrong and the fix."""
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        raise error(
            f"{what} file {path} does not exist; copy it from the device bundle "
            "(edge-provision device bundle)"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{what} file {path} cannot be read: {exc}") from None


def read_card_key(path: Path) -> bytes:
    """Return the card key from a file of hex digits (at least 32 bytes of key)."""
    text = read_key_text(path, "card key", KeyFileError)
    try:
        key = bytes.fromhex(text)
    except ValueError:
        raise KeyFileError(
            f"card key file {path} must hold hexadecimal digits only (64 or more)"
        ) from None
    if len(key) < 32:
        raise KeyFileError(f"card key file {path} holds {len(key)} bytes; it needs at least 32")
    mode = os.stat(path).st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"card key file {path} is readable by others (mode {stat.filemode(mode)}); "
            f"run: chmod 600 {path}"
        )
    return key
