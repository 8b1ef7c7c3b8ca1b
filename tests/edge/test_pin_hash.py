"""PIN hashes: known answers, the text form, the snapshot and the device store, the worker."""

from __future__ import annotations

import base64
import hashlib
import json
import queue
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest

import edge.snapshot as module
from edge.core.credentials import Credential
from edge.core.events import PinChecked, PinOutcome
from edge.core.outputs import CheckPin
from edge.pin_check import PinChecker
from edge.pin_hash import PinError, check_pin, hash_pin, parse_pin, pin_text
from edge.snapshot import SnapshotError, _signed_bytes, build, parse
from edge.store import Store
from edge.store.credentials import SqliteCredentials

from .agent_fixtures import CREDENTIALS_KEY
from .test_snapshot import POLICY

SALT = bytes(range(16))
# scrypt(N=2**14, r=8, p=1, dklen=32) of "2580" and "2581" with SALT, as computed by
# the cryptography package's Scrypt (an implementation apart from hashlib's).
KNOWN_PIN = "4d321c1e43b82d5ad3c756d20edcbce6c4b572854b2241f8243ccca7ed153fe8"
KNOWN_DURESS = "3beff872e543677fcd027faadf704e3469518db926ee2c470a9b24989ef5da1b"
SITE, DEVICE = "kamakura-city-hall", "gate-1f-east"


def test_scrypt_matches_rfc_7914() -> None:
    # RFC 7914 section 12, third vector (N=16384, r=8, p=1): the primitive under our hash.
    derived = hashlib.scrypt(b"pleaseletmein", salt=b"SodiumChloride", n=16384, r=8, p=1)
    assert derived.hex().startswith(
        "7023bdcb3afd7348461c06cd81fd38ebfda8fbba904f8e3ea9b543f6545da1f2"
    )


def test_pin_hash_known_answer() -> None:
    h = hash_pin("2580", "2581", salt=SALT)
    assert (h.n, h.r, h.p, h.salt) == (2**14, 8, 1, SALT)
    assert h.hash.hex() == KNOWN_PIN
    assert h.duress is not None
    assert h.duress.hex() == KNOWN_DURESS


def test_check_pin_outcomes() -> None:
    h = hash_pin("2580", "2581", salt=SALT)
    assert check_pin(h, "2580") is PinOutcome.RIGHT
    assert check_pin(h, "2581") is PinOutcome.DURESS
    assert check_pin(h, "2582") is PinOutcome.WRONG
    assert check_pin(h, "") is PinOutcome.WRONG
    assert check_pin(hash_pin("2580"), "2581") is PinOutcome.WRONG
    assert hash_pin("2580").salt != hash_pin("2580").salt  # a fresh salt each time


@pytest.mark.parametrize(
    ("pin", "duress"),
    [("123", None), ("123456789", None), ("12a4", None), ("1234", "1234"), ("1234", "12")],
)
def test_bad_pins_are_refused_without_their_value(pin: str, duress: str | None) -> None:
    with pytest.raises(PinError) as refused:
        hash_pin(pin, duress)
    assert pin not in str(refused.value)


def test_text_form_round_trip_and_repr() -> None:
    h = hash_pin("2580", "2581", salt=SALT)
    text = pin_text(h)
    assert text.startswith("scrypt$16384$8$1$")
    assert parse_pin(text) == h
    no_duress = hash_pin("2580", salt=SALT)
    assert parse_pin(pin_text(no_duress)) == no_duress
    assert pin_text(no_duress).endswith("$-")
    assert repr(h) == "PinHash(n=16384, r=8, p=1)"


@pytest.mark.parametrize(
    "text",
    [
        "argon2$1$2$3$a$b$-",
        "scrypt$16384$8$1$AAAA",
        "scrypt$16385$8$1$AAECAwQFBgcICQoLDA0ODw==$AAAA$-",
        "scrypt$33554432$8$1$AAECAwQFBgcICQoLDA0ODw==$AAAA$-",
        "scrypt$16384$8$1$AAECAwQFBgcICQoLDA0ODw==$AAAA$-",
        "scrypt$16384$8$1$AAECAwQFBgcICQoLDA0ODw==$!!$-",
    ],
)
def test_bad_text_is_refused(text: str) -> None:
    with pytest.raises(PinError) as refused:
        parse_pin(text)
    assert "AAECAwQFBgcICQoLDA0ODw" not in str(refused.value)


def test_snapshot_and_store_round_trip_with_a_pin(tmp_path: Path) -> None:
    pin = hash_pin("2580", "2581", salt=SALT)
    cards = [
        Credential("a" * 64, frozenset({"staff"}), pin=pin),
        Credential("b" * 64, frozenset({"staff"})),
    ]
    data = build(
        CREDENTIALS_KEY,
        site=SITE,
        device=DEVICE,
        version=6,
        policy=POLICY,
        credentials=cards,
        deny={},
    )
    assert b"2580" not in zlib.decompress(base64.b64decode(json.loads(data)["body"]))
    parsed = parse(data, CREDENTIALS_KEY.public_key(), site=SITE, device=DEVICE)
    assert list(parsed.credentials) == cards
    assert parsed.credentials[0].pin == pin
    store = Store(tmp_path / "edge.db")
    try:
        credentials = SqliteCredentials(store.db)
        with store.transaction():
            credentials.apply(parsed, datetime.now(UTC))
        found = credentials.find("a" * 64)
        assert found is not None
        assert found.pin == pin
        other = credentials.find("b" * 64)
        assert other is not None
        assert other.pin is None
    finally:
        store.close()


def test_a_bad_pin_row_is_refused_without_showing_the_hash() -> None:
    text = pin_text(hash_pin("2580", salt=SALT)).replace("$8$", "$99$")
    body = {
        "policy": {},
        "credentials": [["a" * 64, ["staff"], None, None, "uid", None, text]],
        "deny": [],
    }
    envelope = {
        "format": module.FORMAT,
        "site": SITE,
        "device": DEVICE,
        "version": 5,
        "issued_at": "2026-12-01T00:00:00.000Z",
        "body": base64.b64encode(zlib.compress(json.dumps(body).encode())).decode(),
    }
    envelope["signature"] = base64.b64encode(CREDENTIALS_KEY.sign(_signed_bytes(envelope))).decode()
    with pytest.raises(SnapshotError, match="PIN of aaaaaaaa") as refused:
        parse(json.dumps(envelope).encode(), CREDENTIALS_KEY.public_key(), site=SITE, device=DEVICE)
    assert text.split("$")[5] not in str(refused.value)


def test_the_worker_answers_off_the_loop() -> None:
    answers: queue.Queue[PinChecked] = queue.Queue()
    checker = PinChecker(answers.put)
    pin = hash_pin("2580", "2581", salt=SALT)
    try:
        for ticket, digits in enumerate(("2580", "2581", "0000")):
            checker.submit(CheckPin("gate-in", "ref-a", ticket, digits, pin))
        outcomes = [answers.get(timeout=10) for _ in range(3)]
    finally:
        checker.close()
        checker.close()
    assert outcomes == [
        PinChecked("gate-in", "ref-a", 0, PinOutcome.RIGHT),
        PinChecked("gate-in", "ref-a", 1, PinOutcome.DURESS),
        PinChecked("gate-in", "ref-a", 2, PinOutcome.WRONG),
    ]
