"""Two sites in one log, written through the log's public methods, and a registry naming
the people who cross at them.

The console's own site (`test-site`, the registry's) wrote its rows before sites existed
(no site: NULL); the branch (`hayama-branch`) writes with its site. Card A is inside both
sites' lines, B inside the home site's only (the branch saw B leave its line without ever
entering it), C entered the branch and left it, D left the branch only.
"""

from __future__ import annotations

from itertools import count
from pathlib import Path
from typing import Any

from console.log import CentralLog
from console.users import add_user
from provisioning.registry import Registry, import_people
from provisioning.staff_csv import StaffRow
from tests.console.web_fixtures import PASSWORDS, ROLES

HOME = "test-site"
BRANCH = "hayama-branch"
LINE = "staff-area"
A, B, C, D = ("a" * 64, "b" * 64, "c" * 64, "d" * 64)
STAFF = {A: ("K10001", "相模 一郎"), B: ("K10002", "江ノ島 花子"), C: ("K10003", "逗子 三郎")}
RECEIVED = "2026-11-26T10:00:00.000Z"
NOW = "2026-11-26T10:00:00+00:00"


def registry(path: Path) -> Path:
    """Make the home site's registry: A, B and C are staff (D is not)."""
    made = Registry(path)
    made.init_site(HOME, "Asia/Tokyo", {})
    rows = [
        StaffRow(n, staff_no, name, "総務課", "felica", ref, ("floor-2",), None, None)
        for n, (ref, (staff_no, name)) in enumerate(STAFF.items(), 1)
    ]
    import_people(made, rows, "test")
    made.close()
    return path


class Sites:
    """Events of the two sites' gates, each device with its own gap-free seq."""

    def __init__(self, log: CentralLog) -> None:
        self.log = log
        self.seqs: dict[str, count[int]] = {}

    def send(self, device: str, site: str | None, hhmm: str, **fields: Any) -> None:
        seq = next(self.seqs.setdefault(device, count(1)))
        event = {
            "v": 1,
            "id": f"{device}:{seq}",
            "seq": seq,
            "ts": f"2026-11-26T{hhmm}:00.000Z",
            "clock_synced": True,
            "kind": "access",
            "type": "crossing",
            "door": device,
            **fields,
        }
        self.log.append([event], RECEIVED, site=site)

    def cross(self, device: str, site: str | None, hhmm: str, card: str, inward: bool) -> None:
        zones = ("lobby", LINE) if inward else (LINE, "lobby")
        self.send(device, site, hhmm, card_ref=card, from_zone=zones[0], to_zone=zones[1])


def fill(log: CentralLog, home: str | None = None, with_users: bool = True) -> None:
    """Write the two sites' morning into `log`; the home site's rows with site `home`
    (None: as written before sites existed, which only SQLite keeps)."""
    sites = Sites(log)
    sites.cross("gate-1", home, "08:00", A, inward=True)
    sites.cross("gate-1", home, "08:01", B, inward=True)
    sites.cross("gate-h1", BRANCH, "09:00", A, inward=True)
    sites.cross("gate-h1", BRANCH, "09:05", C, inward=True)
    sites.cross("gate-h1", BRANCH, "09:10", C, inward=False)
    sites.cross("gate-h1", BRANCH, "09:15", B, inward=False)
    sites.cross("gate-h1", BRANCH, "09:20", D, inward=False)
    forced = {"kind": "alarm", "type": "door_forced", "state": "raised"}
    sites.send("gate-1", home, "08:30", **forced)
    sites.send("gate-h1", BRANCH, "09:25", **forced)
    log.set_status("gate-1", '{"state":"online","backlog":0}', RECEIVED, site=home)
    log.set_status("gate-h1", '{"state":"offline"}', RECEIVED, site=BRANCH)
    log.set_site_link(BRANCH, connected=False, stored=42, at="2026-11-26T09:30:00.000Z")
    if with_users:
        for user, password in PASSWORDS.items():
            add_user(log, user, ROLES[user], password, by="test")
