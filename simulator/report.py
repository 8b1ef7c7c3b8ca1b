"""The day's report: the simulation checked against its own truth, with figures and a plot.

Every check compares what the devices reported (the console's central log) with what the
world knows happened: events exactly once, no lock released without a reason, fire
releasing every stairway door, the roll call, the alarms each fault must raise, and the
security line's shared anti-passback (simulator.line_checks), and the rooms service's
check-ins, releases and ad-hoc bookings against who was really in each room
(simulator.rooms_checks).
"""

from __future__ import annotations

import json
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edge.cardref import card_reference
from edge.core.clock import utc_text
from simulator.line_checks import line_checks
from simulator.rooms_checks import rooms_checks, rooms_figures
from simulator.run import Simulation
from simulator.verdict import Check

CAUSES = ("grant", "exit_button", "fire", "power_cut", "schedule", "command")


@dataclass
class Report:
    """What `edge-sim` prints and writes."""

    site: str
    day: str
    agents: int
    people: int
    checks: list[Check]
    decisions: dict[str, int]
    alarms: dict[str, int]
    max_occupancy: dict[str, str]
    figures: dict[str, float]
    notes: list[str] = field(default_factory=list)
    rooms: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def text(self) -> str:
        """Return the report as the terminal shows it."""
        f = self.figures
        lines = [
            f"{self.site}, {self.day}: {self.agents} agents, {self.people} people",
            f"  {f['events']:.0f} events from the devices, {f['taps']:.0f} card taps; "
            f"played in {f['play_s']:.1f} s ({f['events_per_s']:.0f} events/s, "
            f"{f['speedup']:.0f}x real time), set-up {f['setup_s']:.1f} s",
            f"  tap -> decision (control socket round trip) p50 {f['tap_p50_ms']:.1f} ms, "
            f"p95 {f['tap_p95_ms']:.1f} ms, p99 {f['tap_p99_ms']:.1f} ms",
            f"  tap -> console log p50 {f['deliver_p50_ms']:.0f} ms, "
            f"p95 {f['deliver_p95_ms']:.0f} ms, p99 {f['deliver_p99_ms']:.0f} ms, "
            f"max {f['deliver_max_ms']:.0f} ms (real time; broker up)",
            f"  taps during broker outages: {f['deliver_outage_taps']:.0f}, "
            f"reached the console at most {f['deliver_outage_max_ms']:.0f} ms later (real time)",
        ]
        if not math.isnan(f["relearn_max_s"]):  # some fault cut the line
            lines.append(
                f"  the line's gates agreed again after a partition, outage or power cut within "
                f"{f['relearn_max_s']:.1f} s (real time; the day waits for them)"
            )
        lines += self._rooms_text()
        lines += ["", "Checks against the simulation's own truth:"]
        lines += [f"  [{'ok' if c.ok else 'FAIL'}] {c.name}: {c.detail}" for c in self.checks]
        lines += ["", "Decisions (from the console's log):"]
        lines += [f"  {k:<34} {v:>6}" for k, v in sorted(self.decisions.items())]
        lines += ["", "Alarms (type/state):"]
        lines += [f"  {k:<34} {v:>6}" for k, v in sorted(self.alarms.items())]
        lines += ["", "Occupancy (from the console's log):"]
        lines += [f"  {k:<46} {v}" for k, v in self.max_occupancy.items()]
        lines += ["", "Timeline:"] + [f"  {n}" for n in self.notes]
        verdict = "ALL CHECKS PASSED" if self.ok else "SOME CHECKS FAILED"
        return "\n".join([*lines, "", verdict])

    def _rooms_text(self) -> list[str]:
        r = self.rooms
        if not r:
            return []
        return [
            f"  rooms: {r['bookings']:.0f} bookings ({r['booked_h']:.1f} h): "
            f"{r['no_shows']:.0f} no-shows, {r['late']:.0f} late within the grace time, "
            f"{r['early_leavers']:.0f} left early; {r['unbooked_uses']:.0f} uses of a booth "
            "nobody booked",
            f"  rooms service: {r['check_ins']:.0f} check-ins, {r['releases']:.0f} releases "
            f"({r['released_h']:.1f} booked hours returned to the pool), "
            f"{r['ad_hoc_bookings']:.0f} ad-hoc bookings ({r['ad_hoc_at_booking_end']:.0f} from "
            f"a booking's end, {r['ad_hoc_released']:.0f} released); {r['steps']:.0f} steps took "
            f"{r['step_s']:.1f} s, booking the day {r['booking_s']:.1f} s (real time)",
        ]


