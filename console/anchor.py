"""Anchors: every chain's head, signed, appended to a file outside the log, on a schedule.

The chains alone cannot tell a log rewritten from start to end, hashes and all, from the
real one. An anchor line written earlier can: it names each chain's newest row and hash at
that moment, signed with the console's anchor key (Ed25519), one JSON object per line:

    {"at":"2026-11-28T21:00:00.000Z","heads":{"acks":{"hash":"…","row":2},
     "audit":{"hash":"…","row":7},"events":{"hash":"…","row":1200}},"key":"1a2b3c4d",
     "sig":"<128 hex digits>","v":1}

`sig` signs the canonical JSON (sorted keys, no spaces) of the line without `sig`; `key` is
the id of the public key (edge.signing.key_id). A line's heads must still be in the log
(`CentralLog.anchored`); a line that does not verify was forged or edited. The key file is
created (0600, PEM) when missing; lines already copied off the machine cannot be taken back.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from console.chain import by_name, canonical
from console.log import CentralLog
from edge.core.clock import utc_text
from edge.errors import EdgeError
from edge.signing import SignatureError, key_id, parse_public_key, public_key_hex, verify

log = logging.getLogger(__name__)

VERSION = 1
MAX_CHAINS = 10_000  # heads in a line: an events chain per site (PostgreSQL), audit, acks
Heads = dict[str, tuple[int, str]]


class AnchorError(EdgeError, ValueError):
    """An anchor key or file cannot be used; the message says which and what to do."""


class _Head(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    row: int = Field(ge=0)
    hash: str = Field(pattern="^[0-9a-f]{64}$")


class _Line(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    v: int = Field(ge=VERSION, le=VERSION)
    at: str = Field(max_length=40)
    key: str = Field(pattern="^[0-9a-f]{8}$")
    heads: dict[str, _Head] = Field(max_length=MAX_CHAINS)
    sig: str = Field(pattern="^[0-9a-f]{128}$")


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """Return the anchor key in `path` (PEM), creating it (mode 0600) if it is missing."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _load_private(path)
    except OSError as error:
        raise AnchorError(f"anchor key {path} cannot be created: {error.strerror}") from None
    key = Ed25519PrivateKey.generate()
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    log.info("created anchor key %s (key id %s)", path, key_id(key.public_key()))
    return key


def load_verifier(path: Path) -> Ed25519PublicKey:
    """Return the public key that checks anchors: from the anchor key file itself, or from
    a file holding its public half (64 hex digits, as the collector logs it)."""
    try:
        text = path.read_bytes()
    except OSError as error:
        raise AnchorError(f"anchor key {path} cannot be read: {error.strerror}") from None
    if text.lstrip().startswith(b"-----BEGIN"):
        return _load_private(path).public_key()
    try:
        return parse_public_key(text.decode("ascii", "replace"), str(path))
    except SignatureError as error:
        raise AnchorError(f"{error}, or the anchor key file (PEM)") from None


