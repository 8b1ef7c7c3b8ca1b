"""A provisioning site with three people for the UC presence tests, made with edge-provision."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from edge.cardref import card_reference
from edge.keys import read_card_key
from provisioning.cli import cli

PHONE_BOOTH = "phone-2f-1"  # a soundproof phone booth, reported by the meeting room's node
HEADER = "staff_no,name,department,card_tech,card_id,groups,valid_from,valid_until"
CARDS = {"S001": "0114A1B2C3D4E5F6", "S002": "0114A1B2C3D4E5F7", "S003": "0114A1B2C3D4E5F8"}


@dataclass(frozen=True)
class Site:
    """The site directory, its registry and each person's card reference."""

    directory: Path
    refs: dict[str, str]

    @property
    def registry(self) -> Path:
        return self.directory / "registry.db"

    def provision(self, *args: str) -> str:
        """Run `edge-provision ARGS --dir SITE` in-process; return its output, fail on refusal."""
        result = CliRunner().invoke(cli, [*args, "--dir", str(self.directory)])
        assert result.exit_code == 0, result.output
        return result.output


def make_site(tmp_path: Path) -> Site:
    """Create a site with S001, S002 and S003, one FeliCa card each, nobody opted in."""
    directory = tmp_path / "site"
    csv = tmp_path / "staff.csv"
    rows = [
        f"{staff_no},職員 {staff_no},総務課,felica,{card},staff,,"
        for staff_no, card in CARDS.items()
    ]
    csv.write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    runner = CliRunner()
    for step in (["site", "init", "--site", "kamakura-city-hall"], ["cards", "import", str(csv)]):
        result = runner.invoke(cli, [*step, "--dir", str(directory)])
        assert result.exit_code == 0, result.output
    key = read_card_key(directory / "keys" / "card-key")
    refs = {staff_no: card_reference(key, "felica", card) for staff_no, card in CARDS.items()}
    return Site(directory, refs)


def phone_booth_room(device: str, calendar: str) -> dict[str, object]:
    """Return the rooms-service settings of a bookable phone booth on floor 2."""
    return {
        "zone": PHONE_BOOTH,
        "name": "Phone booth 2F-1",
        "kind": "phone-booth",
        "floor": 2,
        "device": device,
        "calendar": calendar,
        "resource": f"/rooms/{PHONE_BOOTH}/",
    }
