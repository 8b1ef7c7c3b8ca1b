"""Read a MIFARE DESFire EV2 card: select, AuthenticateEV2First, then secured reads.

A protocol layer without I/O: every step takes `transmit`, a callable that sends one command
APDU and returns the card's answer (data followed by the two status bytes); the PC/SC
adapter supplies it. Exceptions raised by `transmit` (the card left the field) pass through.
Native DESFire commands travel in ISO 7816-4 wrapping: `90 INS 00 00 [Lc data] 00`, status
`91 xx` with xx the DESFire status (00 ok, AF another frame follows or is expected).

| command                   | code     | communication                                   |
| ------------------------- | -------- | ----------------------------------------------- |
| SelectApplication         | 5A       | plain; drops any authentication                 |
| AuthenticateEV2First      | 71, AF   | AES-128, starts EV2 secure messaging            |
| ReadData                  | BD (+AF) | MAC or FULL, as the file's settings say         |
| GetCardUID                | 51       | FULL; the real UID of a random-ID card          |

Each authentication draws a fresh RndA, so the card's answers from an earlier session (new
RndB, new TI, new session keys) fail the MAC check in a later one. Error messages name the
command and the status, never a key, a UID or file contents.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from hmac import compare_digest
from typing import Literal

from edge.readers.apdu import CardResponseError
from edge.readers.desfire_crypto import (
    BLOCK,
    COUNTER_LIMIT,
    command_mac,
    decrypt_cbc,
    encrypt_cbc,
    response_iv,
    response_mac,
    rotate_left,
    session_keys,
    unpad,
)

Transmit = Callable[[bytes], bytes]

SELECT_APPLICATION = 0x5A
AUTHENTICATE_EV2_FIRST = 0x71
ADDITIONAL_FRAME = 0xAF
READ_DATA = 0xBD
GET_CARD_UID = 0x51

_OK = 0x00
_MORE = 0xAF
_MAC_LENGTH = 8
_MAX_FRAMES = 256  # a hostile card could answer 91 AF forever
_ZERO_IV = bytes(BLOCK)
_NAMES = {
    SELECT_APPLICATION: "SelectApplication",
    AUTHENTICATE_EV2_FIRST: "AuthenticateEV2First",
    ADDITIONAL_FRAME: "AdditionalFrame",
    READ_DATA: "ReadData",
    GET_CARD_UID: "GetCardUID",
}
# DESFire EV2 status codes (the byte after 91) in words.
_STATUSES = {
    0x0C: "no changes",
    0x0E: "out of EEPROM",
    0x1C: "illegal command code",
    0x1E: "integrity error (CRC or MAC does not match)",
    0x40: "no such key",
    0x7E: "length error",
    0x9D: "permission denied",
    0x9E: "parameter error",
    0xA0: "application not found",
    0xA1: "application integrity error",
    0xAD: "authentication delay (too many failed attempts)",
    0xAE: "authentication error",
    0xBE: "boundary error (read past the end of the file)",
    0xC1: "card integrity error",
    0xCA: "command aborted",
    0xCD: "card disabled",
    0xCE: "count error",
    0xDE: "duplicate error",
    0xEE: "EEPROM error",
    0xF0: "file not found",
    0xF1: "file integrity error",
}
_UID_LENGTHS = (4, 7, 10)


class DesfireError(CardResponseError):
    """A DESFire card refused a command or answered something we cannot trust.

    `status` is the DESFire status byte (the one after 91) when the card sent one.
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DesfireAuthenticationError(DesfireError):
    """The card did not prove that it holds the key: a wrong key, or not the genuine card."""


@dataclass(eq=False)
class Session:
    """Keys, transaction identifier and command counter of one EV2 authentication.

    `ended` becomes true when a secured command fails (the card then drops the
    authentication) or its answer cannot be trusted; the session then refuses further use.
    """

    enc_key: bytes = field(repr=False)
    mac_key: bytes = field(repr=False)
    ti: bytes = field(repr=False)
    counter: int = 0
    ended: bool = False


def wrap(cmd: int, data: bytes = b"") -> bytes:
    """Wrap a native command in an ISO 7816-4 APDU: 90 cmd 00 00 [Lc data] 00."""
    if not 0 <= cmd <= 0xFF:
        raise ValueError(f"command code {cmd} is not a byte")
    if len(data) > 0xFF:
        raise ValueError(f"{len(data)} data bytes do not fit a short APDU (at most 255)")
    body = bytes([len(data)]) + data if data else b""
    return bytes([0x90, cmd, 0x00, 0x00]) + body + b"\x00"


