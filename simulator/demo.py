"""The demo: a scripted morning at the city hall's security line, printed as it happens.

python -m simulator.demo            # the morning, then the roll call
python -m simulator.demo --all      # also every door movement and lock action
"""

from __future__ import annotations

import argparse
import os
import sys
import unicodedata
from collections import Counter
from zoneinfo import ZoneInfo

from edge.core.events import Event, FireInputChanged
from edge.core.outputs import EventKind, Output, Record
from simulator.morning import Morning, build

TOKYO = ZoneInfo("Asia/Tokyo")
QUIET_TYPES = {"opened", "closed", "unlocked", "locked", "exit_pressed"}


class Printer:
    """Prints the records a guard would care about, one line each."""

    def __init__(self, morning: Morning, verbose: bool, colour: bool) -> None:
        self.m = morning
        self.verbose = verbose
        self.colour = colour

    def paint(self, text: str, code: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.colour else text

    def __call__(self, device: str, event: Event, outputs: list[Output]) -> None:
        for output in outputs:
            if isinstance(output, Record):
                line = self.line(device, output)
                if line:
                    print(line)
        if isinstance(event, FireInputChanged) and event.active:
            self.roll_call(
                "火災報知 — 在館者（セキュリティライン内） / FIRE — roll call, inside the line"
            )

    def who(self, ref: str) -> str:
        person = self.m.by_ref.get(ref)
        return person.label if person else f"未登録カード unknown card {ref[:8]}…"

    def line(self, device: str, rec: Record) -> str | None:
        e = rec.event
        clock = e.ts.astimezone(TOKYO).strftime("%H:%M:%S")
        d = e.data
        if e.kind is EventKind.ACCESS and e.type in ("granted", "denied"):
            ok = e.type == "granted"
            mark = self.paint("許可 GRANTED", "32") if ok else self.paint("拒否 DENIED ", "31;1")
            arrow = "入 in " if d["direction"] == "in" else "出 out"
            extra = " (lockdown override)" if d.get("override") else ""
            who = self.who(d["card_ref"])
            return f"{clock}  {d['reader']:<14} {arrow}  {mark}  {d['reason']:<15} {who}{extra}"
        if e.kind is EventKind.ACCESS and e.type == "crossing":
            if not self.verbose:
                return None
            move = f"{d['from_zone']} → {d['to_zone']}"
            return f"{clock}  {d['door']:<14} crossing {move}  {self.who(d['card_ref'])}"
        if e.kind is EventKind.ALARM:
            text = f"{clock}  {d.get('door', device):<14} ALARM  {e.type} {d.get('state', '')}"
            if e.type in ("lost_card_used", "clone_suspected", "duress"):
                text += f"  {self.who(d['card_ref'])}"
            return self.paint(text, "33;1" if d.get("state") != "cleared" else "33")
        if e.kind is EventKind.DOOR and e.type == "mode":
            return self.paint(
                f"{clock}  {d['door']:<14} mode   {d['previous']} → {d['mode']}  ({d['cause']})",
                "36",
            )
        if e.kind is EventKind.SYSTEM and e.type in (
            "lockdown",
            "fire_reset",
            "fire_reset_refused",
        ):
            what = e.type
            if e.type == "lockdown":
                what = "lockdown on" if d["on"] else "lockdown off"
            return self.paint(f"{clock}  {device:<14} {what} by {d['by']}", "36")
        if self.verbose and e.kind is EventKind.DOOR and e.type in QUIET_TYPES:
            cause = f" ({d['cause']})" if "cause" in d else ""
            return f"{clock}  {d['door']:<14} {e.type}{cause}"
        return None

    def roll_call(self, title: str) -> None:
        print(self.paint(f"\n    {title}: {len(self.m.inside)}", "1"))
        by_department: dict[str, list[str]] = {}
        for person in self.m.inside.values():
            by_department.setdefault(person.department, []).append(person.name)
        for department in sorted(by_department):
            names = "、".join(sorted(by_department[department]))
            print(f"      {pad(department, 10)} {len(by_department[department]):>2}  {names}")
        print()


def pad(text: str, width: int) -> str:
    """Pad `text` to `width` terminal columns (CJK characters take two)."""
    used = sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
    return text + " " * max(0, width - used)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="A scripted morning at the city hall's security line."
    )
    parser.add_argument(
        "--all", action="store_true", help="also print door movements and lock actions"
    )
    parser.add_argument("--staff", type=int, default=24, help="how many staff arrive (default 24)")
    parser.add_argument("--seed", type=int, default=7, help="seed for arrival times")
    parser.add_argument("--no-colour", action="store_true", help="plain text")
    args = parser.parse_args(argv)

    site_key = os.urandom(32)  # a fresh card key each run: references differ, decisions don't
    morning = build(site_key, args.staff, args.seed)
    colour = sys.stdout.isatty() and not args.no_colour and "NO_COLOR" not in os.environ
    printer = Printer(morning, args.all, colour)
    morning.timeline.observe(printer)
    print(
        "鎌倉市役所 — 朝のセキュリティライン / Kamakura City Hall — a morning at the security line"
    )
    print("2026-12-01 (火)  devices: " + ", ".join(sorted(morning.timeline.devices)) + "\n")
    morning.timeline.run_for(62 * 60)

    decisions = Counter(
        rec.event.data["reason"]
        for _, rec in morning.records
        if rec.event.kind is EventKind.ACCESS and rec.event.type in ("granted", "denied")
    )
    alarms = Counter(
        rec.event.type
        for _, rec in morning.records
        if rec.event.kind is EventKind.ALARM and rec.event.data.get("state") == "raised"
    )
    print(
        f"\n{len(morning.records)} events recorded; decisions by reason: "
        + ", ".join(f"{k} {v}" for k, v in sorted(decisions.items()))
    )
    print("alarms raised: " + ", ".join(f"{k} {v}" for k, v in sorted(alarms.items())))
    printer.roll_call("在館者 / inside the security line at 08:57")
    for name, device in sorted(morning.timeline.devices.items()):
        counts = {z: device.counts.count(z) for z in sorted(device._zones)}
        print(f"    {name} counts: " + ", ".join(f"{z} {c}" for z, c in counts.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
