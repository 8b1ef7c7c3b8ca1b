"""The personalisation commands of a simulated DESFire EV2 card, as NXP's datasheet has them.

| command              | level | under a session    | needs                                    |
|----------------------|-------|--------------------|------------------------------------------|
| 6A GetApplicationIDs | card  | MAC                | card key 0, or free listing (bit 1)      |
| CA CreateApplication | card  | MAC                | card key 0, or free create (bit 2)       |
| 45 GetKeySettings    | both  | MAC                | key 0 of the level, or free listing      |
| 54 ChangeKeySettings | both  | FULL in, MAC out   | key 0 of the level; settings bit 3       |
| C4 ChangeKey         | app   | FULL in, MAC out * | the key bits 7-4 name; key 0 by key 0    |
| CD CreateStdDataFile | app   | MAC                | app key 0, or free create (bit 2)        |
| 3D WriteData         | app   | the file's mode    | a Write or ReadWrite key                 |

* no MAC out when the session's own key changes: that ends the session. Key 0 changes only
if settings bit 0 allows it.

Without a session a command is plain (no MAC). ChangeKey's cryptogram under EV2 secure
messaging: for another key than the session's, (NewKey XOR OldKey) || KeyVer ||
CRC32(NewKey); for the session's own key, NewKey || KeyVer; either padded 80 00.. to 32
bytes and enciphered under IVc; the session's own key ends the authentication and its
answer carries no MAC.

Model limits: applications are AES only, without ISO file identifiers or DF names (such a
request is a parameter error); card level keys are not changed here (C4 there is illegal).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from simulator.desfire_state import (
    AUTHENTICATION_ERROR,
    BOUNDARY_ERROR,
    COUNT_ERROR,
    DUPLICATE_ERROR,
    FILE_NOT_FOUND,
    ILLEGAL_COMMAND,
    INTEGRITY_ERROR,
    LENGTH_ERROR,
    MAC_LENGTH,
    MODES,
    NO_SUCH_KEY,
    OUT_OF_EEPROM,
    PARAMETER_ERROR,
    PERMISSION_DENIED,
    Application,
    DataFile,
    Refused,
    Session,
    crc32,
    key_set,
    padded_exactly,
    split_mac,
)

MAX_APPLICATIONS = 28
MAX_KEYS = 14
MAX_FILE_SIZE = 8192  # an 8 KB card
AES_KEYS = 0x80  # KeySett2 bits 7-6: 10 = AES
CARD_LEVEL = bytes(3)
OK_STATUS = bytes((0x91, 0x00))


class CardMemory(Protocol):
    """What the commands read and change on the card."""

    applications: dict[bytes, Application]
    picc_settings: int
    selected: bytes | None
    session: Session | None


def get_application_ids(card: CardMemory, data: bytes) -> bytes:
    """Answer the AIDs of the card's applications, 3 bytes each as sent."""
    _at_card_level(card)
    payload = _checked(card, 0x6A, data)
    if payload:
        raise Refused(LENGTH_ERROR)
    _need_key0_unless(card, card.picc_settings & 0x02)
    return _reply(card, b"".join(card.applications))


def create_application(card: CardMemory, data: bytes) -> bytes:
    """Create an application: AID (3) || KeySett1 || KeySett2; every key AES zero, version 0."""
    _at_card_level(card)
    payload = _checked(card, 0xCA, data)
    if len(payload) != 5:
        raise Refused(LENGTH_ERROR)
    _need_key0_unless(card, card.picc_settings & 0x04)
    aid, settings, settings2 = payload[:3], payload[3], payload[4]
    count = settings2 & 0x0F
    if aid == CARD_LEVEL or settings2 & 0xF0 != AES_KEYS or not 1 <= count <= MAX_KEYS:
        raise Refused(PARAMETER_ERROR)
    if aid in card.applications:
        raise Refused(DUPLICATE_ERROR)
    if len(card.applications) >= MAX_APPLICATIONS:
        raise Refused(COUNT_ERROR)
    keys = dict.fromkeys(range(count), bytes(16))
    card.applications[aid] = Application(keys, {}, settings, count, dict.fromkeys(keys, 0))
    return _reply(card)


def get_key_settings(card: CardMemory, data: bytes) -> bytes:
    """Answer KeySett1 and the key count with the key type (80: AES) of the selected level."""
    if _checked(card, 0x45, data):
        raise Refused(LENGTH_ERROR)
    app = _application(card)
    if app is None:
        _need_key0_unless(card, card.picc_settings & 0x02)
        return _reply(card, bytes((card.picc_settings, AES_KEYS | 1)))
    _need_key0_unless(card, app.settings & 0x02)
    return _reply(card, bytes((app.settings, AES_KEYS | app.key_count)))


def change_key_settings(card: CardMemory, data: bytes) -> bytes:
    """Replace KeySett1 of the selected level; the new byte arrives enciphered."""
    session = _require_session(card)
    if len(data) != 16 + MAC_LENGTH:
        raise Refused(LENGTH_ERROR)
    session.check_mac(0x54, data[:16], data[16:])
    app = _application(card)
    current = card.picc_settings if app is None else app.settings
    if session.key_no != 0 or not current & 0x08:
        raise Refused(PERMISSION_DENIED)
    settings = padded_exactly(session.decrypt(data[:16]), 1)[0]
    if app is None:
        card.picc_settings = settings
    else:
        assert card.selected is not None
        card.applications[card.selected] = replace(app, settings=settings)
    return _reply(card)


