"""The DESFire EV2 commands that personalise a card, in EV2 secure messaging (reader side).

The read side (select, AuthenticateEV2First, ReadData) is edge.readers.desfire; this adds
what only the desk needs, over the same `transmit` and `Session`:

| command                | code | communication (under a session)                          |
| ---------------------- | ---- | -------------------------------------------------------- |
| GetApplicationIDs      | 6A   | MAC                                                      |
| CreateApplication      | CA   | MAC: AID, KeySett1, KeySett2 (AES, key count)            |
| GetKeySettings         | 45   | MAC                                                      |
| ChangeKeySettings      | 54   | FULL command, MAC answer                                 |
| ChangeKey              | C4   | FULL command; MAC answer unless the session's own key    |
| CreateStdDataFile      | CD   | MAC: file no, comm mode, access rights, size             |
| WriteData              | 3D   | MAC (the file's mode here)                               |

ChangeKey's cryptogram (MF3D(H)x2 datasheet, AN12196 §6.16): for a key other than the
session's, (NewKey XOR OldKey) || KeyVer || CRC32(NewKey); for the session's own key,
NewKey || KeyVer; padded 80 00.. and enciphered under IVc. Changing the session's own key
ends the session. Messages name the command and the status, never a key or a UID.
"""

from __future__ import annotations

import zlib
from hmac import compare_digest
from typing import Final

from edge.readers.desfire import (
    ADDITIONAL_FRAME,
    DesfireError,
    Session,
    Transmit,
    unwrap,
    wrap,
)
from edge.readers.desfire_crypto import (
    BLOCK,
    COUNTER_LIMIT,
    command_iv,
    command_mac,
    encrypt_cbc,
    pad,
    response_mac,
)

GET_APPLICATION_IDS: Final = 0x6A
CREATE_APPLICATION: Final = 0xCA
GET_KEY_SETTINGS: Final = 0x45
CHANGE_KEY_SETTINGS: Final = 0x54
CHANGE_KEY: Final = 0xC4
CREATE_STD_DATA_FILE: Final = 0xCD
WRITE_DATA: Final = 0x3D

AES_KEYS: Final = 0x80  # KeySett2 bits 7-6 = 10: the application's keys are AES-128
COMM_MODES: Final = {"plain": 0x00, "mac": 0x01, "full": 0x03}
_MAC_LENGTH = 8
_MAX_FRAMES = 64


def crc32(data: bytes) -> bytes:
    """Return NXP's CRC32 of `data` (IEEE 802.3, preset FFFFFFFF, not complemented), LSB first."""
    return (zlib.crc32(data) ^ 0xFFFFFFFF).to_bytes(4, "little")


def get_application_ids(transmit: Transmit, session: Session) -> list[bytes]:
    """Return the AIDs on the card (card level selected), 3 bytes each as sent."""
    data = secured(transmit, session, GET_APPLICATION_IDS, b"")
    if len(data) % 3:
        raise DesfireError(f"GetApplicationIDs answered {len(data)} bytes, not whole AIDs")
    return [data[i : i + 3] for i in range(0, len(data), 3)]


def create_application(
    transmit: Transmit, session: Session, aid: bytes, settings: int, key_count: int
) -> None:
    """Create application `aid` with AES keys 0..key_count-1 (all zero) and KeySett1 `settings`."""
    if len(aid) != 3 or not 1 <= key_count <= 14 or not 0 <= settings <= 0xFF:
        raise ValueError("an AID is 3 bytes, an application has 1..14 keys, settings a byte")
    _no_data(
        secured(
            transmit, session, CREATE_APPLICATION, aid + bytes((settings, AES_KEYS | key_count))
        )
    )


def get_key_settings(transmit: Transmit, session: Session) -> tuple[int, int]:
    """Return (KeySett1, key count byte with the key type in bits 7-6) of the selected level."""
    data = secured(transmit, session, GET_KEY_SETTINGS, b"")
    if len(data) != 2:
        raise DesfireError(f"GetKeySettings answered {len(data)} bytes where 2 were due")
    return data[0], data[1]


def change_key_settings(transmit: Transmit, session: Session, settings: int) -> None:
    """Replace KeySett1 of the selected level (needs its key 0 and settings bit 3)."""
    _no_data(enciphered(transmit, session, CHANGE_KEY_SETTINGS, b"", bytes((settings,))))


