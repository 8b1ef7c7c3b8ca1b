"""What a card's proof costs at the reader, against reading its id alone, in the same run.

* DESFire over PC/SC (pcscd + vpcd + the simulator's DESFire card, inserted and left there):
  the reader's whole transaction — connect, GET DATA, the card reference, then for the proven
  read SelectApplication, AuthenticateEV2First (two frames) and a MACed ReadData — timed per
  read, the id-only read and the proven read alternating. vpcd's card poll is not in it: the
  card stays in the field.
* FeliCa Lite-S over nfcpy's udp driver (the simulator's emulated card): from the card's
  first answer to the reader's CardPresented, with the card's key looked up and proven,
  against the same card read by its IDm alone.

Figures are printed, never asserted. Needs root, pcscd and vsmartcard-vpcd (./check installs
them), and no other pcscd running.

    python bench/proven.py [--reads 300] [--taps 20]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from smartcard import scard

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from edge.card_layout import DESFIRE_AID, DESFIRE_FILE
from edge.cardref import card_reference
from edge.readers.nfc import NfcCardReader
from edge.readers.pcsc import PcscCardReader
from simulator.desfire_card import Application, DataFile, DesfireCard
from tests.edge.readers.nfc_fixtures import EmulatedCard, Recorder, free_udp_port
from tests.edge.readers.pcsc_stack import ISO14443A_ATR, READER, PcscStack

SITE_KEY = bytes(range(32))
UID = bytes.fromhex("04A2B3C4D5E680")
IDM = "0114A1B2C3D4E5F7"
CARD_KEY = bytes.fromhex("A8DD63A3B89D54B37CA802473FDA9175")
LITE_S_PMM = "00F1000000FFFF00"


class Keys:
    """A device's keys: none (id only) or the one card's key (proven)."""

    desfire_key_no = 1

    def __init__(self, key: bytes | None) -> None:
        self.key = key

    def __call__(self, ref: str) -> bytes | None:
        return self.key


def figures(samples: list[float]) -> str:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return (
        f"median {statistics.median(ordered):7.2f} ms  p95 {pick(0.95):7.2f}  "
        f"p99 {pick(0.99):7.2f}  (n={len(ordered)})"
    )


def desfire(reads: int) -> tuple[list[float], list[float]]:
    stack = PcscStack(Path(tempfile.mkdtemp(prefix="bench-proven-")))
    stack.start()
    try:
        ref = card_reference(SITE_KEY, "iso14443a", UID.hex().upper())
        files = {DESFIRE_FILE: DataFile(bytes.fromhex(ref), "mac", frozenset({1, 2}))}
        application = Application(keys={0: bytes(16), 1: CARD_KEY, 2: bytes(16)}, files=files)
        card = stack.card(ISO14443A_ATR, UID, applet=DesfireCard(UID, {DESFIRE_AID: application}))
        card.insert()
        stack.wait_reader(present=True)
        referencer = partial(card_reference, SITE_KEY)
        id_only = PcscCardReader("b", READER, referencer, card_keys=Keys(None))
        proven = PcscCardReader("b", READER, referencer, card_keys=Keys(CARD_KEY))
        hr, ctx = scard.SCardEstablishContext(scard.SCARD_SCOPE_USER)
        assert hr == scard.SCARD_S_SUCCESS, scard.SCardGetErrorMessage(hr)
        plain: list[float] = []
        strong: list[float] = []
        try:
            for _ in range(reads):
                for reader, out, expected in ((id_only, plain, False), (proven, strong, True)):
                    start = time.perf_counter()
                    _tech, _ref, was_proven = reader._transact(ctx, READER)
                    out.append((time.perf_counter() - start) * 1000)
                    assert was_proven is expected, "the proof did not go as it should"
        finally:
            scard.SCardReleaseContext(ctx)
        card.remove()
        return plain, strong
    finally:
        stack.stop()


def lite_s(taps: int) -> tuple[list[float], list[float]]:
    plain: list[float] = []
    strong: list[float] = []
    for _ in range(taps):
        for key, out in ((None, plain), (CARD_KEY, strong)):
            port = free_udp_port()
            reader = NfcCardReader(
                "b",
                f"udp:127.0.0.1:{port}",
                partial(card_reference, SITE_KEY),
                targets=("212F",),
                card_key=Keys(key),
            )
            events = Recorder()
            reader.start(events)
            card_args = ("--idm", IDM, "--pmm", LITE_S_PMM, "--card-key", CARD_KEY.hex())
            with EmulatedCard(port, *card_args) as card:
                answered = card.wait_for("answered")
                assert events.wait_for(lambda r: bool(r.taps)), "no tap"
                (tap, seen), *_ = [(e, t) for e, t in events.events if e in events.taps]
                assert tap.authenticated is (key is not None), "the proof did not go as it should"
                out.append((seen - answered) * 1000)
                card.remove()
            reader.close()
    return plain, strong


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reads", type=int, default=300, help="DESFire reads of each kind")
    parser.add_argument("--taps", type=int, default=20, help="Lite-S taps of each kind")
    args = parser.parse_args()
    print(f"# {platform.machine()} Python {sys.version.split()[0]}, {platform.node()}")
    plain, strong = desfire(args.reads)
    print("DESFire over PC/SC (pcscd + vpcd), the reader's transaction, card in the field:")
    print(f"  id only (GET DATA)                    {figures(plain)}")
    print(f"  proven (EV2First + MACed ReadData)    {figures(strong)}")
    print(f"  ratio of medians: {statistics.median(strong) / statistics.median(plain):.2f}")
    plain, strong = lite_s(args.taps)
    print("FeliCa Lite-S over nfcpy udp, card's first answer -> CardPresented:")
    print(f"  id only (IDm)                         {figures(plain)}")
    print(f"  proven (mutual auth + MACed ID block) {figures(strong)}")
    print(f"  ratio of medians: {statistics.median(strong) / statistics.median(plain):.2f}")


if __name__ == "__main__":
    main()
