"""DESFire proofs through the real PC/SC stack: the reader adapter against the simulator's card.

The card (simulator/desfire_card.py) and the reader's protocol (edge/readers/desfire.py) were
written apart, each from NXP's documents; here they meet through pyscard, pcscd and vpcd.
"""

from __future__ import annotations

import json
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from edge.card_layout import DESFIRE_AID, DESFIRE_FILE
from edge.cardref import card_reference
from edge.core.credentials import CardProfile
from edge.core.events import CardPresented, Event
from edge.keys import read_card_key
from edge.signing import load_public_key
from edge.snapshot import Snapshot, parse
from edge.store import Store
from edge.store.credentials import SqliteCredentials
from edge.system import SystemClock
from firmware_config.loader import load_config
from simulator.desfire_card import Application, DataFile, DesfireCard, Exchange
from simulator.pins import WatchedFactory, idle_inputs
from simulator.readers import SimCardReader
from simulator.vpcd import Applet
from tests.edge.agent_fixtures import sim_config
from tests.edge.readers.pcsc_stack import ISO14443A_ATR, READER, PcscStack
from tests.provisioning.commands import provision

pytest.importorskip("smartcard", reason="pyscard is not installed: pip install -e '.[pcsc]'")
from edge.app import build_agent, hardware_reader
from edge.readers.pcsc import PcscCardReader

pytestmark = pytest.mark.services  # pcscd with vpcd

SITE_KEY = bytes(range(32))
UID = bytes.fromhex("04A2B3C4D5E680")
REF = card_reference(SITE_KEY, "iso14443a", UID.hex().upper())
APP_MASTER = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
GATE_KEY = bytes.fromhex("A8DD63A3B89D54B37CA802473FDA9175")
DOOR_KEY = bytes.fromhex("0F1E2D3C4B5A69788796A5B4C3D2E1F0")


class Keys:
    """This device's keys: the gate's read key (key 1) for the one enrolled card."""

    desfire_key_no = 1

    def __init__(self, keys: dict[str, bytes]) -> None:
        self.keys = keys
        self.asked: list[str] = []

    def __call__(self, ref: str) -> bytes | None:
        self.asked.append(ref)
        return self.keys.get(ref)


def staff_card(file_data: bytes = bytes.fromhex(REF), gate_key: bytes = GATE_KEY) -> DesfireCard:
    application = Application(
        keys={0: APP_MASTER, 1: gate_key, 2: DOOR_KEY},
        files={DESFIRE_FILE: DataFile(file_data, "mac", frozenset({1, 2}))},
    )
    return DesfireCard(UID, {DESFIRE_AID: application})


class Replay:
    """A clone that plays back a genuine card's answers, in order, to whatever is asked."""

    def __init__(self, recorded: list[Exchange]) -> None:
        self.answers = [e.response for e in recorded]

    def answer(self, apdu: bytes) -> bytes:
        return self.answers.pop(0) if self.answers else bytes.fromhex("91CA")

    def reset(self) -> None:
        """Nothing to forget: a recording has no state."""


Tap = Callable[[Applet | None], CardPresented]


@pytest.fixture
def tap(pcsc: PcscStack) -> Iterator[Tap]:
    """Present a card with the UID of the enrolled one to a gate reader; return its read."""
    keys = Keys({REF: GATE_KEY})
    reader = PcscCardReader(
        "gate-in", READER, partial(card_reference, SITE_KEY), debounce_s=0, card_keys=keys
    )
    events: queue.Queue[Event] = queue.Queue()
    reader.start(events.put)
    assert reader.wait_for(lambda: reader.online is True), "the reader never found the PCD"

    def present(applet: Applet | None) -> CardPresented:
        card = pcsc.card(ISO14443A_ATR, UID, applet=applet)
        card.insert()
        try:
            event = events.get(timeout=10)
        except queue.Empty:
            pytest.fail("no card read within 10 s")
        card.remove()
        pcsc.wait_reader(present=False)
        assert isinstance(event, CardPresented)
        assert keys.asked[-1] == REF
        return event

    yield present
    reader.close()