def change_key(
    transmit: Transmit,
    session: Session,
    key_no: int,
    new: bytes,
    *,
    old: bytes | None,
    version: int,
) -> None:
    """Change AES key `key_no` of the selected application to `new`.

    `old` is the key's current value, or None when `key_no` is the key the session was
    authenticated with: the session then ends, as the card ends it.
    """
    if len(new) != BLOCK or (old is not None and len(old) != BLOCK):
        raise ValueError("AES-128 keys are 16 bytes")
    if old is None:
        plain = new + bytes((version,))
        enciphered(transmit, session, CHANGE_KEY, bytes((key_no,)), plain, answer_mac=False)
        session.ended = True  # the card dropped it: authenticate again with the new key
        return
    cryptogram = (
        bytes(n ^ o for n, o in zip(new, old, strict=True)) + bytes((version,)) + crc32(new)
    )
    _no_data(enciphered(transmit, session, CHANGE_KEY, bytes((key_no,)), cryptogram))


def create_std_data_file(
    transmit: Transmit,
    session: Session,
    file_no: int,
    *,
    mode: str,
    read: int,
    write: int,
    read_write: int,
    change: int,
    size: int,
) -> None:
    """Create a standard data file; access rights are key numbers, 0xE free, 0xF never."""
    if not 0 <= file_no <= 31 or not 0 < size <= 0xFFFFFF or mode not in COMM_MODES:
        raise ValueError("file 0..31, size 1..16 MB, mode plain, mac or full")
    if any(not 0 <= n <= 0xF for n in (read, write, read_write, change)):
        raise ValueError("an access right is a key number 0..13, 0xE (free) or 0xF (never)")
    rights = bytes(((read_write << 4) | change, (read << 4) | write))
    body = bytes((file_no, COMM_MODES[mode])) + rights + size.to_bytes(3, "little")
    _no_data(secured(transmit, session, CREATE_STD_DATA_FILE, body))


def write_data(transmit: Transmit, session: Session, file_no: int, data: bytes) -> None:
    """Write `data` at the start of a MAC-mode data file."""
    if not 0 < len(data) <= 200:  # one short APDU: header, data and MAC in 255 bytes
        raise ValueError("write 1..200 bytes at a time")
    header = bytes((file_no,)) + bytes(3) + len(data).to_bytes(3, "little")
    _no_data(secured(transmit, session, WRITE_DATA, header + data))


def secured(transmit: Transmit, session: Session, cmd: int, payload: bytes) -> bytes:
    """Send a MAC-mode command, check the answer's MAC and return its data."""
    return _send(transmit, session, cmd, payload, answer_mac=True)


def enciphered(
    transmit: Transmit,
    session: Session,
    cmd: int,
    header: bytes,
    plain: bytes,
    *,
    answer_mac: bool = True,
) -> bytes:
    """Send a FULL-mode command (`plain` enciphered under IVc after `header`); MAC answer."""
    if session.ended:
        raise DesfireError(f"command {cmd:02X}: the session ended; authenticate again")
    iv = command_iv(session.enc_key, session.ti, session.counter)
    ciphertext = encrypt_cbc(session.enc_key, iv, pad(plain))
    return _send(transmit, session, cmd, header + ciphertext, answer_mac=answer_mac)


def _send(
    transmit: Transmit, session: Session, cmd: int, payload: bytes, *, answer_mac: bool
) -> bytes:
    name = f"command {cmd:02X}"
    if session.ended:
        raise DesfireError(f"{name}: the session ended; authenticate again")
    counter = session.counter
    if counter > COUNTER_LIMIT:
        raise DesfireError(f"{name}: the command counter is used up; authenticate again")
    session.ended = True  # until the answer checks out
    mac = command_mac(session.mac_key, session.ti, counter, cmd, payload)
    answer, status = unwrap(transmit(wrap(cmd, payload + mac)), cmd)
    frames = 1
    while status == ADDITIONAL_FRAME:
        if frames >= _MAX_FRAMES:
            raise DesfireError(f"{name} answered more than {_MAX_FRAMES} frames")
        more, status = unwrap(transmit(wrap(ADDITIONAL_FRAME)), cmd)
        answer += more
        frames += 1
    if not answer_mac:
        if answer:
            raise DesfireError(f"{name} answered {len(answer)} bytes where none were due")
        return b""
    if len(answer) < _MAC_LENGTH:
        raise DesfireError(f"{name} answered {len(answer)} byte(s), too short for its MAC")
    data, received = answer[:-_MAC_LENGTH], answer[-_MAC_LENGTH:]
    if not compare_digest(received, response_mac(session.mac_key, session.ti, counter, data)):
        raise DesfireError(f"{name}: integrity error, the answer's MAC does not match", 0x1E)
    session.counter = counter + 1
    session.ended = False
    return data


def _no_data(data: bytes) -> None:
    if data:
        raise DesfireError(f"the card answered {len(data)} data bytes where none were due")
