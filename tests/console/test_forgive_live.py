"""`edge-console forgive` on a live building: a manager forgives a card held by anti-passback.

Real parts: edge-provision, mosquitto with the generated ACL, one agent process per device
(both gates share the staff area's crossings), the collector and the CLI. A card inside is
refused at the other gate; the manager's forgiveness reaches every device, and the card is
let in again; a guard may not forgive.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from console.people import Directory
from simulator.staff import Person
from tests.console.doors_site import DoorsSite, doors_site

pytestmark = pytest.mark.services
ACTION = "apb.forgive"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DoorsSite]:
    # debug: the gates log each peer crossing they apply, which the test waits for
    # debounce 0: the same card again at once is a tap of its own
    tmp = tmp_path_factory.mktemp("forgive")
    with doors_site(tmp, log_level="debug", debounce_s=0.0) as live:
        yield live


def walk_in(site: DoorsSite, gate: str, person: Person) -> dict[str, object]:
    """Tap at the gate's in-reader, and walk through if granted; return the tap's reply."""
    reply = site.tap(f"{gate}-in", person, person.pin)
    if reply.get("decision") == "granted":
        site.agents[gate].request(op="door", door=gate, open=True)
        site.agents[gate].request(op="door", door=gate, open=False)
    return reply


def test_a_manager_forgives_a_card_inside_and_it_enters_again_a_guard_may_not(
    site: DoorsSite,
) -> None:
    # A security guard's card: let in at any hour (a weekend run would find staff hours shut).
    staff = next(p for p in site.people if "security" in p.groups and not p.case)
    first = walk_in(site, "gate-1f-east", staff)
    assert first["decision"] == "granted", first
    west = site.agents["gate-1f-west"]
    assert west.request(op="wait_log", text="peer crossing gate-1f-east:", timeout=20)["ok"]
    held = site.tap("gate-1f-west-in", staff)
    assert (held["decision"], held["reason"]) == ("denied", "anti_passback")

    guard = site.cli("forgive", "--staff-no", staff.staff_no, user="guard1")
    assert guard.exit_code == 2, guard.output
    assert "may not do this" in guard.stderr
    assert site.audit_rows(ACTION) == []
    assert any(u == "guard1" for u, _ in site.audit_rows(f"{ACTION} refused"))

    done = site.cli("forgive", "--staff-no", staff.staff_no, user="boss")
    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    shown = lines[0].split(":")[0]  # "card 0123456789ab"
    # Every device with doors (sensor nodes hold no positions), each answering.
    doors = ["gate-1f-east", "gate-1f-west", "stair-a-1f", "stair-a-2f"]
    assert sorted(lines) == [f"{shown}: {device}: accepted" for device in doors]
    rows = site.audit_rows(ACTION)
    assert ("boss", f"{shown}: gate-1f-west: accepted") in rows
    assert ("boss", f"{shown}: gate-1f-east: accepted") in rows
    assert rows[0][1].startswith(f"{shown}: sending to ")

    again = walk_in(site, "gate-1f-west", staff)
    assert (again["decision"], again["reason"]) == ("granted", "granted")


def test_a_card_prefix_that_fits_no_card_is_refused_with_exit_2(site: DoorsSite) -> None:
    result = site.cli("forgive", "--card", "zz12", user="boss")
    assert result.exit_code == 2, result.output
    assert "hex digits" in result.stderr
    both = site.cli("forgive", user="boss")
    assert both.exit_code == 2
    assert "--staff-no or --card" in both.stderr


def test_one_card_is_forgiven_by_its_reference_in_one_zone(site: DoorsSite) -> None:
    guards = [p for p in site.people if "security" in p.groups and not p.case]
    guard = guards[-1]  # not the first test's
    ref = Directory(site.site_dir / "registry.db").refs_for(guard.staff_no)[0]
    assert walk_in(site, "gate-1f-east", guard)["decision"] == "granted"
    assert walk_in(site, "gate-1f-east", guard)["reason"] == "anti_passback"
    elsewhere = site.cli("forgive", "--card", ref[:8], "--zone", "lobby", user="boss")
    assert elsewhere.exit_code == 0, elsewhere.output
    assert walk_in(site, "gate-1f-east", guard)["reason"] == "anti_passback"  # not in the lobby
    done = site.cli("forgive", "--card", ref[:8].upper(), "--zone", "staff-area", user="boss")
    assert done.exit_code == 0, done.output
    assert f"card {ref[:12]}: gate-1f-east: accepted" in done.stdout.splitlines()
    assert walk_in(site, "gate-1f-east", guard)["decision"] == "granted"