def build_report(sim: Simulation) -> Report:
    """Check the day against the truth and gather the figures."""
    log = sim.collector.log
    entries = list(log.entries())
    checks = list(sim.checks)
    checks.append(_exactly_once(sim))
    checks.append(_unlocks_have_causes(sim))
    if sim.fire_at is not None:
        checks.append(_fire_released(sim))
    checks.append(_expected_alarms(sim, entries))
    checks.append(_no_other_alarms(sim, entries))
    checks.append(_special_cards_denied(sim, entries))
    if sim.world.truth.clones:
        checks.append(_clones_refused(sim, entries))
    if sim.world.truth.duress:
        checks.append(_duress_raised(sim, entries))
    checks.append(_unsynchronised_flagged(sim, entries))
    checks += line_checks(sim, entries)
    rooms: dict[str, float] = {}
    if sim.rooms is not None:
        sim.rooms.read_journal()
        rooms_day = sim.rooms.day(sim.world, sim.rooms.agents_word(entries), sim.length)
        checks += rooms_checks(rooms_day)
        rooms = rooms_figures(rooms_day) | sim.rooms.figures()
    decisions: Counter[str] = Counter()
    alarms: Counter[str] = Counter()
    for e in entries:
        if e.kind == "access" and e.type in ("granted", "denied"):
            decisions[f"{e.type}/{e.body.get('reason')}"] += 1
        elif e.kind == "alarm":
            alarms[f"{e.type}/{e.body.get('state', 'raised')}"] += 1
    occupancy = _occupancy_figures(sim, entries)
    truth = sim.world.truth
    taps = sorted(truth.tap_ms)
    delivered = _delivery_ms(sim, entries)
    in_outage = [ms for at, ms in delivered if any(a <= at <= b for a, b in sim.outages)]
    deliver = sorted(ms for at, ms in delivered if not any(a <= at <= b for a, b in sim.outages))
    play = sim.timing.play_s or 1e-9
    figures = {
        "events": float(len(entries)),
        "taps": float(sum(truth.taps.values())),
        "play_s": sim.timing.play_s,
        "setup_s": sim.timing.setup_s,
        "finish_s": sim.timing.finish_s,
        "events_per_s": len(entries) / play,
        "speedup": sim.length / play,
        "tap_p50_ms": _pct(taps, 50),
        "tap_p95_ms": _pct(taps, 95),
        "tap_p99_ms": _pct(taps, 99),
        "deliver_p50_ms": _pct(deliver, 50),
        "deliver_p95_ms": _pct(deliver, 95),
        "deliver_p99_ms": _pct(deliver, 99),
        "deliver_max_ms": deliver[-1] if deliver else float("nan"),
        "deliver_outage_max_ms": max(in_outage, default=float("nan")),
        "deliver_outage_taps": float(len(in_outage)),
        "relearn_max_s": max((r[3] for r in sim.reconciliations), default=float("nan")),
    }
    return Report(
        site=sim.building.spec.site,
        day=f"{sim.start:%Y-%m-%d %H:%M} + {sim.length / 3600:g} h",
        agents=len(sim.agents),
        people=len(sim.people),
        checks=checks,
        decisions=dict(decisions),
        alarms=dict(alarms),
        max_occupancy=dict(occupancy),
        figures=figures,
        notes=[f"{sim.world.clock_text(at)} {text}" for at, text in truth.notes],
        rooms=rooms,
    )