def unwrap(response: bytes, cmd: int) -> tuple[bytes, int]:
    """Split an answer to `cmd` into (data, status) with status 0x00 (ok) or 0xAF (more).

    Any other status word raises DesfireError (DesfireAuthenticationError for 91 AE).
    """
    name = _name(cmd)
    if len(response) < 2:
        raise DesfireError(
            f"{name} answered {len(response)} byte(s), too short for a status word; "
            "the card left the field or is not a DESFire card"
        )
    data, sw1, status = response[:-2], response[-2], response[-1]
    if sw1 != 0x91:
        raise DesfireError(
            f"{name} failed with status word {sw1:02X} {status:02X}, not a DESFire status "
            "(91 xx); the card is not a DESFire card or does not take native commands"
        )
    if status in {_OK, _MORE}:
        return data, status
    words = _STATUSES.get(status, "unknown status")
    error = DesfireAuthenticationError if status == 0xAE else DesfireError
    raise error(f"{name} failed: 91 {status:02X} {words}", status)


def select_application(transmit: Transmit, aid: bytes) -> None:
    """Select the application `aid` (3 bytes, least significant first, as sent)."""
    if len(aid) != 3:
        raise ValueError(f"a DESFire AID is 3 bytes, not {len(aid)}")
    data, status = unwrap(transmit(wrap(SELECT_APPLICATION, aid)), SELECT_APPLICATION)
    _expect(SELECT_APPLICATION, status, _OK)
    if data:
        raise DesfireError(f"SelectApplication answered {len(data)} unexpected data byte(s)")


def authenticate_ev2_first(
    transmit: Transmit, key_no: int, key: bytes, rnd_a: bytes | None = None
) -> Session:
    """Authenticate with AES key `key_no` of the selected application; start secure messaging.

    `rnd_a` is for known-answer tests only; by default each call draws a fresh one.
    """
    if not 0 <= key_no <= 13:
        raise ValueError(f"DESFire application keys are numbered 0..13, not {key_no}")
    if len(key) != BLOCK:
        raise ValueError(f"an AES-128 key is 16 bytes, not {len(key)}")
    rnd_a = os.urandom(BLOCK) if rnd_a is None else rnd_a
    if len(rnd_a) != BLOCK:
        raise ValueError(f"RndA is 16 bytes, not {len(rnd_a)}")
    # Part 1: KeyNo || LenCap 00 (no PCD capabilities) -> E(K, RndB), 91 AF.
    challenge, status = unwrap(
        transmit(wrap(AUTHENTICATE_EV2_FIRST, bytes([key_no, 0]))), AUTHENTICATE_EV2_FIRST
    )
    _expect(AUTHENTICATE_EV2_FIRST, status, _MORE)
    _expect_length(AUTHENTICATE_EV2_FIRST, challenge, BLOCK, "encrypted RndB")
    rnd_b = decrypt_cbc(key, _ZERO_IV, challenge)
    # Part 2: E(K, RndA || RotL1(RndB)) -> E(K, TI || RotL1(RndA) || PDcap2 || PCDcap2), 91 00.
    proof = encrypt_cbc(key, _ZERO_IV, rnd_a + rotate_left(rnd_b))
    answer, status = unwrap(transmit(wrap(ADDITIONAL_FRAME, proof)), AUTHENTICATE_EV2_FIRST)
    _expect(AUTHENTICATE_EV2_FIRST, status, _OK)
    _expect_length(AUTHENTICATE_EV2_FIRST, answer, 2 * BLOCK, "encrypted TI and RndA'")
    plain = decrypt_cbc(key, _ZERO_IV, answer)
    if not compare_digest(plain[4:20], rotate_left(rnd_a)):
        raise DesfireAuthenticationError(
            "AuthenticateEV2First: authentication failed, the card's RndA' does not match; "
            "the card does not hold this key (wrong key slot, or not a genuine card)"
        )
    enc_key, mac_key = session_keys(key, rnd_a, rnd_b)
    return Session(enc_key=enc_key, mac_key=mac_key, ti=plain[0:4])


