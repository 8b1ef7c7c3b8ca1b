"""Provisioning at scale: import a 100k-row HR CSV, build a snapshot for 100k cardholders.

Figures are printed, never asserted.   python bench/provision.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from provisioning.publish import build_all
from provisioning.registry import Registry
from provisioning.rules import add_rule
from tests.provisioning.commands import provision

DEPARTMENTS = ["総務課", "財政課", "市民課", "都市計画課", "福祉課", "警備"]


def make_csv(path: Path, rows: int) -> None:
    rng = random.Random(1)
    lines = ["staff_no,name,department,card_tech,card_id,groups,valid_from,valid_until"]
    for i in range(rows):
        groups = ";".join(
            sorted(rng.sample([f"group-{g:02d}" for g in range(50)], rng.randint(1, 3)))
        )
        lines.append(
            f"S{i:06d},職員 {i},{rng.choice(DEPARTMENTS)},felica,0114{i:012X},{groups},,2030-03-31"
        )
    path.write_text("\n".join(lines) + "\n", encoding="cp932")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-provision-"))
    site = tmp / "site"
    assert provision("site", "init", "--site", "bench-site", "--dir", str(site)).returncode == 0
    assert (
        provision("device", "add", "gate-1", "--role", "gate", "--dir", str(site)).returncode == 0
    )
    doors = ["gate-east", *[f"door-{d:03d}" for d in range(199)]]
    registry = Registry(site / "registry.db")

    rng = random.Random(2)
    for g in range(50):
        add_rule(
            registry, f"group-{g:02d}", [*sorted(rng.sample(doors, 20)), "gate-east"], "always"
        )
    registry.close()
    csv = tmp / "staff.csv"
    make_csv(csv, args.rows)
    print(
        f"# {platform.machine()} Python {sys.version.split()[0]}; {args.rows:,} rows (Shift_JIS), 50 groups, 200 doors"
    )
    start = time.perf_counter()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "provisioning.cli",
            "cards",
            "import",
            str(csv),
            "--encoding",
            "cp932",
            "--dir",
            str(site),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    print(f"cards import: {time.perf_counter() - start:6.1f} s  ({result.stdout.strip()})")
    registry = Registry(site / "registry.db")
    start = time.perf_counter()
    (built,) = build_all(registry, site)
    elapsed = time.perf_counter() - start
    print(
        f"snapshot build for one gate: {elapsed:6.2f} s, {built.cards:,} cards, {len(built.data) / 1e6:.1f} MB signed and compressed"
    )


if __name__ == "__main__":
    main()
