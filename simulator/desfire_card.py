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
| 6A CA 45 54 C4 CD 3D            | personalisation: see simulator/desfire_admin.py               |

A blank card (`DesfireCard.blank`) has no application, card master key AES-128 zero and
card key settings 0F. Factory-fresh EV2 cards carry a DES zero key instead, which only the
legacy DES authentications open; the card modelled here (and the desk tool) speak AES only.

Model limits: a file readable by everyone (empty `read_keys`) is always read in plain; the
card level has at most key 0; GetVersion is answered in plain and leaves a session
untouched. Any refusal ends the authentication and any multi-frame exchange.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from simulator import desfire_admin
from simulator.desfire_state import (
    ADDITIONAL_FRAME,
    APPLICATION_NOT_FOUND,
    AUTHENTICATION_ERROR,
    BOUNDARY_ERROR,
    COMMAND_ABORTED,
    FILE_NOT_FOUND,
    ILLEGAL_COMMAND,
    LENGTH_ERROR,
    NO_SUCH_KEY,
    OK,
    PERMISSION_DENIED,
    Application,
    DataFile,
    Refused,
    Session,
    cbc,
    rotl,
    session_keys,
)

__all__ = ["Application", "DataFile", "DesfireCard", "Exchange", "Session"]

GET_DATA_UID = bytes.fromhex("FFCA000000")
CARD_LEVEL = bytes(3)
FRAME_DATA_MAX = 59  # response bytes per native frame (64-byte frame less header and CRC)
BLANK_PICC_KEY = bytes(16)  # the blank card modelled here: AES-128 zero card master key
BLANK_PICC_SETTINGS = 0x0F  # as delivered: everything changeable, free listing and creation

ISO_WRONG_LENGTH = bytes.fromhex("6700")
ISO_WRONG_P1P2 = bytes.fromhex("6A86")
ISO_CLA_NOT_SUPPORTED = bytes.fromhex("6E00")

# DESFire EV2 8 KB: vendor NXP, type DESFire, subtype 01, version 12.00, storage 1A, ISO 14443-4.
HARDWARE_VERSION = bytes.fromhex("04010112001A05")
SOFTWARE_VERSION = bytes.fromhex("04010112001A05")
BATCH_WEEK_YEAR = bytes.fromhex("BA7C0000002419")
PD_CAP2 = bytes(6)
ZERO_IV = bytes(16)

_ADMIN: Mapping[int, Callable[[desfire_admin.CardMemory, bytes], bytes]] = {
    0x6A: desfire_admin.get_application_ids,
    0xCA: desfire_admin.create_application,
    0x45: desfire_admin.get_key_settings,
    0x54: desfire_admin.change_key_settings,
    0xC4: desfire_admin.change_key,
    0xCD: desfire_admin.create_std_data_file,
    0x3D: desfire_admin.write_data,
}


@dataclass(frozen=True)
class Exchange:
    """One command APDU and the card's answer."""

    command: bytes = field(repr=False)
    response: bytes = field(repr=False)

    def __repr__(self) -> str:
        ins = f"{self.command[1]:02X}" if len(self.command) > 1 else "--"
        return f"<Exchange INS {ins} -> {self.response[-2:].hex().upper()}>"


@dataclass(frozen=True)
class _AuthStep:
    key: bytes = field(repr=False)
    key_no: int
    rnd_b: bytes = field(repr=False)
    pcd_cap2: bytes


@dataclass(frozen=True)
class _Frames:
    frames: list[bytes] = field(repr=False)


