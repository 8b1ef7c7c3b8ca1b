"""Signed credential snapshots: what is accepted, and every way a bad one is refused."""

from __future__ import annotations

import base64
import json
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

import edge.snapshot as module
from edge.core.credentials import CardProfile, Credential, DenyReason
from edge.core.policy import AccessPolicy, Rule
from edge.snapshot import SnapshotError, _signed_bytes, build, parse
from edge.store import Store
from edge.store.card_keys import CardKeyLookup
from edge.store.credentials import SqliteCredentials

from .agent_fixtures import CREDENTIALS_KEY

PUBLIC = CREDENTIALS_KEY.public_key()
POLICY = AccessPolicy(rules=(Rule("staff", frozenset({"gate-east"})),))
CARDS = [
    Credential("a" * 64, frozenset({"staff"})),
    Credential(
        "b" * 64, frozenset({"staff", "finance"}), valid_until=datetime(2027, 3, 31, tzinfo=UTC)
    ),
]


def snapshot(
    version: int = 3,
    site: str = "kamakura-city-hall",
    device: str = "gate-1f-east",
    key: Ed25519PrivateKey = CREDENTIALS_KEY,
) -> bytes:
    return build(
        key,
        site=site,
        device=device,
        version=version,
        policy=POLICY,
        credentials=CARDS,
        deny={"c" * 64: DenyReason.LOST},
    )


def read(data: bytes) -> object:
    return parse(data, PUBLIC, site="kamakura-city-hall", device="gate-1f-east")


def test_round_trip() -> None:
    s = parse(snapshot(), PUBLIC, site="kamakura-city-hall", device="gate-1f-east")
    assert s.version == 3
    assert s.policy.version == 3
    assert set(s.credentials) == set(CARDS)
    assert s.deny == {"c" * 64: DenyReason.LOST}
    assert datetime.now(UTC) - s.issued_at < timedelta(minutes=1)


def test_a_snapshot_for_every_device_of_the_site() -> None:
    assert (
        parse(snapshot(device="*"), PUBLIC, site="kamakura-city-hall", device="anything").version
        == 3
    )


def tamper(data: bytes, **changes: object) -> bytes:
    envelope = json.loads(data)
    envelope.update(changes)
    return json.dumps(envelope).encode()


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (snapshot(key=Ed25519PrivateKey.generate()), "does not verify"),
        (tamper(snapshot(), version=4), "does not verify"),
        (
            tamper(
                snapshot(), body=base64.b64encode(zlib.compress(b'{"credentials": []}')).decode()
            ),
            "does not verify",
        ),
        (snapshot(site="another-city"), "site 'another-city'"),
        (snapshot(device="stair-b-2f"), "device 'stair-b-2f'"),
        (tamper(snapshot(), format="v0"), '"format" must be'),
        (tamper(snapshot(), signature="!!!"), "not base64"),
        (tamper(snapshot(), version="3"), "whole number"),
        (b"\x00\x01garbage", "not JSON"),
        (b"[1, 2]", '"format" must be'),
        (json.dumps({"format": "edge-credentials/1"}).encode(), "missing fields"),
    ],
)
def test_refused(data: bytes, words: str) -> None:
    with pytest.raises(SnapshotError, match=words):
        read(data)