def _occupancy_figures(sim: Simulation, entries: list[Any]) -> dict[str, str]:
    """The most people inside the line, and how busy rooms, booths and areas were."""
    figures: dict[str, str] = {}
    inside, most, most_at = 0, 0, ""
    for e in sorted(
        (e for e in entries if e.kind == "access" and e.type == "crossing"), key=lambda e: e.ts
    ):
        if e.body.get("to_zone") == "staff-area":
            inside += 1
        elif e.body.get("from_zone") == "staff-area":
            inside -= 1
        if inside > most:
            most, most_at = inside, e.ts
    figures["most inside the security line at once"] = f"{most} at {_local(sim, most_at)}"
    since: dict[str, str] = {}
    hours: dict[str, float] = defaultdict(float)
    busy: dict[str, set[str]] = defaultdict(set)
    peak: dict[str, tuple[int, str]] = {}
    for ts, zone, occupied in _zone_changes(sim, entries):
        kind = zone.split("-", 1)[0]
        if kind not in ("meeting", "focus", "phone", "consult", "area", "refresh"):
            continue
        if occupied and zone not in since:
            since[zone] = ts
            busy[kind].add(zone)
        elif not occupied and zone in since:
            hours[zone] += (_parse(ts) - _parse(since.pop(zone))).total_seconds() / 3600
            busy[kind].discard(zone)
        if len(busy[kind]) > peak.get(kind, (0, ""))[0]:
            peak[kind] = (len(busy[kind]), ts)
    names = {"meeting": "meeting rooms", "focus": "focus booths", "phone": "phone booths"}
    names |= {"consult": "consultation booths (1F)", "area": "department areas"}
    island_of = {i for a in sim.building.areas.values() for i in a.islands}
    for kind, label in names.items():
        total = sum(
            1 for z in [*sim.building.zones, *sim.building.areas] if z.startswith(f"{kind}-")
        )
        total -= sum(1 for z in island_of if z.startswith(f"{kind}-"))
        count, at = peak.get(kind, (0, ""))
        figures[f"{label} in use at once"] = f"{count} of {total} at {_local(sim, at)}"
    for zone, h in sorted(hours.items(), key=lambda kv: -kv[1])[:3]:
        figures[f"busiest: {zone}"] = f"{h:.1f} h occupied"
    return figures


def _zone_changes(sim: Simulation, entries: list[Any]) -> list[tuple[str, str, bool]]:
    """Each zone's occupancy changes (ts, zone, occupied), a department's area in use while
    any of its desk islands is."""
    island_of = {i: a.id for a in sim.building.areas.values() for i in a.islands}
    seen: dict[str, set[str]] = defaultdict(set)  # area -> its islands occupied
    changes: list[tuple[str, str, bool]] = []
    for e in sorted((e for e in entries if e.kind == "occupancy"), key=lambda e: e.ts):
        zone, occupied = str(e.body.get("zone")), bool(e.body.get("occupied"))
        area = island_of.get(zone)
        if area is None:
            changes.append((e.ts, zone, occupied))
            continue
        was = bool(seen[area])
        (seen[area].add if occupied else seen[area].discard)(zone)
        if was != bool(seen[area]):
            changes.append((e.ts, area, not was))
    return changes


def _local(sim: Simulation, ts: str) -> str:
    return _parse(ts).astimezone(sim.start.tzinfo).strftime("%H:%M") if ts else "-"


def _unsynchronised_flagged(sim: Simulation, entries: list[Any]) -> Check:
    """Events stamped while a device's clock was unsynchronised say so; no others do."""
    faulted = {f.device for f in sim.scenario.faults if f.kind == "clock_unsynchronised"}
    flagged = Counter(e.device for e in entries if e.body.get("clock_synced") is False)
    stray = {d: n for d, n in flagged.items() if d not in faulted}
    return Check(
        "events stamped on an unsynchronised clock carry clock_synced=false (and no others)",
        not stray and all(flagged.get(d) for d in faulted),
        f"flagged: {dict(flagged) or 'none'}; from devices whose clock was fine: {stray or 'none'}",
    )


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1]


