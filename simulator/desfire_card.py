"""A simulated MIFARE DESFire EV2 card: AES-128 AuthenticateEV2First and EV2 secure messaging.

Native commands arrive wrapped in ISO 7816-4 APDUs (CLA 90, INS = the command, P1 P2 00 00,
Lc, data, Le 00) and are answered with response data and `91 xx`, as NXP documents it
(MF3D(H)x2 datasheet; AN12196 and AN12343 for the secure-messaging arithmetic).

| command                         | what the card does                                            |
|---------------------------------|---------------------------------------------------------------|
| FF CA 00 00 00 (PC/SC GET DATA) | UID + 90 00                                                   |
| 60 GetVersion (+ AF, AF)        | three frames: hardware, software, UID/batch/week/year; plain  |
| 5A SelectApplication            | AID as sent (3 bytes, LSB first); 00 00 00 = card level       |
| 71 AuthenticateEV2First (+ AF)  | AES-128, IVs zero, TI from `random(4)`, RndB from `random(16)` |
| BD ReadData, AD (ISO-chaining)  | plain, MAC or FULL by the file's mode; > 59 bytes as AF frames |
| 51 GetCardUID                   | needs authentication; FULL response                           |

Model limits: a file readable by everyone (empty `read_keys`) is always read in plain; the
card level has no keys; GetVersion is answered in plain and leaves a session untouched. Any
refusal ends the authentication and any multi-frame exchange.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

GET_DATA_UID = bytes.fromhex("FFCA000000")
CARD_LEVEL = bytes(3)
FRAME_DATA_MAX = 59  # response bytes per native frame (64-byte frame less header and CRC)

OK = 0x00
NO_SUCH_KEY = 0x40
ILLEGAL_COMMAND = 0x1C
INTEGRITY_ERROR = 0x1E
LENGTH_ERROR = 0x7E
PERMISSION_DENIED = 0x9D
APPLICATION_NOT_FOUND = 0xA0
AUTHENTICATION_ERROR = 0xAE
ADDITIONAL_FRAME = 0xAF
BOUNDARY_ERROR = 0xBE
COMMAND_ABORTED = 0xCA
FILE_NOT_FOUND = 0xF0

ISO_WRONG_LENGTH = bytes.fromhex("6700")
ISO_WRONG_P1P2 = bytes.fromhex("6A86")
ISO_CLA_NOT_SUPPORTED = bytes.fromhex("6E00")

# DESFire EV2 8 KB: vendor NXP, type DESFire, subtype 01, version 12.00, storage 1A, ISO 14443-4.
HARDWARE_VERSION = bytes.fromhex("04010112001A05")
SOFTWARE_VERSION = bytes.fromhex("04010112001A05")
BATCH_WEEK_YEAR = bytes.fromhex("BA7C0000002419")
PD_CAP2 = bytes(6)
ZERO_IV = bytes(16)


@dataclass(frozen=True)
class DataFile:
    """A standard data file; `read_keys` empty means anyone may read it."""

    data: bytes = field(repr=False)
    mode: Literal["plain", "mac", "full"]
    read_keys: frozenset[int]


@dataclass(frozen=True)
class Application:
    """An application's AES-128 keys by number and its files by number."""

    keys: Mapping[int, bytes] = field(repr=False)
    files: Mapping[int, DataFile]


@dataclass(frozen=True)
class Exchange:
    """One command APDU and the card's answer."""

    command: bytes = field(repr=False)
    response: bytes = field(repr=False)

    def __repr__(self) -> str:
        ins = f"{self.command[1]:02X}" if len(self.command) > 1 else "--"
        return f"<Exchange INS {ins} -> {self.response[-2:].hex().upper()}>"


@dataclass
class _Session:
    key_no: int
    ti: bytes = field(repr=False)
    enc: bytes = field(repr=False)
    mac: bytes = field(repr=False)
    counter: int = 0


@dataclass(frozen=True)
class _AuthStep:
    key: bytes = field(repr=False)
    key_no: int
    rnd_b: bytes = field(repr=False)
    pcd_cap2: bytes


@dataclass(frozen=True)
class _Frames:
    frames: list[bytes] = field(repr=False)


