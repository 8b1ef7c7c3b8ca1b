"""Command verification without a broker: every refusal reason, and fuzzing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.commands import CommandVerifier, NonceCache, sign
from edge.core.events import SetLockdown, UnlockOnce
from edge.store import Store

from .agent_fixtures import COMMANDS_KEY

NOW = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)


def new_verifier() -> CommandVerifier:
    store = Store(":memory:", memory=True)
    return CommandVerifier(
        "gate-1f-east", COMMANDS_KEY.public_key(), {"gate-east"}, NonceCache(store.db)
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
    from pathlib import Path

    path = Path(str(tmp_path)) / "agent.db"
    payload = cmd()
    with Store(path) as store, store.transaction():
        v = CommandVerifier(
            "gate-1f-east", COMMANDS_KEY.public_key(), {"gate-east"}, NonceCache(store.db)
        )
        assert v.check("unlock", payload, False, NOW).ok
    with Store(path) as store, store.transaction():
        v = CommandVerifier(
            "gate-1f-east", COMMANDS_KEY.public_key(), {"gate-east"}, NonceCache(store.db)
        )
        assert v.check("unlock", payload, False, NOW).reason == "replayed"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=400), st.booleans(), st.sampled_from(["unlock", "ping", "x", None]))
def test_random_bytes_never_crash(data: bytes, retained: bool, topic: str | None) -> None:
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
