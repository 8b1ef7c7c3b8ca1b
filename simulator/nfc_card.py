"""A contactless card for tests: nfcpy's udp driver in card-emulation mode, in its own process.

    python -m simulator.nfc_card --port P --idm HEX [--pmm HEX] [--sys 12FC]
                                 [--card-key HEX] [--state FILE]    # FeliCa
    python -m simulator.nfc_card --port P --uid HEX [--type4]      # ISO 14443 A: Type 2 or 4A
    python -m simulator.nfc_card --port P --pupi HEX               # ISO 14443 B: Type 4B

The card binds 127.0.0.1:P (nfcpy's own udp driver would bind 0.0.0.0), prints `ready` on
stdout once it is in the field and `answered <CLOCK_MONOTONIC>` when it first answers a
reader, then stays until `--hold-s` has passed or stdin says `leave` or closes, and leaves
at once (the process exits, as a card snatched from the field goes silent).

FeliCa uses nfcpy's Type3TagEmulation. With a Lite-S PMm (IC code F1h or F2h) the card is a
FeliCa Lite-S: blank (factory key, system blocks writable) so that it can be personalised, or
personalised with `--card-key`; it answers nfcpy's mutual authentication and MAC reads.
`--state FILE` starts it from FILE when that exists and writes its blocks and key there as
JSON when it leaves. nfcpy emulates no ISO 14443 card, so the A and
B cards answer the few frames nfcpy's reader sends (anticollision, RATS/ATTRIB, READ, ISO-DEP
presence check) by hand.
"""

from __future__ import annotations

import argparse
import errno
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, NoReturn

import nfc
import nfc.clf
import nfc.clf.udp
import nfc.tag.tt3_sony

_LITE_S_IC_CODES = (0xF1, 0xF2)
_RC, _MAC, _ID, _D_ID, _SER_C, _SYS_C, _CKV, _CK, _MC = range(0x80, 0x89)
_WCNT, _MAC_A, _STATE = 0x90, 0x91, 0x92


class _LoopbackUdp(nfc.clf.udp.Device):  # type: ignore[misc]
    """nfcpy's udp device on 127.0.0.1 that answers whoever polls, as a card in a field does."""

    def __init__(self, port: int, on_bound: Callable[[], None]) -> None:
        super().__init__("127.0.0.1", port)
        self._vendor_name, self._device_name, self._chipset_name = "Loopback", "Card", "UDP"
        self._on_bound = on_bound
        self._answered = False
        self._peer: tuple[str, int] | None = None

    def _bind_socket(self, time_to_return: float) -> bool:
        try:
            self.socket.bind(("127.0.0.1", self.addr[1]))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:  # the previous card has not gone yet
                return False
            raise
        self._on_bound()
        return True

    def _send_data(self, brty: str, data: bytes, addr: tuple[str, int]) -> None:
        if not self._answered:
            self._answered = True
            _say(f"answered {time.monotonic():.6f}")
        super()._send_data(brty, data, addr)

    def _recv_data(self, timeout: float | None, *brty: str) -> tuple[str, bytearray, Any]:
        # nfcpy's reader sends RFOFF whenever it mutes its field to poll again; udp makes
        # that a broken link, but a card in the field just waits for the next command.
        deadline = None if timeout is None else time.time() + timeout
        while True:
            left = None if deadline is None else max(0.0, deadline - time.time())
            try:
                got: tuple[str, bytearray, Any] = super()._recv_data(left, *brty)
            except nfc.clf.BrokenLinkError:
                continue
            self._peer = got[2]
            return got

    def send_rsp_recv_cmd(self, target: Any, data: bytes | None, timeout: float | None) -> Any:
        # Answer the reader's latest socket: nfcpy's reader opens a new one each time it polls
        # again, and its udp driver would keep answering the first.
        if data is not None:
            self._send_data(target.brty, data, self._peer or target._addr)
        return self._recv_data(timeout, target.brty)[1] if timeout is None or timeout > 0 else None


