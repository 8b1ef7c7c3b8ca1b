"""The people of a simulated building, and the staff list an HR department would export.

Everyone gets a department (and so a floor and a free-seating area), a morning gate, a card
and a daily rhythm; a few carry the cases a guard meets: an expired card, a card not valid
yet, a card reported lost, someone who forgot their card (the tailgater). Security guards
also have a PIN and a duress PIN (keyed under threat: the door opens as usual and the
console gets a silent alarm). Names live here, in provisioning and in the console only;
devices see card references.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path

from provisioning.staff_csv import COLUMNS
from simulator.building import Building

FAMILY = [
    "佐藤",
    "鈴木",
    "高橋",
    "田中",
    "伊藤",
    "渡辺",
    "山本",
    "中村",
    "小林",
    "加藤",
    "吉田",
    "山田",
    "佐々木",
    "山口",
    "松本",
    "井上",
    "木村",
    "林",
    "斎藤",
    "清水",
    "山崎",
    "森",
    "池田",
    "橋本",
    "阿部",
    "石川",
    "山下",
    "中島",
    "石井",
    "小川",
]
GIVEN = [
    "花子",
    "太郎",
    "美咲",
    "健太",
    "陽菜",
    "翔",
    "結衣",
    "大輔",
    "さくら",
    "直樹",
    "葵",
    "誠",
    "蓮",
    "悠真",
    "湊",
    "陽翔",
    "凛",
    "結菜",
    "芽依",
    "大和",
    "悠人",
    "颯太",
    "莉子",
    "美結",
    "拓海",
    "真央",
    "涼",
    "彩",
    "優斗",
    "千尋",
]
SECURITY = "警備室"
GUARDS = 12


@dataclass(frozen=True)
class Person:
    """Someone with a card (or, for a visitor, without one)."""

    staff_no: str
    name: str
    department: str
    floor: int  # 1 for the security office
    area: str | None  # the department's free-seating zone
    gate: str  # the gate they come in by in the morning (they leave by any)
    technology: str
    card_id: str  # the raw id: never leaves the simulated card and the HR file
    groups: tuple[str, ...]
    valid_from: date | None = None
    valid_until: date | None = None
    case: str = ""  # "", expired, not_yet_valid, lost, no_card
    # What the card proves: security guards carry Lite-S (FeliCa) or DESFire (ISO 14443 A)
    # cards with their own keys; everyone else's card is known by its id alone.
    profile: str = "uid"
    pin: str | None = field(default=None, repr=False)  # guards only; never leaves the HR file
    duress_pin: str | None = field(default=None, repr=False)


def make_people(building: Building, day: date, seed: int = 1) -> list[Person]:
    """Return the building's staff (security office included), with their special cases."""
    rng = random.Random(seed)
    gates = building.spec.gates
    weights = [g.share for g in gates]
    departments = building.departments
    people: list[Person] = []
    used: set[str] = set()
    for i in range(building.spec.staff):
        if i < GUARDS:
            department, floor, area = SECURITY, 1, None
            groups: tuple[str, ...] = ("staff", "security")
        else:
            dept = departments[i % len(departments)]
            department, floor, area = dept.name, dept.floor, dept.area
            groups = ("staff", f"floor-{floor}")
        technology = "felica" if rng.random() < 0.9 else "iso14443a"
        while True:
            raw = (
                f"0114{rng.getrandbits(48):012X}"
                if technology == "felica"
                else f"04{rng.getrandbits(48):012X}"
            )
            if raw not in used:
                used.add(raw)
                break
        gate = rng.choices(gates, weights)[0].id
        people.append(
            Person(
                staff_no=f"K{20000 + i:05d}",
                name=f"{rng.choice(FAMILY)} {rng.choice(GIVEN)}",
                department=department,
                floor=floor,
                area=area,
                gate=gate,
                technology=technology,
                card_id=raw,
                groups=groups,
                profile=(
                    "uid" if i >= GUARDS else "lite-s" if technology == "felica" else "desfire"
                ),
            )
        )
    # The cases a guard meets, on fixed people so every run has them.
    special: dict[int, tuple[str, date | None, date | None]] = {  # case, valid from, until
        GUARDS + 1: ("expired", None, day - timedelta(days=1)),
        GUARDS + 2: ("not_yet_valid", day + timedelta(days=1), None),
        GUARDS + 3: ("lost", None, None),
        GUARDS + 4: ("no_card", None, None),
    }
    for index, (case, valid_from, valid_until) in special.items():
        if index < len(people):
            people[index] = replace(
                people[index], case=case, valid_from=valid_from, valid_until=valid_until
            )
    # PINs from a stream of their own, so the people above stay the same for a seed.
    pins = random.Random(f"pins-{seed}")
    for index, person in enumerate(people):
        if "security" in person.groups:
            pin = f"{pins.randrange(10**6):06d}"
            duress = pin[:-1] + str((int(pin[-1]) + 1) % 10)  # the habit: last digit plus one
            people[index] = replace(person, pin=pin, duress_pin=duress)
    return people


def hr_csv(people: list[Person]) -> bytes:
    """Return the staff list as HR exports it: Shift_JIS, CRLF, one row per card."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    # What edge-provision cards import expects, with the optional columns filled here.
    writer.writerow([*COLUMNS, "card_profile", "pin", "duress_pin"])
    for p in people:
        writer.writerow(
            [
                p.staff_no,
                p.name,
                p.department,
                p.technology,
                p.card_id,
                ";".join(p.groups),
                p.valid_from.isoformat() if p.valid_from else "",
                p.valid_until.isoformat() if p.valid_until else "",
                p.profile,
                p.pin or "",
                p.duress_pin or "",
            ]
        )
    return out.getvalue().encode("shift_jis")


def write_hr_csv(people: list[Person], path: Path) -> Path:
    """Write the HR export (0600: it holds raw card ids and PINs) and return its path."""
    path.write_bytes(hr_csv(people))
    path.chmod(0o600)
    return path
