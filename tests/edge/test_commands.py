"""Command verification without a broker: every refusal reason, and fuzzing."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlite_utils
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.commands import CommandVerifier, NonceCache, Verdict, sign
from edge.core.events import ForgivePosition, SetLockdown, UnlockOnce
from edge.store import Store
from edge.store.migrations import migrations

from .agent_fixtures import COMMANDS_KEY

NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def new_verifier(store: Store | None = None, synced: bool = True) -> CommandVerifier:
    store = store or Store(":memory:", memory=True)
    return CommandVerifier(
        "gate-1f-east",
        COMMANDS_KEY.public_key(),
        {"gate-east"},
        NonceCache(store.db),
        lambda: synced,
    )


@pytest.fixture
def verifier() -> CommandVerifier:
    return new_verifier()


FUZZ = new_verifier()


def cmd(name: str = "unlock", args: dict[str, object] | None = None, **kw: object) -> bytes:
    return sign(
        kw.pop("key", COMMANDS_KEY),  # type: ignore[arg-type]
        device=str(kw.pop("device", "gate-1f-east")),
        name=name,
        args={"door": "gate-east"} if args is None else args,
        issued_by="console:guard1",
        now=kw.pop("now", NOW),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def test_accepted_unlock_becomes_a_core_event(verifier: CommandVerifier) -> None:
    verdict = verifier.check("unlock", cmd(), False, NOW)
    assert verdict.ok
    assert verdict.event == UnlockOnce("gate-east", "console:guard1")
    lockdown = verifier.check("lockdown", cmd("lockdown", {"on": True}), False, NOW)
    assert lockdown.event == SetLockdown(True, "console:guard1")


def test_an_accepted_forgive_names_the_card_and_the_zone(verifier: CommandVerifier) -> None:
    args = {"card_ref": "c" * 64, "zone": "staff"}
    verdict = verifier.check("forgive", cmd("forgive", args), False, NOW)
    assert verdict.event == ForgivePosition("c" * 64, "staff", "console:guard1")
    anywhere = verifier.check("forgive", cmd("forgive", {"card_ref": "d" * 64}), False, NOW)
    assert anywhere.event == ForgivePosition("d" * 64, None, "console:guard1")


@pytest.mark.parametrize(
    ("args", "names"),
    [
        ({}, "args.card_ref"),
        ({"card_ref": "C" * 64}, "args.card_ref"),
        ({"card_ref": "c" * 63}, "args.card_ref"),
        ({"card_ref": 7}, "args.card_ref"),
        ({"card_ref": "c" * 64, "zone": ""}, "args.zone"),
        ({"card_ref": "c" * 64, "zone": ["staff"]}, "args.zone"),
        ({"card_ref": "c" * 64, "zone": "staff/#"}, "args.zone"),
        ({"card_ref": "c" * 64, "uid": "04a1"}, "not: uid"),
    ],
)
def test_a_forgive_with_bad_args_is_refused_naming_the_arg(
    verifier: CommandVerifier, args: dict[str, object], names: str
) -> None:
    verdict = verifier.check("forgive", cmd("forgive", args), False, NOW)
    assert (verdict.reason, verdict.event) == ("malformed", None)
    assert names in verdict.detail


@pytest.mark.parametrize(
    ("topic", "payload", "retained", "reason"),
    [
        ("unlock", cmd(), True, "retained"),
        ("unlock", b"not json", False, "malformed"),
        ("unlock", b"[]", False, "malformed"),
        ("frobnicate", cmd(), False, "unknown_command"),
        ("unlock", json.dumps({**json.loads(cmd()), "signature": ""}).encode(), False, "unsigned"),
        ("unlock", cmd(key=Ed25519PrivateKey.generate()), False, "bad_signature"),
        (
            "unlock",
            json.dumps({**json.loads(cmd()), "args": {"door": "stair-b-2f"}}).encode(),
            False,
            "bad_signature",
        ),
        ("unlock", cmd(now=NOW - timedelta(minutes=5)), False, "expired"),
        ("unlock", cmd(lifetime=timedelta(minutes=10)), False, "expired"),
        ("unlock", cmd(device="stair-b-2f"), False, "wrong_device"),
        ("unlock", cmd(args={"door": "no-such-door"}), False, "unknown_door"),
        ("unlock", cmd(args={"door": ["gate-east"]}), False, "unknown_door"),
        ("unlock", cmd(device="a" * 5000), False, "malformed"),
        ("lockdown", cmd("lockdown", {"on": "yes"}), False, "malformed"),
        ("lockdown", cmd(), False, "malformed"),  # topic and envelope disagree
    ],
)
def test_refusals(
    verifier: CommandVerifier, topic: str, payload: bytes, retained: bool, reason: str
) -> None:
    verdict = verifier.check(topic, payload, retained, NOW)
    assert verdict.reason == reason, verdict.detail
    assert verdict.event is None


def test_a_replayed_command_is_refused_even_after_a_restart(tmp_path: object) -> None:
    path = Path(str(tmp_path)) / "agent.db"
    payload = cmd()
    with Store(path) as store, store.transaction():
        assert new_verifier(store).check("unlock", payload, False, NOW).ok
    with Store(path) as store, store.transaction():
        assert new_verifier(store).check("unlock", payload, False, NOW).reason == "replayed"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400), st.booleans(), st.sampled_from(["unlock", "ping", "x", ""]))
def test_random_bytes_never_crash(data: bytes, retained: bool, topic: str) -> None:
    assert not FUZZ.check(topic, data, retained, NOW).ok


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
FIELDS = ["v", "device", "name", "args", "nonce", "expires_at", "issued_by", "key_id", "signature"]


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), json_values))
def test_random_envelopes_never_crash(fields: dict[str, object]) -> None:
    base = json.loads(cmd())
    base.update(fields)
    verdict = FUZZ.check("unlock", json.dumps(base).encode(), False, NOW)
    assert verdict.reason in {
        "accepted",
        "malformed",
        "unsigned",
        "bad_signature",
        "expired",
        "replayed",
        "unknown_command",
        "wrong_device",
        "unknown_door",
    }
    if fields and any(
        base[k] != json.loads(cmd())[k]
        for k in fields
        if k not in {"nonce", "signature", "expires_at"}
    ):
        assert not verdict.ok


def test_a_clock_stepped_back_does_not_revive_a_used_command(verifier: CommandVerifier) -> None:
    payload = cmd()
    assert verifier.check("unlock", payload, False, NOW).ok
    later = NOW + timedelta(hours=1)
    assert verifier.check("ping", cmd("ping", {}, now=later), False, later).ok
    # The nonce has been purged by now; the clock then jumps back to before the expiry.
    assert verifier.check("unlock", payload, False, NOW).reason == "expired"


# -- times are instants -------------------------------------------------------------------


@pytest.mark.parametrize("hours", [-12, -5, -1, 0, 5.5, 9, 14])
def test_a_command_written_with_any_utc_offset_cannot_be_replayed(
    verifier: CommandVerifier, hours: float
) -> None:
    local = NOW.astimezone(timezone(timedelta(hours=hours)))  # sign(now=...) from a local time
    payload = cmd(now=local)
    assert verifier.check("unlock", payload, False, NOW).ok
    for seconds in (0, 10, 30, 34):  # until the command expires (30 s) plus the skew
        now = NOW + timedelta(seconds=seconds)
        other = verifier.check("ping", cmd("ping", {}, now=now), False, now)  # purges the cache
        assert other.ok
        assert verifier.check("unlock", payload, False, now).reason == "replayed"


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=-1439, max_value=1439),
    st.integers(min_value=0, max_value=3600),
    st.booleans(),
)
def test_a_used_nonce_outlives_its_command_whatever_the_offset(
    offset_min: int, replay_after_s: int, synced: bool
) -> None:
    verifier = new_verifier(synced=synced)
    payload = cmd(now=NOW.astimezone(timezone(timedelta(minutes=offset_min))))
    assert verifier.check("unlock", payload, False, NOW).ok
    later = NOW + timedelta(seconds=replay_after_s)
    assert verifier.check("ping", cmd("ping", {}, now=later), False, later).ok
    assert not verifier.check("unlock", payload, False, later).ok
    assert not verifier.check("unlock", payload, False, NOW).ok  # the clock stepped back


# -- the topic level is the signed name --------------------------------------------------


@pytest.mark.parametrize(
    "level",
    ["UNLOCK", "Unlock", "ｕｎｌｏｃｋ", "", "unlock ", "unlock\x00", "lockdown", "x" * 5000],
)
def test_a_signed_unlock_on_any_other_level_is_refused(
    verifier: CommandVerifier, level: str
) -> None:
    verdict = verifier.check(level, cmd(), False, NOW)
    assert verdict.reason in {"unknown_command", "malformed"}
    assert verdict.event is None
    assert len(verdict.detail) <= 200


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40), st.binary(max_size=600), st.booleans())
def test_any_bytes_on_any_topic_level_get_a_verdict(
    level: str, data: bytes, retained: bool
) -> None:
    verdict = FUZZ.check(level, data, retained, NOW)
    assert isinstance(verdict, Verdict)
    assert not verdict.ok


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["unlock", "lockdown", "UNLOCK", "", "ｕｎｌｏｃｋ"]),
    json_values,
    st.integers(min_value=0, max_value=5000),
)
def test_any_json_at_any_depth_gets_a_verdict(level: str, value: object, depth: int) -> None:
    payload = ("[" * depth + json.dumps(value) + "]" * depth).encode()
    body = json.loads(cmd())
    body["args"] = {"door": value}
    for data in (payload, json.dumps(body).encode()):
        verdict = FUZZ.check(level, data, False, NOW)
        assert isinstance(verdict, Verdict)
        assert not verdict.ok


SIGNED_UNLOCK = cmd()


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=40).filter(lambda level: level != "unlock"), st.booleans())
def test_a_signed_command_is_acted_on_only_under_its_own_name(level: str, retained: bool) -> None:
    verdict = FUZZ.check(level, SIGNED_UNLOCK, retained, NOW)
    assert isinstance(verdict, Verdict)
    assert not verdict.ok


# -- malformed, deep, huge ---------------------------------------------------------------


def _nested_door(depth: int) -> bytes:
    body = json.loads(cmd())
    body["args"] = {"door": json.loads("[" * depth + "]" * depth)}
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    "payload",
    [
        b"[" * 4000,
        b'{"name": "unlock", "args": ' + b"[" * 4000 + b"]" * 4000 + b"}",
        b'{"a":' * 3000 + b"1" + b"}" * 3000,
        _nested_door(500),
        b'{"name": "unlock", "pad": "' + b"x" * 9000 + b'"}',
        b"\xff\xfe" + "{}".encode("utf-16-le"),
        b'{"name": "unlock", "v": 1' + b"1" * 5000 + b"}",
    ],
    ids=["4000-brackets", "deep-args", "deep-objects", "deep-door", "huge", "utf16", "huge-int"],
)
def test_deep_huge_or_broken_json_is_malformed(verifier: CommandVerifier, payload: bytes) -> None:
    verdict = verifier.check("unlock", payload, False, NOW)
    assert verdict.reason == "malformed", verdict.detail


# -- the replay high-water mark ----------------------------------------------------------


def test_a_device_clock_far_ahead_does_not_pin_the_mark(verifier: CommandVerifier) -> None:
    ahead = NOW + timedelta(days=3650)  # a bad clock, even one that says it is synchronised
    refused = verifier.check("lockdown", cmd("lockdown", {"on": True}), False, ahead)
    assert refused.reason == "expired"
    # The clock is put right: lockdown and fire reset work at once.
    now = NOW + timedelta(seconds=5)
    assert verifier.check("lockdown", cmd("lockdown", {"on": True}, now=now), False, now).ok
    assert verifier.check("fire-reset", cmd("fire-reset", {}, now=now), False, now).ok


def test_an_unsynchronised_clock_never_advances_the_mark() -> None:
    verifier = new_verifier(synced=False)
    ahead = NOW + timedelta(days=365)  # console and device both a year ahead
    assert verifier.check("ping", cmd("ping", {}, now=ahead), False, ahead).ok
    assert verifier.nonces.mark() == 0
    assert verifier.check("lockdown", cmd("lockdown", {"on": True}), False, NOW).ok


def test_a_mark_no_synchronised_clock_can_reach_recovers_within_a_minute() -> None:
    verifier = new_verifier(synced=True)
    ahead = NOW + timedelta(days=365)  # a console's clock ran a year ahead, so did NTP
    assert verifier.check("ping", cmd("ping", {}, now=ahead), False, ahead).ok
    fire = cmd("fire-reset", {})
    refused = verifier.check("fire-reset", fire, False, NOW)  # lowers the mark, still refuses
    assert refused.reason == "expired"
    assert "this device has seen" in refused.detail
    assert verifier.nonces.mark() == int((NOW + timedelta(seconds=70)).timestamp() * 1000)
    now = NOW + timedelta(seconds=40)
    assert verifier.check("fire-reset", cmd("fire-reset", {}, now=now), False, now).ok


def test_the_mark_never_goes_past_the_signed_expiry_or_the_clock() -> None:
    def at(seconds: int) -> int:
        return int((NOW + timedelta(seconds=seconds)).timestamp() * 1000)

    verifier = new_verifier(synced=True)
    assert verifier.check("ping", cmd("ping", {}), False, NOW + timedelta(seconds=20)).ok
    assert verifier.nonces.mark() == at(20)  # the clock (the command expires at +30 s)
    signed = NOW + timedelta(seconds=50)
    device_now = signed + timedelta(seconds=33)
    assert verifier.check("ping", cmd("ping", {}, now=signed), False, device_now).ok
    assert verifier.nonces.mark() == at(80)  # the signed expiry (the clock says +83 s)


# -- the store moved aside ---------------------------------------------------------------


def test_a_store_moved_aside_still_refuses_a_used_command(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    payload = cmd()
    with Store(path) as store, store.transaction():
        assert new_verifier(store).check("unlock", payload, False, NOW).ok
    path.write_bytes(b"damaged by a power cut " * 200)
    for part in tmp_path.glob("agent.db-*"):
        part.unlink()
    with Store(path) as store, store.transaction():
        assert store.moved_aside is not None
        verdict = new_verifier(store).check("unlock", payload, False, NOW)
        assert verdict.reason == "expired"
        later = NOW + timedelta(seconds=1)
        assert new_verifier(store).check("unlock", cmd(now=later), False, later).ok


def test_an_older_store_is_migrated_with_its_nonces_and_mark(tmp_path: Path) -> None:
    path = tmp_path / "agent.db"
    db = sqlite_utils.Database(sqlite3.connect(path))
    migrations.apply(db, stop_before="0004_rollback_guard")
    west = "2026-11-30T19:00:30-05:00"  # the instant NOW + 30 s
    db.execute("INSERT INTO nonces (nonce, expires_at) VALUES ('ab' , ?)", [west])
    db.execute("INSERT INTO device_state (key, value) VALUES ('clock_hwm', ?)", [NOW.isoformat()])
    db.conn.commit()
    db.close()
    with Store(path) as store:
        verifier = new_verifier(store)
        assert verifier.nonces.mark() == int(NOW.timestamp() * 1000)
        row = store.db.execute("SELECT expires_ms FROM nonces WHERE nonce = 'ab'").fetchone()
        assert row[0] == int((NOW + timedelta(seconds=30)).timestamp() * 1000)