def test_a_compression_bomb_is_refused_not_inflated(monkeypatch: pytest.MonkeyPatch) -> None:
    many = [Credential(f"{n:064x}", frozenset({"staff"})) for n in range(100)]
    data = build(
        CREDENTIALS_KEY,
        site="kamakura-city-hall",
        device="gate-1f-east",
        version=3,
        policy=POLICY,
        credentials=many,
        deny={},
    )
    assert read(data)  # fine under the real cap
    monkeypatch.setattr(module, "MAX_BODY", 1024)  # the real cap is 256 MiB; same code path
    with pytest.raises(SnapshotError, match="larger than"):
        read(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes_never_crash_the_parser(data: bytes) -> None:
    with pytest.raises(SnapshotError):
        read(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(
            ["format", "site", "device", "version", "issued_at", "body", "signature", "key_id"]
        ),
        json_values,
    )
)
def test_random_envelopes_never_crash_the_parser(envelope: dict[str, object]) -> None:
    envelope.setdefault("format", "edge-credentials/1")
    with pytest.raises(SnapshotError):
        read(json.dumps(envelope).encode())


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_a_signed_but_malformed_body_is_refused_cleanly(body: object) -> None:
    """Even a body signed with the right key must be well-formed."""
    envelope = json.loads(snapshot())
    envelope["body"] = base64.b64encode(zlib.compress(json.dumps(body).encode())).decode()

    envelope["signature"] = base64.b64encode(CREDENTIALS_KEY.sign(_signed_bytes(envelope))).decode()
    with pytest.raises(SnapshotError):
        read(json.dumps(envelope).encode())


def test_proving_cards_carry_their_profile_and_this_devices_key_and_apply_to_the_store(
    tmp_path: Path,
) -> None:
    lite = Credential("d" * 64, frozenset({"staff"}), profile=CardProfile.LITE_S)
    desfire = Credential("e" * 64, frozenset({"security"}), profile=CardProfile.DESFIRE)
    keys = {lite.ref: bytes(range(16)), desfire.ref: bytes(range(16, 32))}
    data = build(
        CREDENTIALS_KEY,
        site="kamakura-city-hall",
        device="gate-1f-east",
        version=4,
        policy=POLICY,
        credentials=[*CARDS, lite, desfire],
        deny={},
        card_keys={**keys, CARDS[0].ref: b"\xff" * 16},  # an id-only card gets no key
    )
    parsed = parse(data, PUBLIC, site="kamakura-city-hall", device="gate-1f-east")
    assert set(parsed.credentials) == {*CARDS, lite, desfire}
    assert dict(parsed.card_keys) == keys
    assert keys[lite.ref].hex() not in repr(parsed)
    store = Store(tmp_path / "edge.db")
    try:
        credentials = SqliteCredentials(store.db)
        with store.transaction():
            credentials.apply(parsed, datetime.now(UTC))
        found = credentials.find(lite.ref)
        assert found is not None
        assert found.profile is CardProfile.LITE_S
        lookup = CardKeyLookup(tmp_path / "edge.db")
        try:
            assert lookup(lite.ref) == keys[lite.ref]
            assert lookup(desfire.ref) == keys[desfire.ref]
            assert lookup(CARDS[0].ref) is None
            assert lookup("f" * 64) is None
        finally:
            lookup.close()
    finally:
        store.close()


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (["a" * 64, ["staff"], None, None, "lite-s", "00"], "must be 16 bytes"),
        (["a" * 64, ["staff"], None, None, "magstripe", None], "magstripe"),
        (["a" * 64, ["staff"], None, None, "lite-s"], "profile?, key?"),
        (["a" * 64, ["staff"], None, None, "desfire", "zz" * 16], "malformed"),
    ],
)
def test_a_bad_proving_card_row_is_refused_without_showing_a_key(
    row: list[object], words: str
) -> None:
    body = {"policy": {}, "credentials": [row], "deny": []}
    raw = base64.b64encode(zlib.compress(json.dumps(body).encode())).decode()
    envelope = {
        "format": module.FORMAT,
        "site": "kamakura-city-hall",
        "device": "gate-1f-east",
        "version": 5,
        "issued_at": "2026-12-01T00:00:00.000Z",
        "body": raw,
    }
    envelope["signature"] = base64.b64encode(CREDENTIALS_KEY.sign(_signed_bytes(envelope))).decode()
    with pytest.raises(SnapshotError, match="malformed") as refused:
        read(json.dumps(envelope).encode())
    assert words in str(refused.value)
    assert "00" * 16 not in str(refused.value)