class _LiteS:
    """A FeliCa Lite-S card's blocks, access rules and the card's side of its MACs.

    Blank, it has the factory key (all zero), card key version 0 and its system blocks
    writable; `personalised` leaves it as nfcpy's FelicaLiteS.protect() does: system blocks
    read-only (MC_ALL 00h), the card key and its version writable only with MAC_A after mutual
    authentication (MC_CKCKV_W_MAC_A 01h), user blocks written only with MAC_A. Reading with
    MAC_A (0x91) is not emulated: nfcpy never does it.
    """

    def __init__(self, idm: bytes) -> None:
        self.idm = idm
        self.key = bytes(16)
        self.blocks = {n: bytes(16) for n in range(14)}  # S_PAD0..13
        self.blocks |= {
            _ID: idm + bytes(8),  # IDd = IDm, DFC 0000, as nfcpy's own Lite-S tests have it
            _D_ID: bytes(16),
            _SER_C: bytes(16),
            _SYS_C: bytes.fromhex("88B4") + bytes(14),
            _CKV: bytes(16),
            _MC: bytes.fromhex("FFFFFF00070000000000000000000000"),
        }
        self.wcnt = 0
        self.power_on()

    def power_on(self) -> None:
        """Forget the session, as a card does when it enters a field."""
        self.state = bytearray(16)  # byte 0: EXT_AUTH
        self.session: tuple[bytes, bytes] | None = None  # (session key, rc1)
        self.pending: tuple[int, bytes] | None = None
        self.read_so_far = bytearray()

    def personalise(self, key: bytes) -> None:
        """Hold `key` and lock the system blocks, as protect() with protect_from=0 does."""
        self.key = key
        self.blocks[_CKV] = (1).to_bytes(2, "little") + bytes(14)
        mc = bytearray(self.blocks[_MC])
        mc[2], mc[5], mc[8:10], mc[10:12] = 0x00, 0x01, b"\xff\x3f", b"\xff\x3f"
        self.blocks[_MC] = bytes(mc)

    def dump(self) -> dict[str, Any]:
        """Return what the card holds, its key in the order nfcpy's authenticate() takes."""
        blocks = {f"{n:02X}": data.hex().upper() for n, data in sorted(self.blocks.items())}
        return {"card_key": self.key.hex().upper(), "wcnt": self.wcnt, "blocks": blocks}

    def load(self, saved: dict[str, Any]) -> None:
        """Take over what `dump()` gave."""
        self.key, self.wcnt = bytes.fromhex(saved["card_key"]), int(saved["wcnt"])
        self.blocks |= {int(n, 16): bytes.fromhex(d) for n, d in saved["blocks"].items()}

    def mac(self, data: bytes, flip: bool = False) -> bytes:
        assert self.session is not None
        sk, iv = self.session
        key = sk[8:] + sk[:8] if flip else sk
        return bytes(nfc.tag.tt3_sony.FelicaLite.generate_mac(data, key, iv))

    def _bit(self, offset: int, block: int) -> bool:
        return bool(int.from_bytes(self.blocks[_MC][offset : offset + 2], "little") >> block & 1)

    @property
    def _system_open(self) -> bool:
        return self.blocks[_MC][2] == 0xFF  # MC_ALL

    def read(self, block: int, rb: bool, re: bool) -> bytes | None:
        if rb:
            self.read_so_far = bytearray()
        if block == _MAC:
            return None if self.session is None else self.mac(bytes(self.read_so_far)) + bytes(8)
        if block in self.blocks and block < 14 and self._bit(6, block) and not self.state[0]:
            return None  # MC_SP_REG_R_RESTR: read only after mutual authentication
        data = self.blocks.get(block)
        if block == _WCNT:
            data = self.wcnt.to_bytes(3, "little") + bytes(13)
        elif block == _STATE:
            data = bytes(self.state)
        if data is not None:
            self.read_so_far += data
        return data  # RC, CK and MAC_A are write-only

    def write(self, block: int, data: bytes, wb: bool, we: bool) -> bool:
        data = bytes(data)
        if block == _RC:  # the reader's challenge, each 8-byte half little-endian
            rc = data[7::-1] + data[15:7:-1]
            des = nfc.tag.tt3_sony.triple_des(self.key, nfc.tag.tt3_sony.CBC, bytes(8))
            self.session, self.state[0] = (bytes(des.encrypt(rc)), rc[:8]), 0
            return True
        if block == _MAC_A:
            pending, self.pending = self.pending, None
            return pending is not None and self._write_with_mac_a(*pending, data)
        if not we:  # the first of [block, MAC_A]: kept until the MAC_A block checks out
            self.pending = (block, data)
            return True
        return self._may_write(block, mac_a=False) and self._store(block, data)

    def _write_with_mac_a(self, block: int, data: bytes, mac_a: bytes) -> bool:
        if self.session is None:
            return False
        wcnt = self.wcnt.to_bytes(3, "little")
        signed = wcnt + bytes([0, block, 0, _MAC_A, 0]) + data
        if mac_a[:8] != self.mac(signed, flip=True) or mac_a[8:11] != wcnt:
            return False
        if block == _STATE:
            self.state[0] = data[0]
        elif not (self._may_write(block, mac_a=True) and self._store(block, data)):
            return False
        self.wcnt += 1
        return True

    def _may_write(self, block: int, *, mac_a: bool) -> bool:
        authenticated = bool(self.state[0])
        if block < 14:  # MC_SP (read/write), MC_SP_REG_W_RESTR (auth), MC_SP_REG_W_MAC_A
            return (
                self._bit(0, block)
                and (authenticated or not self._bit(8, block))
                and (mac_a or not self._bit(10, block))
            )
        if block in (_CK, _CKV) and mac_a and authenticated and self.blocks[_MC][5] & 1:
            return True  # MC_CKCKV_W_MAC_A: a new key after mutual authentication
        return block in (_ID, _D_ID, _SER_C, _SYS_C, _CKV, _CK, _MC) and self._system_open

    def _store(self, block: int, data: bytes) -> bool:
        if block == _CK:
            self.key = data[7::-1] + data[15:7:-1]
        elif block == _CKV:
            self.blocks[_CKV] = data[:2] + bytes(14)
        elif block == _ID and data[:8] != self.idm:
            return False  # IDd is the IDm, fixed at manufacture
        else:
            self.blocks[block] = data
        return True


