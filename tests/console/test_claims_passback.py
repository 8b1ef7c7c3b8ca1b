"""What a device may claim about the security line: button exits, anti-passback alarms and a
card's forgiveness, judged against its own doors and zones like every other event."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from console.claims import Claims, Registry
from tests.console.test_claims import SITE, provision
from tests.console.test_log import event

REF = "ab" * 32
NO_CARD = ("card_ref", "reason")


def body(device: str, kind: str, type_: str, **fields: Any) -> dict[str, Any]:
    """An event of `device` with only the fields given (no card, reader or reason)."""
    base = {k: v for k, v in event(device, 7).items() if k not in (*NO_CARD, "door")}
    return {**base, "kind": kind, "type": type_, **fields}


def button_exit(device: str = "gate-1", **fields: Any) -> dict[str, Any]:
    ends = {"door": device, "from_zone": "staff-area", "to_zone": "lobby"}
    return body(device, "access", "button_exit", **{**ends, **fields})


def degraded(device: str = "gate-1", **fields: Any) -> dict[str, Any]:
    since = "2026-11-26T00:00:07.000Z"
    return (
        body(
            device,
            "alarm",
            "anti_passback_degraded",
            state="raised",
            zone="staff-area",
            since=since,
        )
        | fields
    )


def conflict(device: str = "gate-1", **fields: Any) -> dict[str, Any]:
    return (
        body(
            device,
            "alarm",
            "anti_passback_conflict",
            state="raised",
            card_ref=REF,
            zone="staff-area",
            to_zone="staff-area",
            peer="gate-2",
            peer_ts="2026-11-26T00:00:05.000Z",
            own_ts="2026-11-26T00:00:03.000Z",
        )
        | fields
    )


def forgiven(device: str = "gate-1", **fields: Any) -> dict[str, Any]:
    return (
        body(
            device,
            "system",
            "anti_passback_card_forgiven",
            card_ref=REF,
            zone="staff-area",
            by="boss",
            was_in="staff-area",
            changed=True,
        )
        | fields
    )


@pytest.fixture
def site(tmp_path: Path) -> Registry:
    return Registry(provision(tmp_path, gates=("gate-1", "gate-2"), sensors=("booth-3f",)), SITE)


def claims(site: Registry, device: str) -> Claims:
    found = site.claims(device)
    assert found is not None
    return found


@pytest.mark.parametrize(
    ("kind", "made"),
    [
        ("access", button_exit()),
        ("alarm", degraded()),
        ("alarm", degraded(state="cleared")),
        ("alarm", conflict()),
        ("alarm", conflict(to_zone="floor-2")),  # where it went at the peer: the peer's zone
        ("system", forgiven()),
        ("system", forgiven(zone=None, was_in=None)),
    ],
)
def test_a_gate_may_claim_the_security_lines_events(
    site: Registry, kind: str, made: dict[str, Any]
) -> None:
    assert claims(site, "gate-1").event(kind, made) is None


@pytest.mark.parametrize(
    ("kind", "made"),
    [
        ("access", button_exit("booth-3f", door="gate-1")),
        ("alarm", degraded("booth-3f", zone="booth-1")),
        ("alarm", conflict("booth-3f", zone="booth-1")),
        ("system", forgiven("booth-3f", zone="booth-1")),
        # Where the line's summed head counts start: a stolen sensor node may not move it.
        ("system", body("booth-3f", "system", "anti_passback_forgiven", zone="booth-1")),
        ("system", body("booth-3f", "system", "occupancy_reset", zone="booth-1", count=0)),
    ],
)
def test_a_sensor_node_may_not_claim_them(site: Registry, kind: str, made: dict[str, Any]) -> None:
    problem = str(claims(site, "booth-3f").event(kind, made))
    assert f"does not report {kind} {made['type']}" in problem or (
        kind == "access" and "does not report access events" in problem
    ), problem


@pytest.mark.parametrize(
    ("kind", "made", "why"),
    [
        ("access", button_exit(door="gate-2"), "door gate-2 is not one of its doors"),
        ("access", button_exit(from_zone="vault"), "from_zone vault is not one of its zones"),
        ("access", button_exit(from_zone="lobby", to_zone="staff-area"), "inside zone"),
        ("access", button_exit(card_ref=REF), "carries no card_ref"),
        ("alarm", degraded(zone="vault"), "zone vault is not one of its zones"),
        ("alarm", degraded(zone=None), "names no zone"),
        ("alarm", degraded(since="yesterday"), "since yesterday is not a UTC time"),
        ("alarm", conflict(zone="vault"), "zone vault is not one of its zones"),
        ("alarm", conflict(to_zone="Vault\x1b[2J"), "is not a zone id"),
        ("alarm", conflict(peer="gate-1"), "not another device's id"),
        ("alarm", conflict(peer=["gate-2"]), "not another device's id"),
        ("alarm", conflict(card_ref="felica:012E4CD8"), "not a card reference"),
        ("alarm", conflict(card_ref=None), "names no card_ref"),
        ("alarm", conflict(peer_ts=12), "peer_ts 12 is not a UTC time"),
        ("system", forgiven(zone="vault"), "zone vault is not one of its zones"),
        ("system", forgiven(card_ref="0123 raw"), "not a card reference"),
    ],
)
def test_a_gate_may_not_claim_them_about_what_it_does_not_serve(
    site: Registry, kind: str, made: dict[str, Any], why: str
) -> None:
    problem = claims(site, "gate-1").event(kind, made)
    assert why in str(problem), problem


def test_a_gate_may_not_start_the_count_of_a_zone_none_of_its_doors_leads_to(
    tmp_path: Path,
) -> None:
    site_dir = provision(tmp_path, gates=("gate-1",), sensors=())
    config = site_dir / "devices" / "gate-1.toml"
    extra = '\n[[zones]]\nid = "archive"\nname = "Archive"\nkind = "area"\n'
    config.write_text(config.read_text() + extra)
    gate = claims(Registry(site_dir, SITE), "gate-1")
    for type_ in ("occupancy_reset", "anti_passback_forgiven"):
        made = body("gate-1", "system", type_, zone="archive", count=0)
        assert "zone archive is not a zone its doors lead to" in str(gate.event("system", made))
        assert gate.event("system", made | {"zone": "staff-area"}) is None