class DesfireCard:
    """A DESFire EV2 card holding `applications`, keyed by AID as sent (3 bytes, LSB first).

    `picc_key` is the card master key (AES-128; None: a card level without keys, refusing
    authentication there) and `picc_settings` its key settings. `blank(uid)` is a card as
    delivered for personalisation.
    """

    def __init__(
        self,
        uid: bytes,
        applications: Mapping[bytes, Application],
        *,
        random: Callable[[int], bytes] = os.urandom,
        picc_key: bytes | None = None,
        picc_settings: int = BLANK_PICC_SETTINGS,
    ) -> None:
        if len(uid) != 7:
            raise ValueError("a DESFire card UID is 7 bytes")
        for aid, app in applications.items():
            if len(aid) != 3 or aid == CARD_LEVEL:
                raise ValueError("an application AID is 3 bytes and not 00 00 00")
            if any(len(key) != 16 for key in app.keys.values()):
                raise ValueError("application keys are AES-128: 16 bytes each")
        if picc_key is not None and len(picc_key) != 16:
            raise ValueError("the card master key is AES-128: 16 bytes")
        self.uid = uid
        self.applications = dict(applications)
        self.picc_key = picc_key
        self.picc_settings = picc_settings
        self.history: list[Exchange] = []  # every APDU and its answer, for tests to inspect
        self.selected: bytes | None = None
        self.session: Session | None = None
        self._random = random
        self._pending: _AuthStep | _Frames | None = None

    @classmethod
    def blank(
        cls,
        uid: bytes,
        *,
        random: Callable[[int], bytes] = os.urandom,
        picc_key: bytes = BLANK_PICC_KEY,
    ) -> DesfireCard:
        """Return a card with no application and the blank card master key (AES zero)."""
        return cls(uid, {}, random=random, picc_key=picc_key)

    def __repr__(self) -> str:
        return (
            f"<DesfireCard applications={len(self.applications)} "
            f"selected={'yes' if self.selected else 'no'} "
            f"authenticated={'yes' if self.session else 'no'} exchanges={len(self.history)}>"
        )

    @property
    def authenticated(self) -> bool:
        """True while an EV2 session is established."""
        return self.session is not None

    def reset(self) -> None:
        """Power the card off and on: no authentication, no application selected."""
        self.selected = None
        self.session = None
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
        except Refused as refused:
            self.session = None
            self._pending = None
            return bytes((0x91, refused.code))

    def _command(self, ins: int, data: bytes) -> bytes:
        if ins == 0x60:
            if data:
                raise Refused(LENGTH_ERROR)
            return self._send([HARDWARE_VERSION, SOFTWARE_VERSION, self.uid + BATCH_WEEK_YEAR])
        if ins == 0x5A:
            return self._select_application(data)
        if ins == 0x71:
            return self._authenticate_first(data)
        if ins in (0xBD, 0xAD):
            return self._read_data(ins, data)
        if ins == 0x51:
            return self._get_card_uid(data)
        command = _ADMIN.get(ins)
        if command is None:
            raise Refused(ILLEGAL_COMMAND)
        return command(self, data)

    def _continue(self, pending: _AuthStep | _Frames | None, data: bytes) -> bytes:
        if isinstance(pending, _AuthStep):
            return self._authenticate_second(pending, data)
        if isinstance(pending, _Frames):
            if data:
                raise Refused(LENGTH_ERROR)
            return self._send(pending.frames)
        raise Refused(COMMAND_ABORTED)

    def _send(self, frames: list[bytes]) -> bytes:
        if len(frames) > 1:
            self._pending = _Frames(frames[1:])
            return frames[0] + bytes((0x91, ADDITIONAL_FRAME))
        return frames[0] + bytes((0x91, OK))

    def _select_application(self, data: bytes) -> bytes:
        self.session = None
        self.selected = None
        if len(data) != 3:
            raise Refused(LENGTH_ERROR)
        if data != CARD_LEVEL:
            if data not in self.applications:
                raise Refused(APPLICATION_NOT_FOUND)
            self.selected = bytes(data)
        return bytes((0x91, OK))

    def _application(self) -> Application | None:
        return None if self.selected is None else self.applications[self.selected]

    def _authenticate_first(self, data: bytes) -> bytes:
        self.session = None
        if len(data) < 2 or len(data) != 2 + data[1]:
            raise Refused(LENGTH_ERROR)
        app = self._application()
        card_key = self.picc_key if data[0] == 0 else None
        key = card_key if app is None else app.keys.get(data[0])
        if key is None:
            raise Refused(NO_SUCH_KEY)
        rnd_b = self._random(16)
        self._pending = _AuthStep(key, data[0], rnd_b, (data[2:] + bytes(6))[:6])
        return cbc(key, ZERO_IV, rnd_b) + bytes((0x91, ADDITIONAL_FRAME))

    def _authenticate_second(self, step: _AuthStep, data: bytes) -> bytes:
        if len(data) != 32:
            raise Refused(LENGTH_ERROR)
        plain = cbc(step.key, ZERO_IV, data, decrypt=True)
        rnd_a = plain[:16]
        # The reader proves it holds the key by returning RndB rotated left by one byte.
        if not hmac.compare_digest(plain[16:], rotl(step.rnd_b)):
            raise Refused(AUTHENTICATION_ERROR)
        ti = self._random(4)
        enc, mac = session_keys(step.key, rnd_a, step.rnd_b)
        self.session = Session(step.key_no, ti, enc, mac)
        reply = cbc(step.key, ZERO_IV, ti + rotl(rnd_a) + PD_CAP2 + step.pcd_cap2)
        return reply + bytes((0x91, OK))

    def _read_data(self, ins: int, data: bytes) -> bytes:
        if len(data) < 7:
            raise Refused(LENGTH_ERROR)
        header = data[:7]
        app = self._application()
        file = None if app is None else app.files.get(header[0])
        if file is None:
            raise Refused(FILE_NOT_FOUND)
        session = self.session
        secured = session is not None and file.mode != "plain" and bool(file.read_keys)
        if len(data) != (15 if secured else 7):
            raise Refused(LENGTH_ERROR)
        if session is not None and secured:
            session.check_mac(ins, header, data[7:])
        if file.read_keys and (session is None or session.key_no not in file.read_keys):
            raise Refused(PERMISSION_DENIED)
        offset = int.from_bytes(header[1:4], "little")
        length = int.from_bytes(header[4:7], "little")
        end = offset + length if length else len(file.data)
        if offset >= len(file.data) or end > len(file.data):
            raise Refused(BOUNDARY_ERROR)
        content = file.data[offset:end]
        if session is not None and secured:
            content = session.protect(content, file.mode)
        elif session is not None:
            session.next_counter()
        chunks = range(0, len(content), FRAME_DATA_MAX)
        return self._send([content[i : i + FRAME_DATA_MAX] for i in chunks])

    def _get_card_uid(self, data: bytes) -> bytes:
        session = self.session
        if session is None:
            raise Refused(AUTHENTICATION_ERROR)
        if len(data) != 8:
            raise Refused(LENGTH_ERROR)
        session.check_mac(0x51, b"", data)
        return self._send([session.protect(self.uid, "full")])


def _command_data(apdu: bytes) -> bytes | None:
    """Return the data field of a short APDU (`CLA INS P1 P2 [Lc data] [Le]`), None if malformed."""
    if len(apdu) <= 5:
        return b""
    lc = apdu[4]
    if lc == 0 or len(apdu) not in (5 + lc, 6 + lc):
        return None
    return apdu[5 : 5 + lc]