def _serve_felica(
    clf: Any, args: argparse.Namespace, stop: threading.Event, lite: _LiteS | None
) -> None:
    idm, pmm, system = (bytes.fromhex(x) for x in (args.idm, args.pmm, args.sys))

    def on_startup(target: Any) -> Any:
        target.brty, target.sensf_res = "212F", b"\x01" + idm + pmm + system
        return target

    def on_connect(tag: Any) -> bool:
        if lite is not None:
            lite.power_on()
            for service in (0x0009, 0x000B):  # NDEF write and read services
                tag.add_service(service, lite.read, lite.write)
        return True

    card = {"on-startup": on_startup, "on-connect": on_connect, "timeout": 0.5}
    while not stop.is_set():
        clf.connect(card=card, terminate=stop.is_set)


def _iso_target(args: argparse.Namespace) -> Any:
    if args.pupi:
        # SENSB_RES: 50h, PUPI, application data, protocol info (FSCI 256 bytes, FWI 10: 0.3 s)
        sensb_res = bytes.fromhex("50" + args.pupi + "00000000" + "0081A0")
        return nfc.clf.LocalTarget("106B", sensb_res=sensb_res)
    uid = bytes.fromhex(args.uid)
    sens_res = bytes([0x44 if len(uid) == 7 else 0x04, 0x00])  # bit 6: double-size UID
    sel_res = bytes([0x20 if args.type4 else 0x00])  # bit 5: ISO-DEP (Type 4A)
    return nfc.clf.LocalTarget("106A", sens_res=sens_res, sdd_res=uid, sel_res=sel_res)


def _iso_response(cmd: bytes, target: Any, memory: bytes) -> bytes | None:
    if cmd in (b"\x26", b"\x52"):  # SENS_REQ, ALL_REQ: nfcpy polls again, e.g. after a mute
        return bytes(target.sens_res)
    if cmd[:2] in (b"\x93\x70", b"\x95\x70"):  # SEL_REQ; cascade bit 04h while UID goes on
        cascade = cmd[0] == 0x93 and len(target.sdd_res) > 4
        return bytes([target.sel_res[0] | 0x04 if cascade else target.sel_res[0]])
    if cmd[:1] == b"\xe0":  # RATS -> ATS: FSCI 256 bytes, FWI 10 (0.3 s, so a busy host keeps up)
        return bytes.fromhex("057880A002")  # TL, T0 (FSCI 8, TA TB TC follow), TA, TB, TC
    if cmd[:1] == b"\x1d":  # ATTRIB -> MBLI 0, CID 0
        return b"\x00"
    if cmd[:1] in (b"\xb2", b"\xb3"):  # ISO-DEP presence check R(NAK) -> R(ACK)
        return bytes([0xA2 | cmd[0] & 1])
    if cmd[:1] == b"\x30" and len(cmd) == 2:  # Type 2 READ: 4 pages
        start = cmd[1] * 4 % len(memory)
        return (memory + memory)[start : start + 16]
    return None  # mute on the rest, as a Type 2 tag does (NXP probes 1A, 60: not emulated)


