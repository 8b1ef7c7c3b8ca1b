"""The AES cryptography of MIFARE DESFire EV2: key diversification and secure messaging.

Pure functions over bytes on `cryptography`; no card I/O. The sources are NXP AN10922
(key diversification), AN12343 (DESFire Light features and hints) and AN12196 (NTAG 424 DNA
features and hints, same EV2 secure messaging); their known-answer vectors are the tests.

EV2 secure messaging after AuthenticateEV2First, with TI the 4-byte transaction identifier
the card chose and CmdCtr a 16-bit little-endian counter that starts at 0 and goes up by one
per command/response pair:
- command MAC  = MACt(CMAC(KSesAuthMAC, Cmd || CmdCtr || TI || CmdHeader || CmdData));
- response MAC = MACt(CMAC(KSesAuthMAC, RC || CmdCtr+1 || TI || RespData)), RC = 00 on success;
- in FULL mode CmdData/RespData are the ciphertexts, under AES-CBC with
  IVc = E(KSesAuthENC, A5 5A || TI || CmdCtr || 00*8) and
  IVr = E(KSesAuthENC, 5A A5 || TI || CmdCtr+1 || 00*8), ISO 9797-1 method 2 padding.
MACt keeps the bytes at odd 0-based indexes (NXP's "even-numbered bytes", counted from 1).
"""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.cmac import CMAC

BLOCK = 16
"""AES block and key size in bytes."""

COUNTER_LIMIT = 0xFFFE
"""The last CmdCtr a command may use: its response is MACed with CmdCtr + 1 in 16 bits."""

_SV1_LABEL = bytes.fromhex("A55A")
_SV2_LABEL = bytes.fromhex("5AA5")
_SV_CONSTANT = bytes.fromhex("00010080")  # counter 00 01, key length 00 80 (128 bits)
_IVC_LABEL = bytes.fromhex("A55A")
_IVR_LABEL = bytes.fromhex("5AA5")


def cmac(key: bytes, data: bytes) -> bytes:
    """Return the 16-byte AES-CMAC (NIST SP 800-38B) of `data`."""
    mac = CMAC(algorithms.AES(key))
    mac.update(data)
    return mac.finalize()


def truncate_mac(mac: bytes) -> bytes:
    """Return the 8-byte MACt that EV2 sends: the bytes of `mac` at odd 0-based indexes."""
    return mac[1::2]


def encrypt_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    """Encrypt whole blocks with AES-CBC, no padding."""
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(data) + encryptor.finalize()


def decrypt_cbc(key: bytes, iv: bytes, data: bytes) -> bytes:
    """Decrypt whole blocks with AES-CBC, no padding."""
    decryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).decryptor()
    return decryptor.update(data) + decryptor.finalize()


def encrypt_block(key: bytes, block: bytes) -> bytes:
    """Encrypt one 16-byte block with AES (ECB of a single block)."""
    encryptor = Cipher(algorithms.AES(key), modes.ECB()).encryptor()  # noqa: S305  # one block: IV derivation
    return encryptor.update(block) + encryptor.finalize()


def diversify_aes128(master: bytes, uid: bytes, aid: bytes, system_identifier: bytes) -> bytes:
    """Return the per-card AES-128 key of NXP AN10922 §2.2: CMAC(master, 01 || UID || AID || SI).

    `aid` is given as sent to the card (least significant byte first). AN10922 pads the
    input to 32 bytes with 80 00.. and XORs subkey K2 into the last block, or uses K1 when
    it is exactly 32 bytes: that is standard CMAC, so the input goes to CMAC unpadded.
    """
    if len(master) != BLOCK:
        raise ValueError(f"AN10922 AES-128 needs a 16-byte master key, not {len(master)} bytes")
    message = b"\x01" + uid + aid + system_identifier
    if len(message) > 2 * BLOCK:
        raise ValueError(
            f"AN10922 diversification input is {len(message)} bytes; at most 32 are allowed "
            "(01 || UID || AID || system identifier)"
        )
    return cmac(master, message)


def rotate_left(data: bytes) -> bytes:
    """Return `data` rotated left by one byte (RotL1 of the authentication)."""
    return data[1:] + data[:1]


def session_keys(key: bytes, rnd_a: bytes, rnd_b: bytes) -> tuple[bytes, bytes]:
    """Return (KSesAuthENC, KSesAuthMAC) of AuthenticateEV2First from both random numbers.

    SV = label || 00 01 00 80 || RndA[0:2] || (RndA[2:8] ^ RndB[0:6]) || RndB[6:16] ||
    RndA[8:16], with the numbers as transmitted (NXP writes it with byte 15 sent first).
    """
    if len(rnd_a) != BLOCK or len(rnd_b) != BLOCK:
        raise ValueError("RndA and RndB must be 16 bytes each")
    mixed = bytes(a ^ b for a, b in zip(rnd_a[2:8], rnd_b[0:6], strict=True))
    context = _SV_CONSTANT + rnd_a[0:2] + mixed + rnd_b[6:16] + rnd_a[8:16]
    return cmac(key, _SV1_LABEL + context), cmac(key, _SV2_LABEL + context)


def command_mac(mac_key: bytes, ti: bytes, counter: int, command: int, payload: bytes) -> bytes:
    """Return the MACt of a command: `payload` is CmdHeader || CmdData (ciphertext if FULL)."""
    message = bytes([command]) + _counter(counter) + ti + payload
    return truncate_mac(cmac(mac_key, message))


def response_mac(mac_key: bytes, ti: bytes, counter: int, data: bytes, status: int = 0) -> bytes:
    """Return the MACt the card puts on its answer to the command sent with `counter`.

    The card MACs with CmdCtr + 1; `data` is the ciphertext in FULL mode.
    """
    message = bytes([status]) + _counter(counter + 1) + ti + data
    return truncate_mac(cmac(mac_key, message))


def command_iv(enc_key: bytes, ti: bytes, counter: int) -> bytes:
    """Return IVc for encrypting the data of the command sent with `counter`."""
    return encrypt_block(enc_key, _IVC_LABEL + ti + _counter(counter) + bytes(8))


def response_iv(enc_key: bytes, ti: bytes, counter: int) -> bytes:
    """Return IVr for decrypting the answer to the command sent with `counter` (uses +1)."""
    return encrypt_block(enc_key, _IVR_LABEL + ti + _counter(counter + 1) + bytes(8))


def pad(data: bytes) -> bytes:
    """Pad with ISO 9797-1 method 2: 80, then 00 up to a whole block (a full block if aligned)."""
    padded = data + b"\x80"
    return padded + bytes(-len(padded) % BLOCK)


def unpad(data: bytes) -> bytes:
    """Strip ISO 9797-1 method 2 padding; raise ValueError when there is none."""
    stripped = data.rstrip(b"\x00")
    if not stripped.endswith(b"\x80") or len(data) - len(stripped) >= BLOCK:
        raise ValueError("no ISO 9797-1 method 2 padding")
    return stripped[:-1]


def _counter(counter: int) -> bytes:
    if not 0 <= counter <= 0xFFFF:
        raise ValueError(f"command counter {counter} is outside 0..65535")
    return counter.to_bytes(2, "little")