def test_the_genuine_card_proves_itself(tap: Tap, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="edge.readers")
    card = staff_card()
    event = tap(card)
    assert event == CardPresented("gate-in", REF, authenticated=True)
    commands = [e.command[1] for e in card.history]
    assert commands == [0x5A, 0x71, 0xAF, 0xBD]  # select, authenticate (2 parts), read
    text = caplog.text.upper()
    assert UID.hex().upper() not in text
    assert GATE_KEY.hex().upper() not in text


def test_a_card_with_another_key_is_not_proven(tap: Tap) -> None:
    event = tap(staff_card(gate_key=DOOR_KEY))
    assert event == CardPresented("gate-in", REF, authenticated=False)


def test_a_uid_only_clone_is_not_proven(tap: Tap) -> None:
    assert tap(None) == CardPresented("gate-in", REF, authenticated=False)


def test_a_card_holding_another_cards_identity_is_not_proven(tap: Tap) -> None:
    other = bytes.fromhex(card_reference(SITE_KEY, "iso14443a", "04000000000001"))
    assert tap(staff_card(file_data=other)).authenticated is False


def test_a_replayed_transcript_of_the_genuine_card_is_not_proven(tap: Tap) -> None:
    genuine = staff_card()
    assert tap(genuine).authenticated is True
    assert tap(Replay(genuine.history)).authenticated is False


# -- personalisation at the desk: edge-provision through pcscd, then the readers prove it ------

