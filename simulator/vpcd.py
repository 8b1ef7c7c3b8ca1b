"""A virtual contactless card for vsmartcard's vpcd reader driver.

vpcd (the `Virtual PCD` reader in pcscd) listens on TCP 35963 for slot `00 00` and 35964
for slot `00 01`; a card is present while a client is connected to it. Every message either
way is a 2-byte big-endian length and a payload. A 1-byte payload from vpcd is a control
(0 power off, 1 power on, 2 reset, 4 get ATR, answered with the ATR); anything longer is an
APDU, answered with response data and a status word. Closing the socket removes the card.

vpcd listens on all interfaces, so the tests run pcscd in a private network namespace and a
card joins it with `setns(2)` from its own serving thread. Linux keeps the network namespace
per thread, not per process, so no other thread of the test process moves, and the socket
stays in that namespace whichever thread uses it. Compared with running each card as
`nsenter -t PID -n python -m simulator.vpcd …` (the CLI below, for trying things by hand),
an insert takes ~3 ms instead of a ~30 ms interpreter start, there is no child process to
reap or kill, a failed connect raises in the caller, and tests can read the card's history.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import enum
import os
import socket
import struct
import threading
from collections.abc import Callable
from typing import Protocol

GET_UID = bytes.fromhex("FFCA000000")
SW_OK = bytes.fromhex("9000")
SW_INS_NOT_SUPPORTED = bytes.fromhex("6D00")
CLONE_NEWNET = 0x40000000
DEFAULT_PORT = 35963


class Misbehaviour(enum.Enum):
    """How a card answers GET DATA when a test wants it to be wrong."""

    NONE = "none"
    EMPTY = "empty"  # zero bytes: pcscd passes it on as a successful transmit
    STATUS = "status"  # UID with a wrong status word (6A 81, function not supported)
    SHORT = "short"  # one byte, not even a status word


class Applet(Protocol):
    """What a card runs beyond GET DATA: it answers the other APDUs and is reset with the card."""

    def answer(self, apdu: bytes) -> bytes:
        """Return response data and status word for one APDU."""
        ...

    def reset(self) -> None:
        """Forget the session state, as at power off or reset."""
        ...


class VirtualCard:
    """A card that vpcd sees while it is inserted."""

    def __init__(
        self,
        atr: bytes,
        uid: bytes,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        netns_pid: int | None = None,
        misbehave: Misbehaviour = Misbehaviour.NONE,
        timeout_s: float = 5.0,
        applet: Applet | None = None,
    ) -> None:
        self.atr = atr
        self.uid = uid
        self.host = host
        self.port = port
        self.netns_pid = netns_pid
        self.misbehave = misbehave
        self.timeout_s = timeout_s
        self.applet = applet
        self.apdus: list[bytes] = []  # every APDU received, for tests to inspect
        self.controls: list[int] = []  # every control byte; vpcd asks for the ATR ~every 0.44 s
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition()  # notified after each control and answer
        self.answered = 0  # APDUs whose answer has been sent

    def __repr__(self) -> str:
        state = "inserted" if self.inserted else "removed"
        ns = f" netns of pid {self.netns_pid}" if self.netns_pid else ""
        return f"<VirtualCard {state} at {self.host}:{self.port}{ns} apdus={len(self.apdus)}>"

    @property
    def inserted(self) -> bool:
        """True while the card is connected to vpcd."""
        return self._sock is not None

    def insert(self) -> None:
        """Connect to vpcd (the reader now sees a card); return once connected."""
        if self.inserted:
            raise RuntimeError(f"{self!r} is already inserted")
        ready = threading.Event()
        failure: list[BaseException] = []
        self._thread = threading.Thread(
            target=self._run, args=(ready, failure), name=f"vpcd-card:{self.port}", daemon=True
        )
        self._thread.start()
        if not ready.wait(self.timeout_s):
            raise TimeoutError(f"no connection to vpcd at {self.host}:{self.port}")
        if failure:
            self._thread.join(self.timeout_s)
            raise ConnectionError(f"cannot reach vpcd at {self.host}:{self.port}") from failure[0]

    def remove(self) -> None:
        """Take the card away (close the socket); idempotent."""
        with self._lock:
            sock, self._sock = self._sock, None
        if sock is not None:
            # shutdown wakes the serving thread's recv; close alone may not.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self.timeout_s)
            self._thread = None

    def wait_removed(self, timeout_s: float | None = None) -> bool:
        """Wait until vpcd hangs up or `remove` is called; return True if the card is out."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout_s)
        return not self.inserted

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
        """Wait until `predicate()` holds after a control or an answer; False on timeout."""
        with self._changed:
            return self._changed.wait_for(predicate, timeout_s)

    def answer(self, apdu: bytes) -> bytes:
        """Return the card's response to one APDU."""
        self.apdus.append(apdu)
        if apdu != GET_UID:
            return SW_INS_NOT_SUPPORTED if self.applet is None else self.applet.answer(apdu)
        if self.misbehave is Misbehaviour.EMPTY:
            return b""
        if self.misbehave is Misbehaviour.STATUS:
            return self.uid + bytes.fromhex("6A81")
        if self.misbehave is Misbehaviour.SHORT:
            return b"\x90"
        return self.uid + SW_OK

    def _run(self, ready: threading.Event, failure: list[BaseException]) -> None:
        try:
            if self.netns_pid is not None:
                enter_network_namespace(self.netns_pid)
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout_s)
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError as exc:
            failure.append(exc)
            ready.set()
            return
        with self._lock:
            self._sock = sock
        ready.set()
        try:
            self._serve(sock)
        except OSError:
            pass  # removed: the socket was shut down under recv
        finally:
            with self._lock:
                if self._sock is sock:  # vpcd hung up: the card is out
                    self._sock = None
            sock.close()

    def _serve(self, sock: socket.socket) -> None:
        while True:
            header = _recv_exactly(sock, 2)
            if header is None:
                return
            (length,) = struct.unpack(">H", header)
            payload = _recv_exactly(sock, length)
            if payload is None:
                return
            if len(payload) == 1:
                # Controls: 0 off, 1 on, 2 reset need no answer; 4 asks for the ATR.
                if payload[0] == 4:
                    _send(sock, self.atr)
                elif payload[0] in (0, 2) and self.applet is not None:
                    self.applet.reset()
                with self._changed:
                    self.controls.append(payload[0])
                    self._changed.notify_all()
                continue
            _send(sock, self.answer(payload))
            with self._changed:  # only now is the answer on its way back to the reader
                self.answered += 1
                self._changed.notify_all()


