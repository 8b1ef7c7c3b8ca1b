"""What a simulated DESFire EV2 card holds and how it secures its answers (EV2 secure messaging).

The memory model (applications, keys, files) and the card side of EV2 secure messaging after
AuthenticateEV2First, from NXP's MF3D(H)x2 datasheet, AN12196 and AN12343, on `cryptography`
alone: nothing here comes from the reader or provisioning code it is tested against.

Access rights of a file (2 bytes, sent least significant first) are four nibbles, Read,
Write, ReadWrite and Change: a key number 0..13, E (free: no authentication) or F (never).
Here they become the set of keys that may read (Read, ReadWrite) or write (Write,
ReadWrite): empty for free, {NEVER} for never.
"""

from __future__ import annotations

import hmac
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

OK = 0x00
NO_CHANGES = 0x0C
OUT_OF_EEPROM = 0x0E
ILLEGAL_COMMAND = 0x1C
INTEGRITY_ERROR = 0x1E
NO_SUCH_KEY = 0x40
LENGTH_ERROR = 0x7E
PERMISSION_DENIED = 0x9D
PARAMETER_ERROR = 0x9E
APPLICATION_NOT_FOUND = 0xA0
AUTHENTICATION_ERROR = 0xAE
ADDITIONAL_FRAME = 0xAF
BOUNDARY_ERROR = 0xBE
COMMAND_ABORTED = 0xCA
COUNT_ERROR = 0xCE
DUPLICATE_ERROR = 0xDE
FILE_NOT_FOUND = 0xF0

NEVER = 0xF  # an access-rights nibble no key number matches
FREE = 0xE
MAC_LENGTH = 8
Mode = Literal["plain", "mac", "full"]
MODES: Mapping[int, Mode] = {0x00: "plain", 0x01: "mac", 0x03: "full"}  # FileOption bits 1-0


@dataclass(frozen=True)
class DataFile:
    """A standard data file; empty `read_keys` / `write_keys` mean anyone may read / write."""

    data: bytes = field(repr=False)
    mode: Mode
    read_keys: frozenset[int]
    write_keys: frozenset[int] = frozenset({NEVER})


@dataclass(frozen=True)
class Application:
    """An application's AES-128 keys by number, its files by number and its key settings.

    `settings` is KeySett1: bits 7-4 who may change keys (0 the master key, 1-13 that key,
    E the key itself, F none but the master), bit 3 settings changeable, bit 2 files created
    and deleted without the master key, bit 1 directory listed without it, bit 0 master key
    changeable. `key_count` defaults to one past the highest key number.
    """

    keys: Mapping[int, bytes] = field(repr=False)
    files: Mapping[int, DataFile]
    settings: int = 0x0F
    key_count: int = 0
    versions: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.key_count:
            object.__setattr__(self, "key_count", max(self.keys, default=-1) + 1)


class Refused(Exception):
    """The card answers 91 `code` and drops any authentication."""

    def __init__(self, code: int) -> None:
        super().__init__(f"DESFire status 91 {code:02X}")
        self.code = code


