"""A real PC/SC stack for reader tests: a private pcscd with vpcd, and virtual cards for it.

pcscd serves every client on the machine through /run/pcscd/pcscd.comm, so there is one per
test session. It runs in its own network namespace because vpcd listens on all interfaces;
the virtual cards join that namespace (see simulator/vpcd.py).
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import BinaryIO

import pytest

from simulator.readiness import keep_draining, wait_for_output
from simulator.vpcd import Applet, Misbehaviour, VirtualCard

PCSCD = Path("/usr/sbin/pcscd")
STDBUF = shutil.which("stdbuf") or "/usr/bin/stdbuf"  # coreutils
VPCD_CONF = Path("/etc/reader.conf.d/vpcd")
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
PCSCD_PIDFILE = Path("/run/pcscd/pcscd.pid")
READER = "Virtual PCD 00 00"  # vpcd slot 0, TCP 35963; slot 1 is "Virtual PCD 00 01"
INSTALL = "./check installs it (apt-get install pcscd vsmartcard-vpcd)"

# Real ATRs from PC/SC readers, TCK checked.
FELICA_ATR = bytes.fromhex("3B8F8001804F0CA00000030611003B0000000042")
ISO14443A_ATR = bytes.fromhex("3B8F8001804F0CA000000306030001000000006A")
ATRS = {"felica": FELICA_ATR, "iso14443a": ISO14443A_ATR}


class PcscStack:
    """A pcscd of our own with the vpcd reader; makes, inserts and removes virtual cards."""

    def __init__(self, workdir: Path) -> None:
        from smartcard import scard

        self.scard = scard
        self.conf_dir = workdir / "reader.conf.d"
        self.conf_dir.mkdir()
        shutil.copy(VPCD_CONF, self.conf_dir / "vpcd")
        self.log_path = workdir / "pcscd.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.cards: list[VirtualCard] = []
        self._drain: threading.Thread | None = None
        self._log_sink: BinaryIO | None = None

    def __repr__(self) -> str:
        state = f"pid {self.process.pid}" if self.process and self.running else "stopped"
        return f"<PcscStack pcscd {state} cards={len(self.cards)}>"

    @property
    def running(self) -> bool:
        """True while our pcscd runs."""
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int:
        """The pid of pcscd, whose network namespace vpcd listens in."""
        assert self.process is not None, "pcscd is not running"
        assert self.running, "pcscd is not running"
        return self.process.pid

    def start(self, timeout_s: float = 10.0) -> None:
        """Start pcscd and return once it says "daemon ready" and lists the reader."""
        # -a (log APDUs) is left out on purpose: it writes every UID answer to the log.
        # `unshare`, `sh` and `stdbuf` exec into pcscd, so the process we start is pcscd;
        # stdbuf makes its log lines reach the pipe as they are written.
        command = f"ip link set lo up && exec {STDBUF} -oL {PCSCD} -f --info -c {self.conf_dir}"
        self.process = subprocess.Popen(
            ["unshare", "-n", "sh", "-c", command], stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert self.process.stdout is not None
        with self.log_path.open("ab") as log:
            ready = wait_for_output(self.process.stdout, b"daemon ready", timeout_s, log)
        if not ready:
            self.stop()
            pytest.fail(f"pcscd did not become ready; its log:\n{self.log_tail()}")
        # Keep its log flowing into the file (and its pipe from filling up).
        self._log_sink = self.log_path.open("ab")
        self._drain = keep_draining(self.process.stdout, self._log_sink)
        if not self._wait_listed(timeout_s):
            self.stop()
            pytest.fail(f"pcscd is ready but does not list {READER!r}:\n{self.log_tail()}")

    def _wait_listed(self, timeout_s: float) -> bool:
        """Wait until pcscd lists the reader.

        pcscd adds its readers before it logs "daemon ready", yet a client's first look can
        still find none (seen under load, and right after a restart): judge by a deadline,
        not by the first answer.
        """
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if READER in self._readers():
                return True
            if self.process is None:
                return False
            # Pace the next look by waiting on pcscd itself: if it dies, stop looking.
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(0.05)
            if not self.running:
                return False
        return False

    def stop(self) -> None:
        """Remove every card and stop pcscd (the reader vanishes for its clients)."""
        for card in self.cards:
            card.remove()
        self.cards.clear()
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None
        if self._drain is not None:  # the output ends with the process
            self._drain.join(5)
            self._drain = None
        if self._log_sink is not None:
            self._log_sink.close()
            self._log_sink = None

    def card(
        self,
        atr: bytes,
        uid: bytes,
        misbehave: Misbehaviour = Misbehaviour.NONE,
        applet: Applet | None = None,
    ) -> VirtualCard:
        """Return a virtual card for the reader, not yet inserted."""
        card = VirtualCard(atr, uid, netns_pid=self.pid, misbehave=misbehave, applet=applet)
        self.cards.append(card)
        return card

    def present(self, card: VirtualCard) -> None:
        """Hold the card on the reader until GET DATA reaches it, then take it away."""
        asked = card.answered
        card.insert()
        if not card.wait_for(lambda: card.answered > asked):
            pytest.fail("GET DATA never reached the card")
        card.remove()
        self.wait_reader(present=False)

    def wait_reader(self, present: bool, timeout_s: float = 5.0) -> None:
        """Wait until pcscd itself sees a card on the reader (or none)."""
        scard = self.scard
        hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        assert hr == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hr)
        try:
            state = scard.SCARD_STATE_UNAWARE
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                hr, result = scard.SCardGetStatusChange(ctx, 200, [(READER, state)])
                if hr == scard.SCARD_S_SUCCESS:
                    state = result[0][1] & ~scard.SCARD_STATE_CHANGED
                    if bool(state & scard.SCARD_STATE_PRESENT) == present:
                        return
            pytest.fail(f"pcscd did not see the reader {'full' if present else 'empty'}")
        finally:
            scard.SCardReleaseContext(ctx)

    def log_tail(self, lines: int = 30) -> str:
        """Return the end of pcscd's log."""
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _readers(self) -> list[str]:
        scard = self.scard
        hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        if hr != scard.SCARD_S_SUCCESS:
            return []
        try:
            hr, names = scard.SCardListReaders(ctx, [])
            return list(names) if hr == scard.SCARD_S_SUCCESS else []
        finally:
            scard.SCardReleaseContext(ctx)


def another_pcscd() -> str | None:
    """Return why the machine-wide pcscd socket is taken, clearing it if it is stale."""
    if not PCSCD_SOCKET.exists():
        return None
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(PCSCD_SOCKET))
        except (ConnectionRefusedError, FileNotFoundError):
            # Left behind by a pcscd that died (kill -9, a crashed session): nobody serves it.
            PCSCD_SOCKET.unlink(missing_ok=True)
            PCSCD_PIDFILE.unlink(missing_ok=True)
            return None
    pid = PCSCD_PIDFILE.read_text().strip("\0\n ") if PCSCD_PIDFILE.exists() else "?"
    cmdline = Path(f"/proc/{pid}/cmdline")
    command = cmdline.read_bytes().replace(b"\0", b" ").decode().strip() if cmdline.exists() else ""
    if "reader.conf.d" in command and "pytest" in command:
        fix = f"it is left over from an interrupted test run: `kill {pid}`"
    else:
        fix = "stop it (`systemctl stop pcscd.socket pcscd`) while these tests run"
    return f"another pcscd (pid {pid}: {command or 'unknown'}) serves {PCSCD_SOCKET}; {fix}"