def enter_network_namespace(pid: int) -> None:
    """Move the calling thread into the network namespace of process `pid`."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"setns into the network namespace of pid {pid}: {os.strerror(err)}")
    finally:
        os.close(fd)


def _recv_exactly(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        # vpcd writes a frame's length and its body separately, with Nagle on: acknowledging
        # at once (Linux resets QUICKACK after use) lets the body follow without waiting for
        # our delayed ACK, ~40 ms per frame.
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">H", len(payload)) + payload)


def main(argv: list[str] | None = None) -> int:
    """Insert a virtual card until vpcd hangs up or Ctrl-C."""
    parser = argparse.ArgumentParser(
        prog="python -m simulator.vpcd",
        description=(
            "Present a virtual contactless card to vpcd. Run it where vpcd listens, e.g. "
            "`nsenter -t $(pidof pcscd) -n python -m simulator.vpcd --atr … --uid …`, "
            "or pass --netns-pid."
        ),
    )
    parser.add_argument("--atr", required=True, type=bytes.fromhex, help="ATR in hex")
    parser.add_argument("--uid", required=True, type=bytes.fromhex, help="UID / IDm in hex")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="35963 slot 0, 35964 slot 1")
    parser.add_argument("--netns-pid", type=int, help="join this process's network namespace")
    parser.add_argument(
        "--misbehave", choices=[m.value for m in Misbehaviour], default=Misbehaviour.NONE.value
    )
    args = parser.parse_args(argv)
    card = VirtualCard(
        args.atr, args.uid, args.host, args.port, args.netns_pid, Misbehaviour(args.misbehave)
    )
    card.insert()
    try:
        card.wait_removed()
    except KeyboardInterrupt:
        pass
    finally:
        card.remove()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