@dataclass
class Session:
    """The card's side of one EV2 authentication: key number, TI, session keys, CmdCtr."""

    key_no: int
    ti: bytes = field(repr=False)
    enc: bytes = field(repr=False)
    mac: bytes = field(repr=False)
    counter: int = 0

    def check_mac(self, ins: int, payload: bytes, mac: bytes) -> None:
        """Refuse with 1E unless `mac` is MACt(Cmd || CmdCtr || TI || payload)."""
        counter = self.counter.to_bytes(2, "little")
        expected = mact(cmac(self.mac, bytes((ins,)) + counter + self.ti + payload))
        if not hmac.compare_digest(mac, expected):
            raise Refused(INTEGRITY_ERROR)

    def decrypt(self, ciphertext: bytes) -> bytes:
        """Decrypt FULL-mode command data under IVc of the current counter (padding kept)."""
        if not ciphertext or len(ciphertext) % 16:
            raise Refused(LENGTH_ERROR)
        iv = ecb(self.enc, b"\xa5\x5a" + self.ti + self.counter.to_bytes(2, "little") + bytes(8))
        return cbc(self.enc, iv, ciphertext, decrypt=True)

    def next_counter(self) -> bytes:
        """Move CmdCtr on for the answer and return it (2 bytes, little-endian)."""
        if self.counter == 0xFFFF:  # the counter may not wrap: the session is over
            raise Refused(AUTHENTICATION_ERROR)
        self.counter += 1
        return self.counter.to_bytes(2, "little")

    def protect(self, content: bytes, mode: Mode = "mac") -> bytes:
        """Return the answer's data (enciphered if FULL) followed by its MACt."""
        counter = self.next_counter()
        if mode == "full":
            iv = ecb(self.enc, b"\x5a\xa5" + self.ti + counter + bytes(8))
            content = cbc(self.enc, iv, pad(content))
        return content + mact(cmac(self.mac, b"\x00" + counter + self.ti + content))


def split_mac(data: bytes, session: Session | None) -> tuple[bytes, bytes | None]:
    """Split a MAC-mode command's data from its MACt: none is sent without a session."""
    if session is None:
        return data, None
    if len(data) < MAC_LENGTH:
        raise Refused(LENGTH_ERROR)
    return data[:-MAC_LENGTH], data[-MAC_LENGTH:]


def session_keys(key: bytes, rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    """Return KSesAuthENC and KSesAuthMAC (AN12196 §6.6 / AN12343 pp. 33-34)."""
    xored = bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[0:6], strict=True))
    context = b"\x00\x01\x00\x80" + rnd_a[0:2] + xored + rnd_b[6:16] + rnd_a[8:16]
    return cmac(key, b"\xa5\x5a" + context), cmac(key, b"\x5a\xa5" + context)


def cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    """AES-CBC over whole blocks, no padding."""
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    worker = cipher.decryptor() if decrypt else cipher.encryptor()
    return worker.update(data) + worker.finalize()


def ecb(key: bytes, block: bytes) -> bytes:
    """Encrypt one block with AES, as NXP derives the EV2 IVs."""
    # ECB is the raw block cipher here, not a mode of use.
    worker = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305
    return worker.update(block) + worker.finalize()


def cmac(key: bytes, data: bytes) -> bytes:
    """AES-CMAC (NIST SP 800-38B)."""
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def mact(mac: bytes) -> bytes:
    """Truncate a CMAC to the bytes NXP counts as even (1-based): indexes 1, 3, .. 15."""
    return mac[1::2]


def rotl(block: bytes) -> bytes:
    """Rotate left by one byte."""
    return block[1:] + block[:1]


def pad(data: bytes) -> bytes:
    """Pad by ISO/IEC 9797-1 method 2: 80, then 00 to a 16-byte boundary (a block if aligned)."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % 16)


def padded_exactly(plain: bytes, length: int) -> bytes:
    """Return the first `length` bytes if the rest is exactly 80 00..; refuse 1E otherwise."""
    if plain[length:] != pad(plain[:length])[length:]:
        raise Refused(INTEGRITY_ERROR)
    return plain[:length]


def crc32(data: bytes) -> bytes:
    """NXP's CRC32 (IEEE 802.3 polynomial, preset FFFFFFFF, no final complement), LSB first."""
    return ((zlib.crc32(data) ^ 0xFFFFFFFF) & 0xFFFFFFFF).to_bytes(4, "little")


def key_set(*nibbles: int) -> frozenset[int]:
    """Return the keys an access right grants: empty if any nibble is free, {NEVER} if none."""
    if FREE in nibbles:
        return frozenset()
    return frozenset(n for n in nibbles if n < FREE) or frozenset({NEVER})
