"""The report's checks of the security line's shared anti-passback, against the truth.

- a card handed back over the line is refused (`anti_passback`), or granted flagged
  `anti_passback_violation` only where the gate's anti-passback was soft at that moment;
- nobody is refused `anti_passback` by stale positions once the gates have reconciled
  after a partition, an outage or a power cut (refusals while they had not are counted);
- the gates agreed again within a minute after each of those;
- the line's head count (the console's sum of every device's movements) of each gate's
  inside zone matches who is inside, less the people who came in unseen behind someone (no
  device can count those), at noon or the fire alarm (busy: no count hides at zero) and at
  the end;
- a gate cut off raised `anti_passback_degraded` and cleared it, if its fallback is soft.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from console.headcount import head_count
from edge.cardref import card_reference
from edge.core.clock import utc_text
from simulator.run import Simulation
from simulator.verdict import Check


def line_checks(sim: Simulation, entries: list[Any]) -> list[Check]:
    """Return the line's checks that apply to this day."""
    checks = [_no_stale_refusals(sim), _line_counted(sim)]
    if sim.world.truth.handed_back:
        checks.insert(0, _handed_back_refused(sim, entries))
    if sim.reconciliations:
        checks.append(_reconciled(sim))
    if sim.partitions:
        checks.append(_degraded_while_cut(sim, entries))
    return checks


def _utc(sim: Simulation, at: float) -> str:
    return utc_text(sim.start + timedelta(seconds=at))


def _handed_back_refused(sim: Simulation, entries: list[Any]) -> Check:
    """Each handed-back card was refused, or flagged where anti-passback was soft."""
    lines: list[str] = []
    bad: list[str] = []
    for tried in sim.world.truth.handed_back:
        ref = card_reference(sim.card_key, tried.technology, tried.card_id)
        since = _utc(sim, tried.at)
        logged = [
            e
            for e in entries
            if e.kind == "access"
            and e.device == tried.gate
            and e.type in ("granted", "denied")
            and e.body.get("card_ref") == ref
            and e.ts >= since
        ]
        first = logged[0] if logged else None
        refused = (
            tried.decision == "denied"
            and tried.reason == "anti_passback"
            and first is not None
            and first.type == "denied"
            and first.body.get("reason") == "anti_passback"
        )
        flagged = (
            tried.soft
            and tried.decision == "granted"
            and tried.violation
            and first is not None
            and first.body.get("anti_passback_violation") is True
        )
        outcome = f"{tried.decision}/{tried.reason}" + (" flagged" if tried.violation else "")
        after = f", after {tried.after}" if tried.after else ""
        lines.append(f"{sim.world.clock_text(tried.at)} at {tried.gate}{after}: {outcome}")
        if not (refused or flagged):
            bad.append(lines[-1] + ("" if first else " (not in the console's log)"))
    return Check(
        "a card handed back over the line was refused (anti_passback), or flagged where soft",
        not bad,
        f"{'; '.join(lines)}; wrong: {bad or 'none'}",
    )


def _no_stale_refusals(sim: Simulation) -> Check:
    """No one was refused anti_passback wrongly outside a window the gates were reconciling."""
    windows = [(since, until) for _, since, until, _, _ in sim.reconciliations]
    during: list[str] = []
    after: list[str] = []
    for at, gate, staff_no, direction in sim.world.truth.stale_refusals:
        what = f"{staff_no} {direction} at {gate} {sim.world.clock_text(at)}"
        (during if any(a <= at <= b for a, b in windows) else after).append(what)
    return Check(
        "nobody on the right side of the line was refused anti_passback by stale positions "
        "once the gates had reconciled",
        not after,
        f"stale refusals while the gates were cut off or relearning: {len(during)} "
        f"{during[:3]}; after: {after[:5] or 'none'}",
    )


def _reconciled(sim: Simulation) -> Check:
    """After every partition, outage and gate power cut, the gates agreed again in time."""
    done = [
        f"{label}: {real_s:.1f} s{'' if ok else ' NOT'}"
        for label, _, _, real_s, ok in sim.reconciliations
    ]
    return Check(
        "after each partition, outage or power cut every gate relearned the line's "
        "positions (real time, within a minute)",
        all(ok for *_, ok in sim.reconciliations),
        "; ".join(done),
    )


def _line_counted(sim: Simulation) -> Check:
    """Each gate's inside zone's summed head count matches the truth, at busy moments and
    at the end, less those who came in unseen behind someone."""
    truth = sim.world.truth
    expected = max(0, sim.world.inside_count - truth.unseen_entries)
    zones = sorted({g.inside for g in sim.building.gates})
    end = {zone: head_count(sim.collector.log, zone) for zone in zones}
    samples = [*sim.head_counts, (sim.world.engine.now, "the end", end, expected)]
    shown: list[str] = []
    bad: list[str] = []
    for at, label, counts, want in samples:
        shown.append(f"{label} ({sim.world.clock_text(at)}): console {counts}, truth {want}")
        wrong = {
            g.device: counts.get(g.inside)
            for g in sim.building.gates
            if counts.get(g.inside) != want
        }
        if wrong:
            bad.append(f"{label}: {wrong}")
    busy = len(sim.head_counts)
    return Check(
        "the line's head count (every device's movements summed) matches the truth "
        "per gate's zone, at busy moments and at the end",
        not bad,
        f"{'; '.join(shown)} ({truth.unseen_entries} came in unseen behind someone in all); "
        f"wrong: {bad or 'none'}"
        + ("" if busy else "; no busy moment could be compared (see the timeline)"),
    )


def _degraded_while_cut(sim: Simulation, entries: list[Any]) -> Check:
    """A gate cut off raised anti_passback_degraded and cleared it (soft), or never (hard)."""
    soft = sim.building.spec.anti_passback_offline == "soft"
    lines: list[str] = []
    bad: list[str] = []
    for gate, began, healed in sim.partitions:
        states = [
            (e.ts, e.body.get("state"))
            for e in entries
            if e.kind == "alarm"
            and e.type == "anti_passback_degraded"
            and e.device == gate
            and e.ts >= _utc(sim, began)
        ]
        raised = [ts for ts, state in states if state == "raised" and ts <= _utc(sim, healed)]
        # The first clearing after it was raised: the gate heard its peers again.
        cleared = [ts for ts, state in states if state == "cleared" and raised and ts >= raised[0]]
        seen = (
            f"{gate}: raised {raised[0][11:19] + 'Z' if raised else 'never'}, "
            f"cleared {cleared[0][11:19] + 'Z' if cleared else 'never'}"
        )
        lines.append(seen)
        if (soft and not (raised and cleared)) or (not soft and states):
            bad.append(seen)
    mode = "soft: raised while cut off and cleared" if soft else "hard: none"
    return Check(
        f"a gate cut off from the others: anti_passback_degraded ({mode})",
        not bad,
        f"{'; '.join(lines)}; wrong: {bad or 'none'}",
    )