def change_key(card: CardMemory, data: bytes) -> bytes:
    """Change one key of the selected application from its enciphered cryptogram."""
    session = _require_session(card)
    app = _application(card)
    if app is None:
        raise Refused(ILLEGAL_COMMAND)
    if len(data) != 1 + 32 + MAC_LENGTH:
        raise Refused(LENGTH_ERROR)
    session.check_mac(0xC4, data[:33], data[33:])
    key_no = data[0]
    if key_no >= app.key_count:
        raise Refused(NO_SUCH_KEY)
    rights = app.settings >> 4
    if key_no == 0 or rights == 0:
        allowed = session.key_no == 0 and (key_no != 0 or bool(app.settings & 0x01))
    elif rights == 0xE:
        allowed = session.key_no == key_no
    else:
        allowed = rights != 0xF and session.key_no == rights
    if not allowed:
        raise Refused(PERMISSION_DENIED)
    plain = session.decrypt(data[1:33])
    own = key_no == session.key_no
    if own:
        body = padded_exactly(plain, 17)
        new = body[:16]
    else:
        body = padded_exactly(plain, 21)
        old = app.keys.get(key_no, bytes(16))
        new = bytes(x ^ o for x, o in zip(body[:16], old, strict=True))
        if body[17:21] != crc32(new):
            raise Refused(INTEGRITY_ERROR)
    assert card.selected is not None
    keys = {**app.keys, key_no: new}
    versions = {**app.versions, key_no: body[16]}
    card.applications[card.selected] = replace(app, keys=keys, versions=versions)
    if own:  # the session's key is gone: so is the session, and the answer has no MAC
        card.session = None
        return OK_STATUS
    return _reply(card)


def create_std_data_file(card: CardMemory, data: bytes) -> bytes:
    """Create a file: FileNo || FileOption || AccessRights (2) || FileSize (3), zero-filled."""
    app = _application(card)
    if app is None:
        raise Refused(PERMISSION_DENIED)
    payload = _checked(card, 0xCD, data)
    if len(payload) != 7:
        raise Refused(LENGTH_ERROR)
    _need_key0_unless(card, app.settings & 0x04)
    file_no, option = payload[0], payload[1]
    size = int.from_bytes(payload[4:7], "little")
    if file_no > 31 or option not in MODES or size == 0:
        raise Refused(PARAMETER_ERROR)
    if file_no in app.files:
        raise Refused(DUPLICATE_ERROR)
    used = sum(len(f.data) for a in card.applications.values() for f in a.files.values())
    if used + size > MAX_FILE_SIZE:
        raise Refused(OUT_OF_EEPROM)
    change_rw, read_write = payload[2], payload[3]
    read, write, both = read_write >> 4, read_write & 0x0F, change_rw >> 4
    new = DataFile(bytes(size), MODES[option], key_set(read, both), key_set(write, both))
    assert card.selected is not None
    card.applications[card.selected] = replace(app, files={**app.files, file_no: new})
    return _reply(card)


def write_data(card: CardMemory, data: bytes) -> bytes:
    """Write FileNo || Offset (3) || Length (3) || Data, secured as the file's mode says."""
    if len(data) < 7:
        raise Refused(LENGTH_ERROR)
    header = data[:7]
    app = _application(card)
    file = None if app is None else app.files.get(header[0])
    if app is None or file is None:
        raise Refused(FILE_NOT_FOUND)
    session = card.session
    secured = session is not None and file.mode != "plain" and bool(file.write_keys)
    body, mac = split_mac(data[7:], session if secured else None)
    if session is not None and mac is not None:
        session.check_mac(0x3D, header + body, mac)
    if file.write_keys and (session is None or session.key_no not in file.write_keys):
        raise Refused(PERMISSION_DENIED)
    if session is not None and secured and file.mode == "full":
        body = _unpad(session.decrypt(body))
    offset = int.from_bytes(header[1:4], "little")
    length = int.from_bytes(header[4:7], "little")
    if length == 0 or len(body) != length:
        raise Refused(LENGTH_ERROR)
    if offset + length > len(file.data):
        raise Refused(BOUNDARY_ERROR)
    written = file.data[:offset] + body + file.data[offset + length :]
    assert card.selected is not None
    card.applications[card.selected] = replace(
        app, files={**app.files, header[0]: replace(file, data=written)}
    )
    if secured:
        return _reply(card)
    if session is not None:
        session.next_counter()
    return OK_STATUS


def _checked(card: CardMemory, ins: int, data: bytes) -> bytes:
    """Return a MAC-mode command's data, its MACt checked when a session runs."""
    payload, mac = split_mac(data, card.session)
    if card.session is not None and mac is not None:
        card.session.check_mac(ins, payload, mac)
    return payload


def _reply(card: CardMemory, content: bytes = b"") -> bytes:
    """Answer `content` plain, or MACed under a session."""
    if card.session is None:
        return content + OK_STATUS
    return card.session.protect(content) + OK_STATUS


def _at_card_level(card: CardMemory) -> None:
    if card.selected is not None:
        raise Refused(PERMISSION_DENIED)


def _application(card: CardMemory) -> Application | None:
    return None if card.selected is None else card.applications[card.selected]


def _need_key0_unless(card: CardMemory, free: int) -> None:
    """Refuse unless the level's master key (key 0) authenticated or the setting frees it."""
    if free:
        return
    if card.session is None:
        raise Refused(AUTHENTICATION_ERROR)
    if card.session.key_no != 0:
        raise Refused(PERMISSION_DENIED)


def _require_session(card: CardMemory) -> Session:
    if card.session is None:
        raise Refused(AUTHENTICATION_ERROR)
    return card.session


def _unpad(plain: bytes) -> bytes:
    stripped = plain.rstrip(b"\x00")
    if not stripped.endswith(b"\x80") or len(plain) - len(stripped) >= 16:
        raise Refused(INTEGRITY_ERROR)
    return stripped[:-1]
