"""Credential deltas: verified before anything changes, applied only on their own base."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edge.cardref import card_reference
from edge.core.clock import Instant
from edge.core.credentials import Credential, DenyReason
from edge.core.policy import AccessPolicy, Rule
from edge.link.messages import InboundMessage
from edge.remote import SnapshotVerifier
from edge.snapshot import SnapshotError, parse
from edge.snapshot import build as build_snapshot
from edge.snapshot_delta import build
from edge.snapshot_delta import parse as parse_delta
from edge.store import Store
from edge.store.credentials import SqliteCredentials

from .agent_fixtures import CREDENTIALS_KEY, KEY, felica, sim_config
from .test_remote_inprocess import PREFIX, remote_side
from .test_runtime import Running, outbox

SITE, DEVICE = "kamakura-city-hall", "gate-1f-east"
ISSUED = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
POLICY = AccessPolicy(rules=(Rule("staff", frozenset({"gate-east"})),))
REFS = [card_reference(KEY, "felica", felica(n)) for n in range(6)]
PUBLIC = CREDENTIALS_KEY.public_key()


def staff(*numbers: int) -> list[Credential]:
    return [Credential(REFS[n], frozenset({"staff"})) for n in numbers]


def full(version: int, *numbers: int) -> bytes:
    return build_snapshot(
        CREDENTIALS_KEY,
        site=SITE,
        device=DEVICE,
        version=version,
        policy=POLICY,
        credentials=staff(*numbers),
        deny={},
        issued_at=ISSUED,
    )


def revoke(
    base: int, version: int, *numbers: int, key: Ed25519PrivateKey = CREDENTIALS_KEY
) -> bytes:
    refs = {REFS[n] for n in numbers}
    return build(
        key,
        site=SITE,
        device=DEVICE,
        base=base,
        version=version,
        removed=refs,
        deny=dict.fromkeys(refs, DenyReason.REVOKED),
        issued_at=ISSUED,
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "agent.db") as opened:
        yield opened


def apply(store: Store, data: bytes, delta: bool = True) -> bool:
    with store.transaction():
        credentials = SqliteCredentials(store.db)
        if delta:
            return credentials.apply_delta(
                parse_delta(data, PUBLIC, site=SITE, device=DEVICE), ISSUED
            )
        return credentials.apply(parse(data, PUBLIC, site=SITE, device=DEVICE), ISSUED)


def state(store: Store) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]], int]:
    db = store.db
    cards = db.execute("SELECT * FROM credentials ORDER BY ref").fetchall()
    deny = db.execute("SELECT * FROM deny ORDER BY ref").fetchall()
    return cards, deny, SqliteCredentials(db).version()


def test_a_revocation_delta_is_a_few_hundred_bytes_and_round_trips() -> None:
    data = revoke(40, 42, 3)
    assert len(data) < 600
    delta = parse_delta(data, PUBLIC, site=SITE, device=DEVICE)
    assert (delta.base, delta.version, delta.removed) == (40, 42, frozenset({REFS[3]}))
    assert delta.deny == {REFS[3]: DenyReason.REVOKED}
    assert REFS[3] not in repr(delta)


def test_the_delta_on_its_base_denies_the_revoked_card(store: Store) -> None:
    assert apply(store, full(40, 0, 1, 2, 3), delta=False)
    assert apply(store, revoke(40, 42, 3))
    credentials = SqliteCredentials(store.db)
    assert credentials.find(REFS[3]) is None
    assert credentials.denied(REFS[3]) is DenyReason.REVOKED
    assert (credentials.version(), credentials.base(), credentials.count()) == (42, 40, 3)
    assert credentials.policy().version == 42  # the base's policy, at the delta's version


def test_a_later_cumulative_delta_applies_on_top_of_an_earlier_one(
    store: Store, tmp_path: Path
) -> None:
    assert apply(store, full(40, 0, 1, 2, 3), delta=False)
    assert apply(store, revoke(40, 42, 3))
    # v44 from base 40: card 3 back in, card 1 revoked; a device that missed v42 gets the same.
    v44 = build(
        CREDENTIALS_KEY,
        site=SITE,
        device=DEVICE,
        base=40,
        version=44,
        credentials=staff(3),
        removed={REFS[1]},
        deny={REFS[1]: DenyReason.LOST},
        allowed={REFS[3]},
        issued_at=ISSUED,
    )
    assert apply(store, v44)
    assert not apply(store, v44)  # the retained delta again: nothing to do
    with Store(tmp_path / "missed.db") as missed:
        apply(missed, full(40, 0, 1, 2, 3), delta=False)
        apply(missed, v44)
        assert state(missed) == state(store)
    assert not apply(store, full(40, 0, 1, 2, 3), delta=False)  # its base, retained: kept


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (revoke(39, 43, 0), "built on snapshot v39"),  # another base
        (revoke(40, 41, 0), "not newer than v42"),  # an older delta, replayed
    ],
)
def test_a_delta_on_another_base_or_older_is_refused_and_changes_nothing(
    store: Store, data: bytes, why: str
) -> None:
    apply(store, full(40, 0, 1, 2, 3), delta=False)
    apply(store, revoke(40, 42, 3))
    before = state(store)
    with pytest.raises(SnapshotError, match=why):
        apply(store, data)
    assert state(store) == before


def test_a_delta_before_any_snapshot_is_refused(store: Store) -> None:
    with pytest.raises(SnapshotError, match="holds v0"):
        apply(store, revoke(40, 42, 3))
    assert state(store) == ([], [], 0)


def tampered(data: bytes, **changes: object) -> bytes:
    envelope = json.loads(data)
    envelope.update(changes)
    return json.dumps(envelope).encode()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (tampered(revoke(40, 42, 3), version=43), "signature"),
        (tampered(revoke(40, 42, 3), base=41), "signature"),
        (revoke(40, 42, 3, key=Ed25519PrivateKey.generate()), "signature"),
        (tampered(revoke(40, 42, 3), device="gate-2f-west"), "for device"),
        (tampered(revoke(40, 42, 3), site="zushi"), "for site"),
        (tampered(revoke(40, 42, 3), base=42), "1 <= base < version"),
        (full(42, 0), '"format" must be'),  # a snapshot's signature never passes for a delta's
        (tampered(full(42, 0), format="edge-credentials-delta/1", base=40), "signature"),
        (b"{not json", "not JSON"),
        (tampered(revoke(40, 42, 3), body=base64.b64encode(b"x" * 40).decode()), "signature"),
    ],
)
def test_a_forged_or_misdirected_delta_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(SnapshotError, match=why):
        parse_delta(data, PUBLIC, site=SITE, device=DEVICE)


def test_the_agent_refuses_a_delta_on_the_wrong_base_with_an_event(tmp_path: Path) -> None:
    device = sim_config(tmp_path)
    running = Running(device, connection=remote_side())
    try:
        running.agent.emit(InboundMessage(f"{PREFIX}/credentials", full(40, 0, 1), retained=True))
        running.agent.emit(
            InboundMessage(f"{PREFIX}/credentials/delta", revoke(39, 41, 0), retained=True)
        )
        running.agent.emit(
            InboundMessage(
                f"{PREFIX}/credentials/delta",
                tampered(revoke(40, 42, 0), version=43),
                retained=True,
            )
        )
        running.settle()
        running.readers["gate-east-in"].tap("felica", felica(0))
        running.settle()
        events = outbox(device.store)
        refused = [str(e["detail"]) for e in events if e["type"] == "credentials_refused"]
        assert len(refused) == 2
        assert "built on snapshot v39" in refused[0]
        assert "signature" in refused[1]
        assert [e["type"] for e in events if e["kind"] == "access"] == ["granted"]
        running.agent.emit(
            InboundMessage(f"{PREFIX}/credentials/delta", revoke(40, 42, 1), retained=True)
        )
        running.settle()
        running.readers["gate-east-in"].tap("felica", felica(1))
        running.settle()
        access = [e for e in outbox(device.store) if e["kind"] == "access"]
        assert (access[-1]["type"], access[-1]["reason"]) == ("denied", "revoked")
        applied = [e["version"] for e in outbox(device.store) if e["type"] == "credentials_applied"]
        assert applied == [40, 42]  # once each: stored with the set, not again by the loop
    finally:
        running.stop()


def test_an_applied_set_and_its_event_are_stored_together(store: Store) -> None:
    verifier = SnapshotVerifier(PUBLIC, SITE, DEVICE)
    now = Instant(0.0, ISSUED)
    assert verifier.apply(full(40, 0, 1, 2), store.db, now).version == 40
    assert verifier.apply(revoke(40, 42, 2), store.db, now, delta=True).version == 42
    refused = verifier.apply(revoke(39, 43, 1), store.db, now, delta=True)
    assert refused.error is not None
    assert "built on snapshot v39" in refused.error
    rows = store.db.execute("SELECT payload FROM outbox ORDER BY seq").fetchall()
    events = [json.loads(text) for (text,) in rows]
    assert [(e["type"], e["version"], e["cards"]) for e in events] == [
        ("credentials_applied", 40, 3),
        ("credentials_applied", 42, 2),
    ]
    assert SqliteCredentials(store.db).meta()["recorded"] is True
    assert verifier.apply(revoke(40, 42, 2), store.db, now, delta=True).version is None
    assert len(store.db.execute("SELECT seq FROM outbox").fetchall()) == 2  # no event again
