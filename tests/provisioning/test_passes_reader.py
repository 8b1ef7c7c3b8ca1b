"""passes add-spare --reader: the spare card read on a desk reader (nfcpy's udp driver and an
emulated FeliCa card, each in its own process), kept only as its reference."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge.cardref import card_reference
from edge.keys import read_card_key
from provisioning.keys import SiteKeys
from tests.edge.readers.nfc_fixtures import EmulatedCard, free_udp_port
from tests.provisioning.commands import provision

pytest.importorskip("nfc", reason="nfcpy is not installed: pip install -e '.[nfc]'")

pytestmark = pytest.mark.services  # starts an emulated card and edge-provision

SPARE = "0114A1B2C3D4E5AA"


def add_spare(site: Path, number: str, idm: str) -> subprocess.CompletedProcess[str]:
    port = free_udp_port()
    with EmulatedCard(port, "--idm", idm) as emulated:
        result = subprocess.run(
            [sys.executable, "-m", "provisioning.cli", "passes", "add-spare", "--dir", str(site),
             "--number", number, "--reader", f"udp:127.0.0.1:{port}", "--timeout-s", "10"],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        emulated.remove()
    return result


def test_a_spare_read_on_the_desk_reader_is_kept_by_reference(tmp_path: Path) -> None:
    site = tmp_path / "site"
    assert (
        provision("site", "init", "--site", "kamakura-city-hall", "--dir", str(site)).returncode
        == 0
    )
    result = add_spare(site, "07", SPARE)
    assert result.returncode == 0, result.stderr
    key = read_card_key(SiteKeys(site / "keys").card_key)
    ref = card_reference(key, "felica", SPARE)
    assert f"spare card 07 registered (card {ref[:12]}…)" in result.stdout
    assert SPARE not in (result.stdout + result.stderr).upper()
    listed = provision("passes", "spares", "--dir", str(site))
    assert f"07       felica {ref[:12]}…  at the desk" in listed.stdout
    again = add_spare(site, "08", SPARE)
    assert again.returncode == 2
    assert "this card is already spare card 07" in again.stderr
    nothing = provision("passes", "add-spare", "--number", "09", "--dir", str(site), stdin="")
    assert nothing.returncode == 2
    assert "card id: key technology:ID" in nothing.stderr
    # An id on the command line would stay in shell history and ps: refused, not kept.
    typed = ("--card-id", f"felica:{SPARE}")
    on_line = provision("passes", "add-spare", "--number", "09", *typed, "--dir", str(site))
    assert on_line.returncode == 2
    assert "key technology:ID when asked" in on_line.stderr
    assert SPARE not in (on_line.stdout + on_line.stderr).upper()
    assert "09 " not in provision("passes", "spares", "--dir", str(site)).stdout