OWNED_UID = bytes.fromhex("04A2B3C4D5E681")  # S001's card, enrolled by its UID
STAFF_CSV = (
    "staff_no,name,department,card_tech,card_id,groups,valid_from,valid_until\n"
    "S002,鈴木 太郎,警備,felica,0114A1B2C3D4E5F7,staff,,\n"
    f"S001,佐藤 花子,総務課,iso14443a,{OWNED_UID.hex().upper()},staff,,\n"
)


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A site with a gate, a stairway door and staff S002 (who has a UID-only card so far)."""
    site = tmp_path / "site"
    csv = tmp_path / "staff.csv"
    csv.write_text(STAFF_CSV, encoding="utf-8")
    steps = [
        ("site", "init", "--site", "kamakura-city-hall"),
        ("device", "add", "gate-1f-east", "--role", "gate"),
        ("device", "add", "stair-b-2f", "--role", "door"),
        ("rules", "add", "staff", "--doors", "gate-east,stair-b-2f"),
        ("cards", "import", str(csv)),
    ]
    for step in steps:
        result = provision(*step, "--dir", str(site))
        assert result.returncode == 0, (step, result.stderr)
    return site


def personalise_on_desk(
    pcsc: PcscStack, card: DesfireCard, site: Path, reader: str = READER
) -> CompletedProcess[str]:
    """Lay `card` on the desk reader and run `edge-provision cards personalise --card desfire`."""
    virtual = pcsc.card(ISO14443A_ATR, card.uid, applet=card)
    virtual.insert()
    try:
        return provision(
            "cards", "personalise", "--card", "desfire", "--reader", reader,
            "--staff-no", "S002", "--timeout-s", "10", "--dir", str(site),
        )  # fmt: skip
    finally:
        virtual.remove()
        pcsc.wait_reader(present=False)


def snapshot(site: Path, out: Path, device: str) -> Snapshot:
    return parse(
        next(out.glob(f"{device}.v*.json")).read_bytes(),
        load_public_key(site / "keys" / "credentials.pub"),
        site="kamakura-city-hall",
        device=device,
    )


def read_at(
    pcsc: PcscStack, card: DesfireCard, site_key: bytes, card_keys: dict[str, bytes], key_no: int
) -> Event:
    """Tap `card` on a reader that checks proving cards with `card_keys` in slot `key_no`."""
    keys = Keys(card_keys)
    keys.desfire_key_no = key_no
    reader = PcscCardReader(
        "desk", READER, partial(card_reference, site_key), debounce_s=0, card_keys=keys
    )
    events: queue.Queue[Event] = queue.Queue()
    reader.start(events.put)
    try:
        assert reader.wait_for(lambda: reader.online is True), "the reader never found the PCD"
        virtual = pcsc.card(ISO14443A_ATR, UID, applet=card)
        virtual.insert()  # held until read: the proof takes several exchanges after GET DATA
        try:
            return events.get(timeout=10)
        except queue.Empty:
            pytest.fail("no card read within 10 s")
        finally:
            virtual.remove()
            pcsc.wait_reader(present=False)
    finally:
        reader.close()


def test_a_blank_card_personalised_at_the_desk_proves_itself_at_a_gate_and_a_door(
    pcsc: PcscStack, site: Path, tmp_path: Path
) -> None:
    card = DesfireCard.blank(UID)
    result = personalise_on_desk(pcsc, card, site)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "personalised a DESFire EV2 card for staff S002\n"
    assert result.stderr == f"put a blank DESFire EV2 card on {READER} …\n"
    shown = (result.stdout + result.stderr).upper()
    assert UID.hex().upper() not in shown
    assert card.applications[DESFIRE_AID].settings == 0x01  # frozen

    out = tmp_path / "out"
    published = provision("publish", "--dir", str(site), "--out", str(out))
    assert published.returncode == 0, published.stderr
    site_key = read_card_key(site / "keys" / "card-key")
    ref = card_reference(site_key, "iso14443a", UID.hex().upper())
    gate, door = snapshot(site, out, "gate-1f-east"), snapshot(site, out, "stair-b-2f")
    for shot in (gate, door):
        (credential,) = [c for c in shot.credentials if c.ref == ref]
        assert credential.profile is CardProfile.DESFIRE
    assert gate.card_keys[ref] != door.card_keys[ref]

    proven = CardPresented("desk", ref, authenticated=True)
    assert read_at(pcsc, card, site_key, dict(gate.card_keys), 1) == proven
    assert read_at(pcsc, card, site_key, dict(door.card_keys), 2) == proven
    # A gate's key is no door's: the card refuses it in the door's slot.
    crossed = read_at(pcsc, card, site_key, {ref: gate.card_keys[ref]}, 2)
    assert crossed == CardPresented("desk", ref, authenticated=False)


def test_a_second_personalisation_of_the_same_card_is_refused(pcsc: PcscStack, site: Path) -> None:
    card = DesfireCard.blank(UID)
    assert personalise_on_desk(pcsc, card, site, reader="0").returncode == 0  # by its number
    keys = dict(card.applications[DESFIRE_AID].keys)
    again = personalise_on_desk(pcsc, card, site)
    assert again.returncode == 2
    assert again.stderr.splitlines()[-1] == (
        "cards personalise refused: the card is already personalised with this site's keys; it "
        "needs no second personalisation (record it as the staff member's card if it is not yet)"
    )
    assert card.applications[DESFIRE_AID].keys == keys
    assert UID.hex().upper() not in again.stderr.upper()


def test_a_card_with_another_card_master_key_is_refused_and_not_recorded(
    pcsc: PcscStack, site: Path
) -> None:
    card = DesfireCard.blank(UID, picc_key=bytes.fromhex("5A" * 16))
    result = personalise_on_desk(pcsc, card, site)
    assert result.returncode == 2
    assert "cards personalise refused: the card's master key is not a blank card's" in result.stderr
    assert card.applications == {}
    with sqlite3.connect(site / "registry.db") as db:
        profiles = [p for (p,) in db.execute("SELECT profile FROM cards WHERE staff_no = 'S002'")]
    assert profiles == ["uid"]


def test_an_unknown_desk_reader_is_named_with_the_readers_there(
    pcsc: PcscStack, site: Path
) -> None:
    result = provision(
        "cards", "personalise", "--card", "desfire", "--reader", "ACR1252",
        "--staff-no", "S002", "--timeout-s", "1", "--dir", str(site),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "cards personalise refused: no PC/SC reader name contains 'ACR1252' "
        "(pcscd has 0: 'Virtual PCD 00 00', 1: 'Virtual PCD 00 01')"
    )


def test_a_card_the_registry_gives_to_someone_else_is_refused_before_it_is_written(
    pcsc: PcscStack, site: Path
) -> None:
    card = DesfireCard.blank(OWNED_UID)
    result = personalise_on_desk(pcsc, card, site)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "cards personalise refused: this card belongs to staff 'S001'; revoke it there first"
    )
    assert card.applications == {}
    assert [e.command for e in card.history] == []  # not one native command reached it


def test_the_agent_opens_the_gate_for_the_personalised_card_and_not_for_its_uid(
    pcsc: PcscStack, site: Path, tmp_path: Path
) -> None:
    """The whole chain: desk, publish, the gate's store, the agent's PC/SC reader, its relay."""
    card = DesfireCard.blank(UID)
    assert personalise_on_desk(pcsc, card, site).returncode == 0
    out = tmp_path / "out"
    assert provision("publish", "--dir", str(site), "--out", str(out)).returncode == 0
    gate = snapshot(site, out, "gate-1f-east")
    (tmp_path / "agent").mkdir()
    device = sim_config(tmp_path / "agent")
    text = device.config.read_text()
    # The entry reader becomes the vpcd virtual reader; the exit reader stays simulated.
    text = text.replace('kind = "sim"', f'kind = "pcsc"\nmatch = "{READER}"\ndebounce_s = 0', 1)
    device.config.write_text(text)
    with Store(device.store) as store, store.transaction():
        SqliteCredentials(store.db).apply(gate, datetime.now(UTC))
    config = load_config(device.config)
    factory = WatchedFactory()

    def readers(cfg, referencer, card_keys):  # type: ignore[no-untyped-def]
        if cfg.kind == "sim":
            return SimCardReader(cfg.id, referencer, cfg.debounce_s)
        return hardware_reader(cfg, referencer, card_keys)

    agent, startup = build_agent(
        config,
        card_key=read_card_key(site / "keys" / "card-key"),
        pin_factory=factory,
        clock=SystemClock(),
        reader_factory=readers,
    )
    idle_inputs(factory, config)
    handled = threading.Condition()

    def notify(*_: object) -> None:
        with handled:
            handled.notify_all()

    agent.when_processed(notify)
    agent.start(startup)
    loop = threading.Thread(target=agent.run, daemon=True)
    loop.start()

    def access() -> list[tuple[str, str]]:
        with sqlite3.connect(agent.store.path) as db:
            events = [json.loads(p) for (p,) in db.execute("SELECT payload FROM outbox")]
        return [(e["kind"], e.get("reason") or e.get("type")) for e in events
                if e["kind"] in ("access", "alarm") and e.get("type") != "crossing"]  # fmt: skip

    def tap(applet: Applet | None, wanted: int) -> None:
        virtual = pcsc.card(ISO14443A_ATR, UID, applet=applet)
        virtual.insert()
        try:
            with handled:
                assert handled.wait_for(lambda: len(access()) >= wanted, 10), access()
        finally:
            virtual.remove()
            pcsc.wait_reader(present=False)

    try:
        relay = factory.pin(17)  # the gate's strike relay
        tap(card, 1)
        assert factory.wait_for(lambda: relay.state is True, 5.0), "the strike never opened"
        assert access() == [("access", "granted")]
        factory.pin(27).drive_high()  # the gate opens ...
        factory.pin(27).drive_low()  # ... and closes: the strike relocks
        assert factory.wait_for(lambda: relay.state is False, 5.0), "the strike never relocked"
        changes = len(relay.states)
        tap(None, 3)  # a copy of its UID without the key
        assert access()[1:] == [
            ("access", "card_not_authenticated"),
            ("alarm", "clone_suspected"),
        ]
        assert len(relay.states) == changes  # the relay never moved for the copy
    finally:
        agent.stop()
        loop.join(5)
        agent.close()


def test_no_card_on_the_desk_reader_within_the_timeout_is_a_clear_refusal(
    pcsc: PcscStack, site: Path
) -> None:
    result = provision(
        "cards", "personalise", "--card", "desfire", "--reader", "0",
        "--staff-no", "S002", "--timeout-s", "1", "--dir", str(site),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        f"cards personalise refused: no card on {READER!r} within 1 s; put the card on the "
        "reader and run the command again"
    )