def _exactly_once(sim: Simulation) -> Check:
    devices = sim.collector.log.devices()
    problems = []
    duplicates = 0
    for device, last in sorted(sim.last_seq.items()):
        row = devices.get(device)
        duplicates += int(row["duplicates"]) if row else 0
        if row is None or row["contiguous"] != last or row["max_seq"] != last:
            problems.append(f"{device}: device stored 1..{last}, console has {row}")
    gaps = sim.collector.log.gaps()
    return Check(
        "every event arrived exactly once (per-device seq complete, no gap)",
        not problems and not gaps,
        f"{len(sim.last_seq)} devices, {sum(sim.last_seq.values())} events; "
        f"{duplicates} duplicate deliveries folded by id; problems {problems[:3]}, gaps {gaps}",
    )


def _unlocks_have_causes(sim: Simulation) -> Check:
    truth = sim.world.truth
    unexplained = []
    unlocks = 0
    for door, changes in truth.relays.items():
        causes = truth.causes.get(door, [])
        for at, unlocked in changes:
            if not unlocked:
                continue
            unlocks += 1
            if not any(abs(at - when) < 0.01 for when, _ in causes):
                unexplained.append(f"{door} at {sim.world.clock_text(at)}")
    return Check(
        "no lock released without a grant, exit button, schedule, command or fire",
        not unexplained,
        f"{unlocks} releases read back from the relays; unexplained: {unexplained[:5]}",
    )


def _fire_released(sim: Simulation) -> Check:
    assert sim.fire_at is not None
    truth = sim.world.truth
    slow = []
    worst = 0.0
    for door in (d.id for d in sim.building.stair_doors):
        before = [u for at, u in truth.relays.get(door, []) if at <= sim.fire_at]
        released = [at for at, u in truth.relays.get(door, []) if u and at >= sim.fire_at]
        if before and before[-1]:
            continue  # already released when the fire began
        if not released or released[0] - sim.fire_at > 1.0:
            slow.append(door)
        else:
            worst = max(worst, released[0] - sim.fire_at)
    return Check(
        "fire released every stairway door within 1 s (simulated)",
        not slow,
        f"{len(sim.building.stair_doors)} doors, slowest {worst:.2f} s; not released: {slow}",
    )


def _expected_alarms(sim: Simulation, entries: list[Any]) -> Check:
    missing = []
    for at, device, alarm in sim.expected_alarms:
        since = _utc(sim, at)
        if not any(
            e.device == device and e.kind == "alarm" and e.type == alarm and e.ts >= since
            for e in entries
        ):
            missing.append(f"{alarm} from {device}")
    return Check(
        "every fault raised its alarm at the console",
        not missing,
        f"{len(sim.expected_alarms)} expected; missing: {missing}",
    )


def _no_other_alarms(sim: Simulation, entries: list[Any]) -> Check:
    """Every alarm raised was one a fault called for (or the devices' first start)."""
    expected = {(device, alarm) for _, device, alarm in sim.expected_alarms}
    expected |= sim.allowed_alarms
    unexpected = Counter(
        f"{e.type} on {e.device} at {e.ts[11:19]}Z"
        for e in entries
        if e.kind == "alarm"
        and e.body.get("state", "raised") == "raised"
        and (e.device, e.type) not in expected
        # Before its first credentials arrive a device has none: stale until provisioned.
        and not (e.type == "credentials_stale" and e.ts <= _utc(sim, 0))
    )
    return Check(
        "no alarm the faults did not call for",
        not unexpected,
        f"unexpected: {dict(unexpected) if unexpected else 'none'}",
    )


