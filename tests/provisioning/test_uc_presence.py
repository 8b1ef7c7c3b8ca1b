"""edge-provision people uc-presence: opt in and out, audited, clear refusals."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioning.cli import cli
from provisioning.registry import Registry, RegistryError
from provisioning.uc_presence import check_mail, check_uc_id
from tests.rooms.uc_site import Site, make_site


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return make_site(tmp_path)


def _row(site: Site, staff_no: str) -> tuple[int, str | None, str | None]:
    with sqlite3.connect(site.registry) as conn:
        row = conn.execute(
            "SELECT uc_presence, uc_id, uc_mail FROM people WHERE staff_no = ?", [staff_no]
        ).fetchone()
    return row[0], row[1], row[2]


def _refuse(site: Site, *args: str) -> str:
    result = CliRunner().invoke(cli, [*args, "--dir", str(site.directory)])
    assert result.exit_code == 2, result.output
    return result.output


def test_nobody_is_opted_in_after_an_import(site: Site) -> None:
    assert [_row(site, s) for s in ("S001", "S002", "S003")] == [(0, None, None)] * 3
    assert "off (nothing is sent)" in site.provision("people", "uc-presence", "S001")


def test_opting_in_and_out_is_kept_and_audited(site: Site) -> None:
    out = site.provision(
        "people", "uc-presence", "S001", "--on", "--uc-id", "@s001:city.example",
        "--mail", "mailto:s001@city.example",
    )  # fmt: skip
    assert "on as @s001:city.example, bookings as s001@city.example" in out
    assert _row(site, "S001") == (1, "@s001:city.example", "s001@city.example")
    assert _row(site, "S002") == (0, None, None)
    site.provision("people", "uc-presence", "S001", "--off")
    assert _row(site, "S001") == (0, None, None)  # the UC id and mail are forgotten
    registry = Registry(site.registry)
    try:
        trail = [(a["action"], json.loads(a["detail"])) for a in registry.audit()]
    finally:
        registry.close()
    assert trail[-2:] == [
        ("uc presence on", {"staff_no": "S001", "uc_presence": True, "mail": True}),
        ("uc presence off", {"staff_no": "S001", "uc_presence": False, "mail": False}),
    ]
    assert "@s001" not in json.dumps(trail)  # the audit names the change, not the account


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["S999", "--on", "--uc-id", "@a:b.example"], "no staff 'S999'; look them up"),
        (["S999"], "no staff 'S999'"),
        (["S001", "--on"], "opting in needs --uc-id"),
        (["S001", "--on", "--uc-id", "tanaka"], "is not a UC id: give a Matrix user id"),
        (["S001", "--on", "--uc-id", "@Tanaka:city.example"], "lower case"),
        (["S001", "--on", "--uc-id", "@a:b", "--mail", "nobody"], "is not a mail address"),
        (["S001", "--off", "--uc-id", "@a:b.example"], "--off forgets the UC id"),
        (["S001", "--uc-id", "@a:b.example"], "--uc-id and --mail go with --on"),
    ],
)
def test_bad_requests_are_refused_with_the_fix(site: Site, args: list[str], says: str) -> None:
    assert says in _refuse(site, "people", "uc-presence", *args)
    assert _row(site, "S001") == (0, None, None)


@pytest.mark.parametrize(
    "uc_id",
    ["@tanaka:city.example", "@t.a_n=k-a/1+x:matrix.city.example:8448",
     "0f8fad5b-d9cb-469f-a165-70867728950e", "tanaka.hanako@city.example"],
)  # fmt: skip
def test_uc_ids_of_each_server_kind_are_taken(uc_id: str) -> None:
    assert check_uc_id(f" {uc_id} ") == uc_id


@pytest.mark.parametrize(
    "uc_id",
    ["", "@:city.example", "@a b:city.example", "a@b", "@a:b\n.example", "@" + "a" * 300 + ":b.c"],
)
def test_malformed_uc_ids_are_refused(uc_id: str) -> None:
    with pytest.raises(RegistryError, match="is not a UC id"):
        check_uc_id(uc_id)


def test_a_mailto_address_is_kept_bare() -> None:
    assert check_mail("mailto:a.b@city.example") == "a.b@city.example"


def test_help_documents_the_command() -> None:
    result = CliRunner().invoke(cli, ["people", "uc-presence", "--help"])
    assert result.exit_code == 0
    assert "--on / --off" in result.output
    assert "--uc-id" in result.output