def _load_private(path: Path) -> Ed25519PrivateKey:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise AnchorError(
            f"anchor key {path} is open to others (mode {stat.filemode(mode)}); "
            f"run: chmod 600 {path}"
        )
    try:
        key = load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        raise AnchorError(
            f"anchor key {path} is not a PEM private key; move it away and a new one is made"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AnchorError(f"anchor key {path} is not an Ed25519 key")
    return key


def signed_line(heads: Heads, key: Ed25519PrivateKey, at: str) -> str:
    """Return one anchor line (no newline) for `heads`, signed with `key`."""
    body: dict[str, Any] = {
        "v": VERSION,
        "at": at,
        "key": key_id(key.public_key()),
        "heads": {name: {"row": row, "hash": digest} for name, (row, digest) in heads.items()},
    }
    body["sig"] = key.sign(canonical(body).encode()).hex()
    return canonical(body)


class Anchorer:
    """Appends a signed line of the log's heads to `path` every `every_s` (when they
    changed), and on `anchor()`; the collector's writer thread drives it."""

    def __init__(
        self,
        path: Path,
        key: Ed25519PrivateKey,
        every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not every_s > 0:
            raise AnchorError(f"anchor interval {every_s} s: use a number of seconds above 0")
        self.path = path
        self.every_s = every_s
        self.written = 0
        self._key = key
        self._clock = clock
        self._due = clock()
        self._last: Heads | None = None
        self._failing = False
        self._cond = threading.Condition()

    def __repr__(self) -> str:
        return (
            f"<Anchorer {self.path} every {self.every_s:g} s key {key_id(self._key.public_key())}"
            f" written={self.written}>"
        )

    @property
    def public_key(self) -> str:
        """The public half of the anchor key (64 hex digits): what checks the lines."""
        return public_key_hex(self._key)

    def tick(self, log_: CentralLog) -> None:
        """Anchor if the interval has passed and the heads moved; never raises."""
        if self._clock() < self._due:
            return
        self._due = self._clock() + self.every_s
        try:
            heads = log_.heads()
            if heads != self._last:
                self._write(heads)
        except Exception as error:  # the file, the key or the log's database (any driver's)
            self._failed(error)

    def anchor(self, log_: CentralLog) -> None:
        """Anchor now, whatever changed (on close); never raises."""
        try:
            self._write(log_.heads())
        except Exception as error:  # as in tick: logged once, the collector goes on
            self._failed(error)

    def wait_for(self, predicate: Callable[[Heads], bool], timeout_s: float) -> bool:
        """Wait until a written line's heads satisfy `predicate`; False after `timeout_s`."""
        with self._cond:
            return self._cond.wait_for(
                lambda: self._last is not None and predicate(self._last), timeout_s
            )

    def _write(self, heads: Heads) -> None:
        line = signed_line(heads, self._key, utc_text(datetime.now(UTC))) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())  # one write: a line is whole or absent (O_APPEND)
            os.fsync(fd)
        finally:
            os.close(fd)
        if self._failing:
            log.info("anchoring to %s works again", self.path)
            self._failing = False
        log.info(
            "anchored %s",
            ", ".join(f"{name} {row}:{digest[:12]}" for name, (row, digest) in heads.items()),
        )
        with self._cond:
            self.written += 1
            self._last = heads
            self._cond.notify_all()

    def _failed(self, error: Exception) -> None:
        if not self._failing:  # once per outage, not at every tick
            log.error("cannot anchor to %s: %s; the log goes on, unanchored", self.path, error)
            self._failing = True


def check_file(log_: CentralLog, path: Path, public: Ed25519PublicKey) -> tuple[int, list[str]]:
    """Check every line of an anchor file against the log: return (lines, problems)."""
    try:
        lines = path.read_bytes().splitlines()
    except OSError as error:
        raise AnchorError(f"anchor file {path} cannot be read: {error.strerror}") from None
    problems: list[str] = []
    expected = key_id(public)
    count = 0
    for number, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        count += 1
        where = f"{path.name} line {number}"
        try:
            body = json.loads(raw)
            line = _Line.model_validate(body)
        except (ValueError, RecursionError, ValidationError):
            problems.append(f"{where}: not an anchor line (JSON: v, at, key, heads, sig)")
            continue
        if line.key != expected:
            problems.append(f"{where}: signed with key {line.key}, not the anchor key {expected}")
            continue
        signed = canonical({k: v for k, v in body.items() if k != "sig"}).encode()
        try:
            verify(public, bytes.fromhex(line.sig), signed, where)
        except SignatureError:
            problems.append(f"{where}: the signature does not verify: forged or edited")
            continue
        for name, head in sorted(line.heads.items()):
            if by_name(name) is None:
                problems.append(f"{where}: unknown chain {name[:40]!r}")
                continue
            problem = log_.anchored(head.row, head.hash, name)
            if problem:
                problems.append(f"{where} ({line.at}): {problem}")
    if not count:
        problems.append(f"{path}: no anchor lines in it")
    return count, problems