def read_data(
    transmit: Transmit,
    session: Session,
    file_no: int,
    length: int,
    *,
    offset: int = 0,
    mode: Literal["mac", "full"],
) -> bytes:
    """Read `length` bytes of a data file (0: up to its end) in its communication `mode`."""
    if not 0 <= file_no <= 31:
        raise ValueError(f"DESFire file numbers are 0..31, not {file_no}")
    if not (0 <= offset <= 0xFFFFFF and 0 <= length <= 0xFFFFFF):
        raise ValueError("ReadData offset and length are 3-byte numbers")
    if mode not in {"mac", "full"}:
        raise ValueError(f"communication mode is 'mac' or 'full', not {mode!r}")
    header = bytes([file_no]) + offset.to_bytes(3, "little") + length.to_bytes(3, "little")
    counter = session.counter
    data = _secured(transmit, session, READ_DATA, header)
    if mode == "full":
        data = _decrypt(session, counter, READ_DATA, data)
    if length and len(data) != length:
        raise DesfireError(f"ReadData answered {len(data)} data bytes; {length} were asked for")
    return data


def get_card_uid(transmit: Transmit, session: Session) -> bytes:
    """Return the card's real UID, which a random-ID card reveals only after authentication."""
    counter = session.counter
    uid = _decrypt(session, counter, GET_CARD_UID, _secured(transmit, session, GET_CARD_UID, b""))
    if len(uid) not in _UID_LENGTHS:
        raise DesfireError(f"GetCardUID answered a {len(uid)}-byte UID; expected 4, 7 or 10")
    return uid


def read_identity(
    transmit: Transmit,
    *,
    aid: bytes,
    key_no: int,
    key: bytes,
    file_no: int,
    length: int,
    mode: Literal["mac", "full"],
) -> bytes:
    """Select `aid`, authenticate with key `key_no` and read the identity file."""
    select_application(transmit, aid)
    session = authenticate_ev2_first(transmit, key_no, key)
    return read_data(transmit, session, file_no, length, mode=mode)


def _secured(transmit: Transmit, session: Session, cmd: int, header: bytes) -> bytes:
    """Send a MACed command, check the response MAC and return its data (advances the counter)."""
    name = _name(cmd)
    if session.ended:
        raise DesfireError(f"{name}: the session ended with an earlier error; authenticate again")
    counter = session.counter
    if counter > COUNTER_LIMIT:
        raise DesfireError(f"{name}: the command counter is used up; authenticate again")
    session.ended = True  # until the answer checks out
    mac = command_mac(session.mac_key, session.ti, counter, cmd, header)
    answer = _exchange(transmit, cmd, header + mac)
    if len(answer) < _MAC_LENGTH:
        raise DesfireError(f"{name} answered {len(answer)} byte(s), too short for its 8-byte MAC")
    data, received = answer[:-_MAC_LENGTH], answer[-_MAC_LENGTH:]
    if not compare_digest(received, response_mac(session.mac_key, session.ti, counter, data)):
        raise DesfireError(
            f"{name}: integrity error, the response MAC does not match "
            "(a replayed, altered or foreign answer)",
            0x1E,
        )
    session.counter = counter + 1
    session.ended = False
    return data


def _exchange(transmit: Transmit, cmd: int, data: bytes) -> bytes:
    """Send a command and collect its answer over as many 91 AF frames as the card sends."""
    received, status = unwrap(transmit(wrap(cmd, data)), cmd)
    frames = 1
    while status == _MORE:
        if frames >= _MAX_FRAMES:
            raise DesfireError(f"{_name(cmd)} answered more than {_MAX_FRAMES} frames")
        more, status = unwrap(transmit(wrap(ADDITIONAL_FRAME)), cmd)
        received += more
        frames += 1
    return received


def _decrypt(session: Session, counter: int, cmd: int, ciphertext: bytes) -> bytes:
    """Decrypt a FULL-mode answer to the command sent with `counter` and strip its padding."""
    name = _name(cmd)
    if not ciphertext or len(ciphertext) % BLOCK:
        session.ended = True
        raise DesfireError(
            f"{name} answered {len(ciphertext)} encrypted bytes; expected whole 16-byte blocks"
        )
    iv = response_iv(session.enc_key, session.ti, counter)
    try:
        return unpad(decrypt_cbc(session.enc_key, iv, ciphertext))
    except ValueError:
        session.ended = True
        raise DesfireError(
            f"{name}: integrity error, the decrypted answer has no padding", 0x1E
        ) from None


def _expect(cmd: int, status: int, expected: int) -> None:
    if status != expected:
        raise DesfireError(
            f"{_name(cmd)} answered 91 {status:02X} where 91 {expected:02X} was due", status
        )


def _expect_length(cmd: int, data: bytes, length: int, what: str) -> None:
    if len(data) != length:
        raise DesfireError(
            f"{_name(cmd)} answered {len(data)} byte(s) where {length} ({what}) were due"
        )


def _name(cmd: int) -> str:
    return _NAMES.get(cmd, f"command {cmd:02X}")
