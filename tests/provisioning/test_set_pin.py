"""cards set-pin: the holder's card on a desk reader (nfcpy's udp driver and an emulated card,
each in its own process), the PIN keyed twice on stdin, only its hash in the registry."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from edge.core.events import PinOutcome
from edge.pin_hash import check_pin, parse_pin
from provisioning.card_keys import lite_s_key, load_master
from provisioning.keys import SiteKeys
from provisioning.registry import Registry
from tests.edge.readers.nfc_fixtures import EmulatedCard, free_udp_port
from tests.provisioning.commands import provision

pytest.importorskip("nfc", reason="nfcpy is not installed: pip install -e '.[nfc]'")

pytestmark = pytest.mark.services  # starts emulated cards and edge-provision

HEADER = "staff_no,name,department,card_tech,card_id,groups,valid_from,valid_until,card_profile"
SATO = "0114A1B2C3D4E5F6"  # an id-only FeliCa card
GUARD = "012E4CD8A1B2C3D4"  # a FeliCa Lite-S card, enrolled as lite-s
GONE = "0114A1B2C3D4E5F8"  # a revoked card
STRANGER = "0114FFFFFFFFFF01"  # in no registry
LITE_S_PMM = "00F1000000FFFF00"
STANDARD_PMM = "03014B024F4993FF"
PIN, DURESS = "4826", "7391"


@pytest.fixture
def site(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    csv = tmp_path / "staff.csv"
    rows = [
        f"S001,佐藤 花子,総務課,felica,{SATO},staff,,,",
        f"S002,木村 警備,警備,felica,{GUARD},staff;security,,,lite-s",
        f"S003,高橋 健太,財政課,felica,{GONE},staff,,,",
    ]
    csv.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    for step in [
        ("site", "init", "--site", "kamakura-city-hall"),
        ("cards", "import", str(csv)),
        ("cards", "revoke", "S003"),
    ]:
        result = provision(*step, "--dir", str(site))
        assert result.returncode == 0, (step, result.stderr)
    return site


def set_pin(
    site: Path, card: tuple[str, ...], keyed: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    """Hold the emulated card `card` on a desk reader while set-pin runs with `keyed` on stdin."""
    port = free_udp_port()
    with EmulatedCard(port, *card) as emulated:
        result = subprocess.run(
            [sys.executable, "-m", "provisioning.cli", "cards", "set-pin", "--dir", str(site),
             "--reader", f"udp:127.0.0.1:{port}", "--timeout-s", "10", *extra],
            capture_output=True, text=True, input=keyed, timeout=120, check=False,
        )  # fmt: skip
        emulated.remove()
    return result


def stored_pin(site: Path, staff_no: str) -> str | None:
    registry = Registry(site / "registry.db")
    try:
        row = registry.db.execute("SELECT pin FROM people WHERE staff_no = ?", [staff_no])
        return row.fetchone()[0]  # type: ignore[no-any-return]
    finally:
        registry.close()


def everything_kept(site: Path) -> bytes:
    """The registry's bytes, WAL included, and its audit trail as text, without timestamps
    (their microseconds are digits that may spell a PIN by chance)."""
    registry = Registry(site / "registry.db")
    try:
        audit = repr(registry.audit()).encode()
    finally:
        registry.close()
    files = [p for p in site.rglob("*") if p.is_file()]
    kept = audit + b"".join(p.read_bytes() for p in files)
    return re.sub(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?", b"<ts>", kept)


def keeps(kept: bytes, pin: str) -> bool:
    """True if `pin` stands in `kept` on its own: not inside a run of hex digits (card
    references, keys and hashes are hex, and any four digits turn up in them by chance)."""
    return re.search(rb"(?<![0-9a-fA-F])" + pin.encode() + rb"(?![0-9a-fA-F])", kept) is not None


def test_the_holder_sets_a_pin_that_is_only_kept_as_a_hash(site: Path) -> None:
    result = set_pin(site, ("--idm", SATO), f"{PIN}\n{PIN}\n")

    assert result.returncode == 0, result.stderr
    assert "PIN set for staff S001" in result.stdout
    assert "edge-provision publish --dir" in result.stdout
    assert "card of staff S001 (佐藤 花子)" in result.stderr
    stored = stored_pin(site, "S001")
    assert stored is not None
    assert check_pin(parse_pin(stored), PIN) is PinOutcome.RIGHT
    assert check_pin(parse_pin(stored), "4827") is PinOutcome.WRONG
    for text in (result.stdout, result.stderr):
        assert PIN not in text
        assert SATO not in text.upper()
    assert not keeps(everything_kept(site), PIN)
    registry = Registry(site / "registry.db")
    try:
        (last,) = [a for a in registry.audit() if a["action"] == "cards set-pin"]
    finally:
        registry.close()
    assert '"staff_no": "S001"' in last["detail"]
    assert '"which": "PIN"' in last["detail"]


def test_a_duress_pin_joins_the_pin_and_neither_may_equal_the_other(site: Path) -> None:
    card = ("--idm", SATO)
    no_pin_yet = set_pin(site, card, f"{DURESS}\n{DURESS}\n", "--duress")
    assert no_pin_yet.returncode == 2
    assert "set the PIN first" in no_pin_yet.stderr
    assert set_pin(site, card, f"{PIN}\n{PIN}\n").returncode == 0

    # From now on the holder keys their current PIN first.
    same = set_pin(site, card, f"{PIN}\n{PIN}\n{PIN}\n", "--duress")
    assert same.returncode == 2
    assert "the duress PIN must differ from the PIN" in same.stderr
    duress = set_pin(site, card, f"{PIN}\n{DURESS}\n{DURESS}\n", "--duress")
    assert duress.returncode == 0, duress.stderr
    assert "duress PIN set for staff S001" in duress.stdout
    pins = parse_pin(stored_pin(site, "S001") or "")
    assert check_pin(pins, PIN) is PinOutcome.RIGHT
    assert check_pin(pins, DURESS) is PinOutcome.DURESS

    clash = set_pin(site, card, f"{PIN}\n{DURESS}\n{DURESS}\n")
    assert clash.returncode == 2
    assert "the PIN must differ from the duress PIN" in clash.stderr
    new_pin = set_pin(site, card, f"{PIN}\n5938\n5938\n")
    assert new_pin.returncode == 0, new_pin.stderr
    pins = parse_pin(stored_pin(site, "S001") or "")
    assert (check_pin(pins, "5938"), check_pin(pins, DURESS)) == (
        PinOutcome.RIGHT,
        PinOutcome.DURESS,
    )
    assert check_pin(pins, PIN) is PinOutcome.WRONG
    kept = everything_kept(site)
    assert not any(keeps(kept, p) for p in (PIN, DURESS, "5938"))


@pytest.mark.parametrize(
    ("keyed", "words"),
    [
        (f"{PIN}\n{PIN[:3]}9\n", "the two PINs differ"),
        ("1234\n1234\n", "a run of digits"),
        ("98765\n98765\n", "a run of digits"),
        ("4747\n4747\n", "one pair of digits repeated"),
        ("0000\n0000\n", "one digit repeated"),
        ("123\n123\n", "PIN must be 4 to 8 digits"),
        ("\n\n", "no PIN was keyed"),
    ],
)
def test_a_mismatch_or_a_weak_pin_is_refused_without_showing_it(
    site: Path, keyed: str, words: str
) -> None:
    result = set_pin(site, ("--idm", SATO), keyed)

    assert result.returncode == 2
    assert words in result.stderr
    assert "Traceback" not in result.stderr
    # The reader's random port is printed; its digits may spell a short PIN.
    said = re.sub(r"udp:127\.0\.0\.1:\d+", "udp:…", result.stdout + result.stderr)
    for pin in filter(None, keyed.split("\n")):
        assert pin not in said
    assert stored_pin(site, "S001") is None


@pytest.mark.parametrize(
    ("card", "words"),
    [
        (("--idm", STRANGER), "this card is not in the registry"),
        (("--idm", GONE), "this card is revoked"),
        # The guard's id on a card without the guard's key (a FeliCa Standard copy).
        (("--idm", GUARD, "--pmm", STANDARD_PMM), "the card did not prove its key"),
    ],
)
def test_an_unknown_revoked_or_copied_card_is_refused(
    site: Path, card: tuple[str, ...], words: str
) -> None:
    result = set_pin(site, card, f"{PIN}\n{PIN}\n")

    assert result.returncode == 2
    assert words in result.stderr
    assert card[1] not in (result.stdout + result.stderr).upper()
    assert "Traceback" not in result.stderr
    assert stored_pin(site, "S002") is None
    assert stored_pin(site, "S003") is None


def test_a_lite_s_card_proves_its_key_before_its_holder_sets_a_pin(site: Path) -> None:
    key = lite_s_key(load_master(SiteKeys(site / "keys")), bytes.fromhex(GUARD))
    card = ("--idm", GUARD, "--pmm", LITE_S_PMM, "--card-key", key.hex())
    result = set_pin(site, card, f"{PIN}\n{PIN}\n")

    assert result.returncode == 0, result.stderr
    assert check_pin(parse_pin(stored_pin(site, "S002") or ""), PIN) is PinOutcome.RIGHT
    assert key.hex() not in (result.stdout + result.stderr).lower()


def test_no_card_on_the_reader_is_a_clear_refusal(site: Path) -> None:
    port = free_udp_port()
    result = subprocess.run(
        [sys.executable, "-m", "provisioning.cli", "cards", "set-pin", "--dir", str(site),
         "--reader", f"udp:127.0.0.1:{port}", "--timeout-s", "1"],
        capture_output=True, text=True, input=f"{PIN}\n{PIN}\n", timeout=120, check=False,
    )  # fmt: skip

    assert result.returncode == 2
    assert "no card on the reader within 1 s" in result.stderr


def audit_rows(site: Path, action: str) -> list[dict[str, str]]:
    registry = Registry(site / "registry.db")
    try:
        return [a for a in registry.audit() if a["action"] == action]
    finally:
        registry.close()


@pytest.mark.parametrize("duress", [False, True])
def test_a_pin_is_changed_only_by_who_knows_it(site: Path, duress: bool) -> None:
    card = ("--idm", SATO)  # found on the floor, or a copy of its id
    assert set_pin(site, card, f"{PIN}\n{PIN}\n").returncode == 0
    assert set_pin(site, card, f"{PIN}\n{DURESS}\n{DURESS}\n", "--duress").returncode == 0
    before = stored_pin(site, "S001")
    extra = ("--duress",) if duress else ()
    # Without the current PIN, with a guess, with the duress PIN: refused, nothing changed.
    for current in ("", "5938", DURESS):
        result = set_pin(site, card, f"{current}\n2468\n2468\n", *extra)
        assert result.returncode == 2, result.stdout
        assert "the current PIN is wrong; nothing was changed" in result.stderr
        assert "--reset" in result.stderr
        for pin in (current, "2468"):
            assert not pin or pin not in result.stdout + result.stderr
    assert stored_pin(site, "S001") == before
    refusals = audit_rows(site, "cards set-pin refused")
    assert len(refusals) == 3
    assert all('"why": "wrong current PIN"' in r["detail"] for r in refusals)
    assert all('"staff_no": "S001"' in r["detail"] for r in refusals)
    kept = everything_kept(site)
    assert not any(keeps(kept, p) for p in (PIN, DURESS, "5938", "2468"))


def test_an_operator_resets_a_forgotten_pin_after_confirming_whose(site: Path) -> None:
    card = ("--idm", SATO)
    assert set_pin(site, card, f"{PIN}\n{PIN}\n").returncode == 0
    assert set_pin(site, card, f"{PIN}\n{DURESS}\n{DURESS}\n", "--duress").returncode == 0
    unconfirmed = set_pin(site, card, "S002\n2468\n2468\n", "--reset")
    assert unconfirmed.returncode == 2
    assert "not confirmed" in unconfirmed.stderr
    assert check_pin(parse_pin(stored_pin(site, "S001") or ""), PIN) is PinOutcome.RIGHT
    reset = set_pin(site, card, "S001\n2468\n2468\n", "--reset")
    assert reset.returncode == 0, reset.stderr
    pins = parse_pin(stored_pin(site, "S001") or "")
    assert check_pin(pins, "2468") is PinOutcome.RIGHT
    assert check_pin(pins, PIN) is PinOutcome.WRONG
    assert pins.duress is None  # the holder sets it again
    [row] = audit_rows(site, "cards set-pin reset")
    assert '"staff_no": "S001"' in row["detail"]
    assert "2468" not in row["detail"]
