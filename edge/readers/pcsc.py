"""Card reader adapter for PC/SC readers through pcscd; the only module that imports pyscard.

| reader              | PC/SC name (pcsc-lite + libccid)      | reports                          |
| ------------------- | ------------------------------------- | -------------------------------- |
| Sony RC-S300/S, /P  | `SONY FeliCa RC-S300/P 00 00`         | FeliCa IDm, A UID, B PUPI        |
| Sony RC-S380        | PC/SC only through Sony's own driver  | (on Linux: the `nfc` adapter)    |
| ACS ACR122U         | `ACS ACR122U PICC Interface 00 00`    | FeliCa IDm, A UID (B: untested)  |
| ACS ACR1252U        | `ACS ACR1252 1S CL Reader PICC 00 00` | FeliCa IDm, A UID, B PUPI        |

A: ISO 14443 A UID, 4/7/10 bytes; B: ISO 14443 B PUPI, 4 bytes; FeliCa IDm: 8 bytes.

It runs past 500 lines because it is the only module that may import pyscard: the door
reader and the operators' desk reader (`desk_card`, `pick_reader`) both live here.

Hardware quirks:
- pcsc-lite names readers `<model> [<interface>] (<serial>) RR SS`, RR counting readers of a
  model in plug order, SS the slot: two RC-S300 are `… 00 00` and `… 01 00` and swap when
  plugged in the other order, so put the USB serial in `match`. Multi-slot readers (ACR1252U
  `PICC` / `SAM`) need the slot's word in it too; we warn when `match` fits several readers.
- RC-S380 is not CCID: libccid does not drive it.
- ACR122U: the kernel NFC stack claims it first (blacklist `pn533_usb`, `pn533`, `nfc`). It
  beeps on every card, granted or not; pseudo-APDU `FF 00 52 00 00` silences it (not sent).
- Readers make up a contactless card's ATR (PC/SC part 3) and pcscd does not check its TCK;
  `apdu.py` does. A card leaving mid-read can give a "successful" zero-byte answer.
- Cards with random UIDs (DESFire EV1+ in random-ID mode, phones) change UID every tap.

One daemon thread waits in SCardGetStatusChange (`wait_s` at a time, with the PnP pseudo-
reader so hot-plug is noticed) and reads each new card with GET DATA. A card with a key
here (`card_keys`: an ISO 14443 A card enrolled as DESFire) must then prove itself in the
same connection: AES mutual authentication (AuthenticateEV2First) with this device's read
key, and the staff file read with a MAC must hold the card's reference (edge.card_layout).
Only then is the read `authenticated`; every other read is not.

`desk_card` holds one card on a desk reader for personalisation (edge-provision); it lives
here because this is the one module that imports pyscard, hence the module's length.

A reader present at start emits nothing (readers are online until said otherwise); one absent
at start or gone later (unplugged, pcscd stopped) emits `ReaderStatusChanged(online=False)`
once it has been away `offline_after_s`, and `online=True` when back. Each change is logged
once; raw UIDs never are.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterator

from smartcard import scard

from edge.card_layout import DESFIRE_AID, DESFIRE_FILE, DESFIRE_FILE_SIZE
from edge.core.events import CardPresented, Event, ReaderStatusChanged
from edge.errors import ClosedError, EdgeError
from edge.ports import CardKeys, CardReferencer, Emit
from edge.readers.apdu import GET_UID, card_identity
from edge.readers.debounce import TapDebouncer
from edge.readers.desfire import DesfireError, Transmit, read_identity

log = logging.getLogger(__name__)

PNP_NOTIFICATION = "\\\\?PnP?\\Notification"
_OK = scard.SCARD_S_SUCCESS
_GONE = scard.SCARD_STATE_UNKNOWN | scard.SCARD_STATE_UNAVAILABLE | scard.SCARD_STATE_IGNORE
_SERVICE_LOST = {scard.SCARD_E_NO_SERVICE, scard.SCARD_E_SERVICE_STOPPED}
_SERVICE_LOST |= {scard.SCARD_F_COMM_ERROR, scard.SCARD_E_INVALID_HANDLE}
_READER_LOST = {scard.SCARD_E_UNKNOWN_READER, scard.SCARD_E_READER_UNAVAILABLE}
_CARD_LEFT = {scard.SCARD_W_REMOVED_CARD, scard.SCARD_E_NO_SMARTCARD}
_PREFIXES = ("SCARD_E_", "SCARD_W_", "SCARD_F_", "SCARD_P_")
_NAMES = {getattr(scard, n) & 0xFFFFFFFF: n for n in dir(scard) if n.startswith(_PREFIXES)}


def _describe(hr: int) -> str:
    return f"{_NAMES.get(hr & 0xFFFFFFFF, 'PC/SC error')} (0x{hr & 0xFFFFFFFF:08X})"


def reader_names() -> list[str]:
    """Return the names of the PC/SC readers pcscd sees now (for `edge-agent check --probe`)."""
    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != _OK:
        raise EdgeError(f"cannot reach pcscd: {_describe(hr)}; is pcscd installed and running?")
    try:
        hr, names = scard.SCardListReaders(ctx, [])
        if hr == scard.SCARD_E_NO_READERS_AVAILABLE:
            return []
        if hr != _OK:
            raise EdgeError(f"cannot list PC/SC readers: {_describe(hr)}")
        return list(names)
    finally:
        scard.SCardReleaseContext(ctx)


class _Unreadable(EdgeError):
    """The card could not be read; the message carries no card data."""


class _CardGone(EdgeError):
    """The card left before it was read."""


class PcscCardReader:
    """A PC/SC reader picked by part of its name, watched on one thread.

    `monotonic` times both the debounce window and the `offline_after_s` grace.
    """

    def __init__(
        self,
        reader_id: str,
        match: str,
        referencer: CardReferencer,
        debounce_s: float = 1.5,
        monotonic: Callable[[], float] = time.monotonic,
        offline_after_s: float = 2.0,
        wait_s: float = 0.5,
        card_keys: CardKeys | None = None,
    ) -> None:
        self._id = reader_id
        self._match = match
        self._referencer = referencer
        self._card_keys = card_keys
        self._debounce = TapDebouncer(debounce_s)
        self._monotonic = monotonic
        self._offline_after_s = offline_after_s  # a replug or pcscd restart within it is silent
        self._wait_s = wait_s
        self._emit: Emit | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()  # guards _ctx between the thread and close()
        self._closed = False
        # Only the watching thread touches the rest.
        self._ctx: int | None = None  # pyscard context handle, kept until we release it
        self._pnp = False
        self._pnp_state = scard.SCARD_STATE_UNAWARE
        self._reader_name: str | None = None
        self._reader_state = scard.SCARD_STATE_UNAWARE
        self._online: bool | None = None  # None: not yet known
        self._absent_since: float | None = None
        self._absent_detail = ""
        self._card_there = False
        self._card_ref: str | None = None
        self._last_problem: str | None = None
        self._ambiguous: list[str] = []
        self._looked = threading.Condition()  # notified after each look at the reader
        self.taps = 0

    def __repr__(self) -> str:
        state = {None: "starting", True: "online", False: "offline"}[self._online]
        if self._closed:
            state = "closed"
        return (
            f"<PcscCardReader {self._id} match={self._match!r} {state}"
            f" reader={self._reader_name!r} taps={self.taps}>"
        )

    @property
    def reader_id(self) -> str:
        """The reader's id in the device configuration."""
        return self._id

    @property
    def online(self) -> bool | None:
        """True while the reader is present, False once reported offline, None before."""
        return self._online

    @property
    def has_card(self) -> bool:
        """True while a card lies on the reader, as the watching thread last saw it."""
        return self._card_there

    def wait_for(self, predicate: Callable[[], bool], timeout_s: float = 5.0) -> bool:
        """Wait until `predicate()` holds after one of the watching thread's looks.

        For whoever needs to know what the thread has seen (a probe, a test): `online`,
        `has_card` and `taps` change only during a look. False after `timeout_s`.
        """
        with self._looked:
            return self._looked.wait_for(predicate, timeout_s)

    def start(self, emit: Emit) -> None:
        """Start the watching thread; it calls `emit` for taps and status changes."""
        if self._closed:
            raise ClosedError(f"PC/SC reader {self._id} is closed")
        if self._thread is not None:
            raise RuntimeError(f"PC/SC reader {self._id} is already started")
        log.info(
            "reader %s: PC/SC, match=%r debounce=%ss offline_after=%ss wait=%ss",
            self._id, self._match, self._debounce.window_s, self._offline_after_s, self._wait_s,
        )  # fmt: skip
        self._emit = emit
        self._thread = threading.Thread(target=self._run, name=f"pcsc:{self._id}", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the thread and release the PC/SC context; idempotent."""
        self._closed = True
        self._stop.set()
        with self._lock:
            if self._ctx is not None:
                scard.SCardCancel(self._ctx)  # wakes SCardGetStatusChange at once
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(self._wait_s * 4 + 5)
            if self._thread.is_alive():
                log.warning("reader %s: watching thread did not stop", self._id)
        self._release_context()

    # -- the watching thread ---------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._step()
            except Exception as exc:  # never let the thread die; pyscard raises on odd input
                self._problem(f"unexpected {type(exc).__name__} in the watching thread: {exc}")
                self._release_context()
                self._stop.wait(self._wait_s)
            with self._looked:
                self._looked.notify_all()
        self._release_context()

    def _step(self) -> None:
        ctx = self._ctx
        if ctx is None:
            hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
            if hr != _OK:
                self._reader_missing(f"pcscd is not running: {_describe(hr)}")
                self._stop.wait(self._wait_s)
                return
            with self._lock:
                self._ctx = ctx
            # pcscd marks the PnP pseudo-reader UNKNOWN when it cannot report hot-plug.
            hr, states = scard.SCardGetStatusChange(ctx, 0, [(PNP_NOTIFICATION, 0)])
            self._pnp = bool(states) and not states[0][1] & scard.SCARD_STATE_UNKNOWN
        name = self._find_reader(ctx)
        if name is None:
            self._wait_for_change(ctx, None)
            return
        if name != self._reader_name:
            log.info("reader %s: using PC/SC reader %r", self._id, name)
            self._reader_name, self._reader_state = name, scard.SCARD_STATE_UNAWARE
        self._absent_since = None
        if self._online is False:
            log.warning("reader %s: online again (%s)", self._id, name)
            self._send(ReaderStatusChanged(self._id, True, f"{name} is back"))
        self._online = True
        self._wait_for_change(ctx, name)

    def _find_reader(self, ctx: int) -> str | None:
        hr, names = scard.SCardListReaders(ctx, [])
        if hr in _SERVICE_LOST:
            self._service_lost(hr)
            return None
        matches = [n for n in names if self._match in n] if hr == _OK else []
        if not matches:
            listed = ", ".join(repr(n) for n in names) if hr == _OK else "none"
            self._reader_missing(f"no PC/SC reader name contains {self._match!r} (has {listed})")
            return None
        if len(matches) > 1 and matches != self._ambiguous:
            log.warning(
                "reader %s: %r matches %d readers %s; using the first: make match more specific",
                self._id, self._match, len(matches), matches,
            )  # fmt: skip
        self._ambiguous = matches
        first: str = matches[0]
        return first

    def _wait_for_change(self, ctx: int, name: str | None) -> None:
        states = [(name, self._reader_state)] if name else []
        if self._pnp:
            states.append((PNP_NOTIFICATION, self._pnp_state))
        if not states:
            self._stop.wait(self._wait_s)
            return
        hr, result = scard.SCardGetStatusChange(ctx, int(self._wait_s * 1000), states)
        if hr in (scard.SCARD_E_TIMEOUT, scard.SCARD_E_CANCELLED):
            return
        if hr in _SERVICE_LOST:
            self._service_lost(hr)
        elif hr in _READER_LOST:
            self._reader_missing(f"{name} disappeared: {_describe(hr)}")
        elif hr != _OK:
            self._problem(f"waiting for cards failed: {_describe(hr)}")
            self._stop.wait(self._wait_s)
        else:
            before = (self._reader_state, self._pnp_state)
            for reader, event, _atr in result:
                if reader == PNP_NOTIFICATION:
                    self._pnp_state = event & ~scard.SCARD_STATE_CHANGED
                elif name is not None:
                    self._reader_event(ctx, name, event)
            if (self._reader_state, self._pnp_state) == before:
                self._stop.wait(0.05)  # pcscd said "changed" but nothing did: do not spin

    def _reader_event(self, ctx: int, name: str, event: int) -> None:
        if event & _GONE:
            self._reader_missing(f"{name} disappeared (unplugged?)")
            return
        present = bool(event & scard.SCARD_STATE_PRESENT)
        # The high word counts insertions and removals: if it moved while a card stayed
        # present, a card was taken away and presented again between two waits.
        again = self._card_there and present and event >> 16 != self._reader_state >> 16
        if self._card_there and (not present or again):
            self._card_left()
        arrived = present and (not self._card_there or again)
        self._reader_state = event & ~scard.SCARD_STATE_CHANGED
        self._card_there = present
        if arrived and event & scard.SCARD_STATE_MUTE:
            self._problem(f"a card on {name} does not answer (mute)")
        elif arrived:
            self._read_card(ctx, name)

    def _read_card(self, ctx: int, name: str) -> None:
        try:
            technology, ref, proven = self._transact(ctx, name)
        except _CardGone:
            log.debug("reader %s: card left before it was read", self._id)
            return
        except EdgeError as exc:  # ours: messages never carry card data
            self._problem(f"card not read: {exc}")
            return
        except Exception as exc:  # foreign (a referencer): the message might hold the id
            self._problem(f"card not read: {type(exc).__name__} from the card referencer")
            return
        self._card_ref, self._last_problem = ref, None
        if not self._debounce.arrived(ref, self._monotonic()):
            log.debug("reader %s: card %s… again within the debounce window", self._id, ref[:8])
            return
        self.taps += 1
        log.debug("reader %s: tap %s… (%s%s)", self._id, ref[:8], technology,
                  ", proven" if proven else "")  # fmt: skip
        self._send(CardPresented(self._id, ref, authenticated=proven))

    def _transact(self, ctx: int, name: str) -> tuple[str, str, bool]:
        """Read the card's id and, for a card with a key here, its proof: (tech, ref, proven)."""
        protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        hr, card, protocol = scard.SCardConnect(ctx, name, scard.SCARD_SHARE_SHARED, protocols)
        if hr in _CARD_LEFT:
            raise _CardGone
        if hr != _OK:
            raise _Unreadable(f"connect failed: {_describe(hr)}")

        def transmit(apdu: bytes) -> bytes:
            hr, response = scard.SCardTransmit(card, protocol, list(apdu))
            if hr in _CARD_LEFT:
                raise _CardGone
            if hr != _OK:
                raise _Unreadable(f"transmit failed: {_describe(hr)}")
            return bytes(response)

        try:
            hr, _reader, _state, _protocol, atr = scard.SCardStatus(card)
            if hr in _CARD_LEFT:
                raise _CardGone
            if hr != _OK:
                raise _Unreadable(f"status failed: {_describe(hr)}")
            technology, uid = card_identity(bytes(atr), transmit(GET_UID))
            ref = self._referencer(technology, uid.hex().upper())
            del uid
            # Only an ISO 14443 A card can be a DESFire card: no store read for the others.
            keys = self._card_keys if technology == "iso14443a" else None
            key = keys(ref) if keys is not None else None
            proven = keys is not None and key is not None and self._proves(transmit, ref, key, keys)
        finally:
            scard.SCardDisconnect(card, scard.SCARD_LEAVE_CARD)
        return technology, ref, proven

    def _proves(self, transmit: Callable[[bytes], bytes], ref: str, key: bytes,
                keys: CardKeys) -> bool:  # fmt: skip
        """Return True if the card holds its DESFire key and its MACed file names it."""
        try:
            identity = read_identity(
                transmit,
                aid=DESFIRE_AID,
                key_no=keys.desfire_key_no,
                key=key,
                file_no=DESFIRE_FILE,
                length=DESFIRE_FILE_SIZE,
                mode="mac",
            )
        except DesfireError as exc:  # ours: names the step and status, never a key or id
            log.info("reader %s: card %s… failed its DESFire proof: %s", self._id, ref[:8], exc)
            return False
        if not hmac.compare_digest(identity, bytes.fromhex(ref)):
            log.info("reader %s: card %s… holds another card's identity", self._id, ref[:8])
            return False
        return True

    # -- state changes ---------------------------------------------------------------------

    def _card_left(self) -> None:
        if self._card_ref is not None:
            self._debounce.left(self._card_ref, self._monotonic())
        self._card_ref, self._card_there = None, False

    def _service_lost(self, hr: int) -> None:
        self._release_context()
        self._reader_missing(f"lost pcscd: {_describe(hr)}")

    def _reader_missing(self, detail: str) -> None:
        self._card_left()
        self._reader_state = scard.SCARD_STATE_UNAWARE
        now = self._monotonic()
        if self._absent_since is None:
            self._absent_since, self._absent_detail = now, detail
            if self._online:
                log.info("reader %s: lost (%s)", self._id, detail)
        if self._online is not False and now - self._absent_since >= self._offline_after_s:
            self._online = False
            log.warning("reader %s: offline: %s", self._id, self._absent_detail)
            self._send(ReaderStatusChanged(self._id, False, self._absent_detail))

    def _problem(self, message: str) -> None:
        if message == self._last_problem:
            log.debug("reader %s: %s (again)", self._id, message)
        else:
            log.warning("reader %s: %s", self._id, message)
        self._last_problem = message

    def _send(self, event: Event) -> None:
        emit = self._emit
        if emit is None or self._stop.is_set():
            return
        try:
            emit(event)
        except Exception as exc:
            self._problem(f"emit failed: {type(exc).__name__}: {exc}")

    def _release_context(self) -> None:
        with self._lock:
            ctx, self._ctx = self._ctx, None
        if ctx is not None:
            scard.SCardReleaseContext(ctx)


# -- a desk reader: one card held for a personalisation ----------------------------------------


class DeskReaderError(EdgeError, RuntimeError):
    """The desk reader or its card cannot be used; the message says what to do."""


def pick_reader(names: list[str], wanted: str) -> str:
    """Return the reader `wanted` names: its number in `names` (0, 1, …) or part of its name."""
    listed = ", ".join(f"{i}: {n!r}" for i, n in enumerate(names)) or "none"
    if wanted.isdigit():
        if int(wanted) < len(names):
            return names[int(wanted)]
        raise DeskReaderError(f"there is no PC/SC reader number {wanted} (pcscd has {listed})")
    matches = [n for n in names if wanted in n]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DeskReaderError(f"no PC/SC reader name contains {wanted!r} (pcscd has {listed})")
    raise DeskReaderError(
        f"{len(matches)} PC/SC readers match {wanted!r} (pcscd has {listed}); give more of the "
        "name or the reader's number"
    )


@contextlib.contextmanager
def desk_card(wanted: str, timeout_s: float) -> Iterator[tuple[str, bytes, Transmit]]:
    """Wait for a card on the desk reader `wanted`; yield (technology, UID, transmit).

    The card is held exclusively until the block ends, then reset (ending any
    authentication). `transmit` sends one APDU and returns data and status word; it raises
    DeskReaderError when the card leaves. No message carries the UID.
    """
    hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
    if hr != _OK:
        raise DeskReaderError(f"cannot reach pcscd: {_describe(hr)}; is pcscd running?")
    try:
        hr, names = scard.SCardListReaders(ctx, [])
        name = pick_reader(list(names) if hr == _OK else [], wanted)
        _wait_present(ctx, name, timeout_s)
        protocols = scard.SCARD_PROTOCOL_T0 | scard.SCARD_PROTOCOL_T1
        hr, card, protocol = scard.SCardConnect(ctx, name, scard.SCARD_SHARE_EXCLUSIVE, protocols)
        if hr != _OK:
            raise DeskReaderError(
                f"cannot hold the card on {name!r}: {_describe(hr)}; leave it on the reader, "
                "and stop any other program using the reader"
            )
        try:

            def transmit(apdu: bytes) -> bytes:
                hr, response = scard.SCardTransmit(card, protocol, list(apdu))
                if hr != _OK:
                    raise DeskReaderError(f"the card left or stopped answering: {_describe(hr)}")
                return bytes(response)

            hr, _reader, _state, _protocol, atr = scard.SCardStatus(card)
            if hr != _OK:
                raise DeskReaderError(f"the card left the reader: {_describe(hr)}")
            technology, uid = card_identity(bytes(atr), transmit(GET_UID))
            yield technology, uid, transmit
        finally:
            scard.SCardDisconnect(card, scard.SCARD_RESET_CARD)
    finally:
        scard.SCardReleaseContext(ctx)


def _wait_present(ctx: int, name: str, timeout_s: float) -> None:
    """Return once a card lies on reader `name`; DeskReaderError after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    state = scard.SCARD_STATE_UNAWARE
    while True:
        left_ms = int(max(0.0, deadline - time.monotonic()) * 1000)
        hr, result = scard.SCardGetStatusChange(ctx, left_ms, [(name, state)])
        if hr == _OK:
            state = result[0][1] & ~scard.SCARD_STATE_CHANGED
            if state & _GONE:
                raise DeskReaderError(f"the reader {name!r} went away; plug it in again")
            if state & scard.SCARD_STATE_PRESENT and not state & scard.SCARD_STATE_MUTE:
                return
        elif hr != scard.SCARD_E_TIMEOUT:
            raise DeskReaderError(f"cannot watch the reader {name!r}: {_describe(hr)}")
        if time.monotonic() >= deadline:
            raise DeskReaderError(
                f"no card on {name!r} within {timeout_s:g} s; put the card on the reader and "
                "run the command again"
            )