def _serve_iso(clf: Any, args: argparse.Namespace, stop: threading.Event) -> None:
    target = _iso_target(args)
    memory = bytes.fromhex(args.uid or args.pupi).ljust(64, b"\x00")
    while not stop.is_set():
        try:
            activated = clf.listen(target, 0.5)
        except nfc.clf.CommunicationError:
            continue
        cmd = activated and (activated.tt2_cmd or activated.tt4_cmd)
        while cmd and not stop.is_set():
            try:
                cmd = clf.exchange(_iso_response(bytes(cmd), target, memory), 1.0)
            except nfc.clf.CommunicationError:
                break


def _hex(*sizes: int) -> Callable[[str], str]:
    def parse(text: str) -> str:
        try:
            size = len(bytes.fromhex(text))
        except ValueError:
            size = -1
        if size not in sizes:
            raise argparse.ArgumentTypeError(f"{text!r}: want {' or '.join(map(str, sizes))} "
                                             "bytes in hex")  # fmt: skip
        return text

    return parse


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulator.nfc_card",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=int, required=True, help="udp port the reader polls")
    card = p.add_mutually_exclusive_group(required=True)
    card.add_argument("--idm", type=_hex(8), help="FeliCa IDm, 8 bytes")
    card.add_argument("--uid", type=_hex(4, 7), help="ISO 14443 A UID, 4 or 7 bytes")
    card.add_argument("--pupi", type=_hex(4), help="ISO 14443 B PUPI, 4 bytes")
    p.add_argument(
        "--pmm", type=_hex(8), default="03014B024F4993FF", help="FeliCa PMm (%(default)s)"
    )
    p.add_argument("--sys", type=_hex(2), default="12FC", help="FeliCa system code (%(default)s)")
    p.add_argument(
        "--card-key", type=_hex(16), help="a personalised Lite-S card with this key (else blank)"
    )
    p.add_argument(
        "--state",
        type=Path,
        help="Lite-S: start from this JSON file if it exists; write the card to it on leaving",
    )
    p.add_argument("--type4", action="store_true", help="with --uid: ISO-DEP Type 4A")
    p.add_argument("--hold-s", type=float, help="leave after this long (default: on stdin)")
    p.add_argument("-v", "--verbose", action="store_true", help="log nfcpy's frames to stderr")
    return p


def main(argv: list[str] | None = None) -> NoReturn:
    """Run one card until it leaves the field."""
    args = _parser().parse_args(argv)
    lite_s = bool(args.idm) and int(args.pmm[2:4], 16) in _LITE_S_IC_CODES
    if (args.card_key or args.state) and not lite_s:
        _parser().error("--card-key and --state need --idm and a Lite-S PMm (IC code F1 or F2, "
                        "e.g. 00F1000000FFFF00)")  # fmt: skip
    lite = _LiteS(bytes.fromhex(args.idm)) if lite_s else None
    if lite is not None and args.card_key:
        lite.personalise(bytes.fromhex(args.card_key))
    if lite is not None and args.state and args.state.exists():
        lite.load(json.loads(args.state.read_text()))
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG - 1, format="card %(name)s: %(message)s")
        logging.getLogger("nfc").setLevel(logging.DEBUG - 1)
    stop, bound = threading.Event(), threading.Event()
    clf = nfc.ContactlessFrontend()
    clf.device = _LoopbackUdp(args.port, bound.set)
    serve = partial(_serve_felica, lite=lite) if args.idm else _serve_iso
    threading.Thread(target=serve, args=(clf, args, stop), daemon=True).start()
    if not bound.wait(5.0):
        sys.stderr.write(f"error: could not bind 127.0.0.1:{args.port}\n")
        os._exit(1)
    _say("ready")
    threading.Thread(target=_wait_for_leave, args=(stop,), daemon=True).start()
    stop.wait(args.hold_s)
    if lite is not None and args.state:
        args.state.write_text(json.dumps(lite.dump(), indent=1) + "\n")
    _say("left")
    os._exit(0)  # no goodbye frame: a card that leaves the field just goes silent


def _say(line: str) -> None:
    try:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # whoever listened has gone; the card goes on regardless
        pass


def _wait_for_leave(stop: threading.Event) -> None:
    for line in sys.stdin:
        if line.strip() == "leave":
            break
    stop.set()


if __name__ == "__main__":
    main()