class _Refused(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(f"DESFire status 91 {code:02X}")
        self.code = code


class DesfireCard:
    """A DESFire EV2 card holding `applications`, keyed by AID as sent (3 bytes, LSB first)."""

    def __init__(
        self,
        uid: bytes,
        applications: Mapping[bytes, Application],
        *,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if len(uid) != 7:
            raise ValueError("a DESFire card UID is 7 bytes")
        for aid, app in applications.items():
            if len(aid) != 3 or aid == CARD_LEVEL:
                raise ValueError("an application AID is 3 bytes and not 00 00 00")
            if any(len(key) != 16 for key in app.keys.values()):
                raise ValueError("application keys are AES-128: 16 bytes each")
        self.uid = uid
        self.applications = dict(applications)
        self.history: list[Exchange] = []  # every APDU and its answer, for tests to inspect
        self._random = random
        self._selected: bytes | None = None
        self._session: _Session | None = None
        self._pending: _AuthStep | _Frames | None = None

    def __repr__(self) -> str:
        return (
            f"<DesfireCard applications={len(self.applications)} "
            f"selected={'yes' if self._selected else 'no'} "
            f"authenticated={'yes' if self._session else 'no'} exchanges={len(self.history)}>"
        )

    @property
    def authenticated(self) -> bool:
        """True while an EV2 session is established."""
        return self._session is not None

    def reset(self) -> None:
        """Power the card off and on: no authentication, no application selected."""
        self._selected = None
        self._session = None
        self._pending = None

    def answer(self, apdu: bytes) -> bytes:
        """Return the response data and status word for one APDU."""
        response = self._answer(apdu)
        self.history.append(Exchange(apdu, response))
        return response

    def _answer(self, apdu: bytes) -> bytes:
        if apdu == GET_DATA_UID:
            return self.uid + b"\x90\x00"
        if len(apdu) < 4:
            return ISO_WRONG_LENGTH
        if apdu[0] != 0x90:
            return ISO_CLA_NOT_SUPPORTED
        if apdu[2:4] != b"\x00\x00":
            return ISO_WRONG_P1P2
        data = _command_data(apdu)
        if data is None:
            return ISO_WRONG_LENGTH
        ins = apdu[1]
        pending, self._pending = self._pending, None
        try:
            if ins == ADDITIONAL_FRAME:
                return self._continue(pending, data)
            return self._command(ins, data)
        except _Refused as refused:
            self._session = None
            self._pending = None
            return bytes((0x91, refused.code))

    def _command(self, ins: int, data: bytes) -> bytes:
        if ins == 0x60:
            if data:
                raise _Refused(LENGTH_ERROR)
            return self._send([HARDWARE_VERSION, SOFTWARE_VERSION, self.uid + BATCH_WEEK_YEAR])
        if ins == 0x5A:
            return self._select_application(data)
        if ins == 0x71:
            return self._authenticate_first(data)
        if ins in (0xBD, 0xAD):
            return self._read_data(ins, data)
        if ins == 0x51:
            return self._get_card_uid(data)
        raise _Refused(ILLEGAL_COMMAND)

    def _continue(self, pending: _AuthStep | _Frames | None, data: bytes) -> bytes:
        if isinstance(pending, _AuthStep):
            return self._authenticate_second(pending, data)
        if isinstance(pending, _Frames):
            if data:
                raise _Refused(LENGTH_ERROR)
            return self._send(pending.frames)
        raise _Refused(COMMAND_ABORTED)

    def _send(self, frames: list[bytes]) -> bytes:
        if len(frames) > 1:
            self._pending = _Frames(frames[1:])
            return frames[0] + bytes((0x91, ADDITIONAL_FRAME))
        return frames[0] + bytes((0x91, OK))

    def _select_application(self, data: bytes) -> bytes:
        self._session = None
        self._selected = None
        if len(data) != 3:
            raise _Refused(LENGTH_ERROR)
        if data != CARD_LEVEL:
            if data not in self.applications:
                raise _Refused(APPLICATION_NOT_FOUND)
            self._selected = bytes(data)
        return bytes((0x91, OK))

    def _application(self) -> Application | None:
        return None if self._selected is None else self.applications[self._selected]

    def _authenticate_first(self, data: bytes) -> bytes:
        self._session = None
        if len(data) < 2 or len(data) != 2 + data[1]:
            raise _Refused(LENGTH_ERROR)
        app = self._application()
        key = None if app is None else app.keys.get(data[0])
        if key is None:
            raise _Refused(NO_SUCH_KEY)
        rnd_b = self._random(16)
        self._pending = _AuthStep(key, data[0], rnd_b, (data[2:] + bytes(6))[:6])
        return _cbc(key, ZERO_IV, rnd_b) + bytes((0x91, ADDITIONAL_FRAME))

    def _authenticate_second(self, step: _AuthStep, data: bytes) -> bytes:
        if len(data) != 32:
            raise _Refused(LENGTH_ERROR)
        plain = _cbc(step.key, ZERO_IV, data, decrypt=True)
        rnd_a = plain[:16]
        # The reader proves it holds the key by returning RndB rotated left by one byte.
        if not hmac.compare_digest(plain[16:], _rotl(step.rnd_b)):
            raise _Refused(AUTHENTICATION_ERROR)
        ti = self._random(4)
        enc, mac = _session_keys(step.key, rnd_a, step.rnd_b)
        self._session = _Session(step.key_no, ti, enc, mac)
        reply = _cbc(step.key, ZERO_IV, ti + _rotl(rnd_a) + PD_CAP2 + step.pcd_cap2)
        return reply + bytes((0x91, OK))

    def _read_data(self, ins: int, data: bytes) -> bytes:
        if len(data) < 7:
            raise _Refused(LENGTH_ERROR)
        header = data[:7]
        app = self._application()
        file = None if app is None else app.files.get(header[0])
        if file is None:
            raise _Refused(FILE_NOT_FOUND)
        session = self._session
        secured = session is not None and file.mode != "plain" and bool(file.read_keys)
        if len(data) != (15 if secured else 7):
            raise _Refused(LENGTH_ERROR)
        if secured:
            self._check_mac(ins, header, data[7:])
        if file.read_keys and (session is None or session.key_no not in file.read_keys):
            raise _Refused(PERMISSION_DENIED)
        offset = int.from_bytes(header[1:4], "little")
        length = int.from_bytes(header[4:7], "little")
        end = offset + length if length else len(file.data)
        if offset >= len(file.data) or end > len(file.data):
            raise _Refused(BOUNDARY_ERROR)
        content = file.data[offset:end]
        if secured:
            content = self._protect(content, file.mode)
        elif session is not None:
            self._next_counter()
        chunks = range(0, len(content), FRAME_DATA_MAX)
        return self._send([content[i : i + FRAME_DATA_MAX] for i in chunks])

    def _get_card_uid(self, data: bytes) -> bytes:
        if self._session is None:
            raise _Refused(AUTHENTICATION_ERROR)
        if len(data) != 8:
            raise _Refused(LENGTH_ERROR)
        self._check_mac(0x51, b"", data)
        return self._send([self._protect(self.uid, "full")])

    def _check_mac(self, ins: int, header: bytes, mac: bytes) -> None:
        session = self._require_session()
        counter = session.counter.to_bytes(2, "little")
        expected = _mact(_cmac(session.mac, bytes((ins,)) + counter + session.ti + header))
        if not hmac.compare_digest(mac, expected):
            raise _Refused(INTEGRITY_ERROR)

    def _next_counter(self) -> bytes:
        session = self._require_session()
        if session.counter == 0xFFFF:  # the counter may not wrap: the session is over
            raise _Refused(AUTHENTICATION_ERROR)
        session.counter += 1
        return session.counter.to_bytes(2, "little")

    def _protect(self, content: bytes, mode: Literal["plain", "mac", "full"]) -> bytes:
        counter = self._next_counter()
        session = self._require_session()
        if mode == "full":
            iv = _ecb(session.enc, b"\x5a\xa5" + session.ti + counter + bytes(8))
            content = _cbc(session.enc, iv, _pad(content))
        return content + _mact(_cmac(session.mac, b"\x00" + counter + session.ti + content))

    def _require_session(self) -> _Session:
        if self._session is None:
            raise _Refused(AUTHENTICATION_ERROR)
        return self._session


def _command_data(apdu: bytes) -> bytes | None:
    """Return the data field of a short APDU (`CLA INS P1 P2 [Lc data] [Le]`), None if malformed."""
    if len(apdu) <= 5:
        return b""
    lc = apdu[4]
    if lc == 0 or len(apdu) not in (5 + lc, 6 + lc):
        return None
    return apdu[5 : 5 + lc]


def _session_keys(key: bytes, rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    """Return KSesAuthENC and KSesAuthMAC (AN12196 §6.6 / AN12343 pp. 33-34)."""
    xored = bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[0:6], strict=True))
    context = b"\x00\x01\x00\x80" + rnd_a[0:2] + xored + rnd_b[6:16] + rnd_a[8:16]
    return _cmac(key, b"\xa5\x5a" + context), _cmac(key, b"\x5a\xa5" + context)


def _cbc(key: bytes, iv: bytes, data: bytes, *, decrypt: bool = False) -> bytes:
    cipher = Cipher(algorithms.AES(key), modes.CBC(iv))
    worker = cipher.decryptor() if decrypt else cipher.encryptor()
    return worker.update(data) + worker.finalize()


def _ecb(key: bytes, block: bytes) -> bytes:
    # One block, as NXP derives the EV2 IVs: ECB is the raw block cipher here, not a mode of use.
    worker = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305
    return worker.update(block) + worker.finalize()


def _cmac(key: bytes, data: bytes) -> bytes:
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def _mact(mac: bytes) -> bytes:
    """Truncate a CMAC to the bytes NXP counts as even (1-based): indexes 1, 3, .. 15."""
    return mac[1::2]


def _rotl(block: bytes) -> bytes:
    return block[1:] + block[:1]


def _pad(data: bytes) -> bytes:
    """Pad by ISO/IEC 9797-1 method 2: 80, then 00 to a 16-byte boundary (a block if aligned)."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % 16)