def _special_cards_denied(sim: Simulation, entries: list[Any]) -> Check:
    special = {
        card_reference(sim.card_key, p.technology, p.card_id): p
        for p in sim.people
        if p.case in ("expired", "not_yet_valid", "lost")
    }
    granted = [
        special[e.body["card_ref"]].case
        for e in entries
        if e.kind == "access" and e.type == "granted" and e.body.get("card_ref") in special
    ]
    denied = Counter(
        f"{special[e.body['card_ref']].case}->{e.body.get('reason')}"
        for e in entries
        if e.kind == "access" and e.type == "denied" and e.body.get("card_ref") in special
    )
    return Check(
        "expired, not-yet-valid and lost cards were never granted",
        not granted,
        f"denied: {dict(denied)}; granted: {granted}",
    )


def _clones_refused(sim: Simulation, entries: list[Any]) -> Check:
    """Every copy of a proving card was refused, and the console holds the refusal."""
    tried = sim.world.truth.clones
    refs = {card_reference(sim.card_key, tech, card_id) for tech, card_id, _, _ in tried}
    granted = [decision for _, _, decision, _ in tried if decision != "denied"]
    logged = [
        e
        for e in entries
        if e.kind == "access"
        and e.type == "denied"
        and e.body.get("reason") == "card_not_authenticated"
        and e.body.get("card_ref") in refs
    ]
    return Check(
        "copies of proving cards were refused (card_not_authenticated) and logged",
        not granted and len(logged) >= len(tried),
        f"tried {len(tried)}, device answers {[d for _, _, d, _ in tried]}, "
        f"refusals in the log {len(logged)}",
    )


def _duress_raised(sim: Simulation, entries: list[Any]) -> Check:
    """Every duress PIN opened the door as usual, and its silent alarm is in the console's log."""
    keyed = sim.world.truth.duress
    answers = [decision for _, _, decision, _, _ in keyed]
    opened = [was_opened for *_, was_opened in keyed]
    refs = Counter(card_reference(sim.card_key, tech, card_id) for tech, card_id, *_ in keyed)
    logged = Counter(
        e.body.get("card_ref")
        for e in entries
        if e.kind == "alarm"
        and e.type == "duress"
        and e.body.get("state", "raised") == "raised"
        and e.body.get("card_ref") in refs
    )
    return Check(
        "duress: the door opened as usual and the silent alarm reached the console",
        all(opened) and all(logged[ref] >= n for ref, n in refs.items()),
        f"keyed {len(keyed)}, device answers {answers}, doors opened {sum(opened)}, "
        f"duress alarms in the log {sum(logged.values())}",
    )


def _utc(sim: Simulation, at: float) -> str:
    return utc_text(sim.start + timedelta(seconds=at))


def _delivery_ms(sim: Simulation, entries: list[Any]) -> list[tuple[float, float]]:
    """(simulated time, real ms) from a tap's decision to its event in the console's log."""
    start = sim.start.astimezone(UTC)
    out = []
    for e in entries:
        if e.kind != "access" or e.type not in ("granted", "denied"):
            continue
        at = round((_parse(e.ts) - start).total_seconds(), 3)
        tapped = sim.world.truth.tap_real.get((e.device, at))
        stored = sim.stored_real.get(e.id)
        if tapped is None or stored is None:
            continue
        out.append((at, (stored - tapped) * 1000))
    return out


def _parse(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


def write_report(report: Report, sim: Simulation, out: Path) -> list[Path]:
    """Write report.txt, report.json and occupancy.png into `out`; return their paths."""
    from simulator.plot import occupancy_plot  # noqa: PLC0415 -- matplotlib (the sim extra), needed only for the plot

    out.mkdir(parents=True, exist_ok=True)
    text = out / "report.txt"
    text.write_text(report.text() + "\n", encoding="utf-8")
    data = out / "report.json"
    data.write_text(json.dumps(asdict(report), ensure_ascii=False, indent=1, default=str))
    png = occupancy_plot(sim, out / "occupancy.png")
    return [text, data, png]
