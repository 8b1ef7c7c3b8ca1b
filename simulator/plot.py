"""The day in one picture: occupancy by kind of zone, from the console's log and the truth."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from console.log import CentralLog
from simulator.run import Simulation


def occupancy_plot(sim: Simulation, path: Path) -> Path:
    """Plot people inside the line and occupied rooms, booths and areas over the day."""
    start = sim.start.astimezone(UTC)
    hour0 = sim.start.hour + sim.start.minute / 60

    def hours(ts: str) -> float:
        moment = datetime.fromisoformat(ts)
        return hour0 + (moment - start).total_seconds() / 3600

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    truth = sim.world.truth.inside_series
    top.step(
        [hour0 + at / 3600 for at, _ in truth],
        [n for _, n in truth],
        where="post",
        label="inside the security line (truth)",
        color="0.6",
        linewidth=3,
    )
    xs, ys = _console_inside(sim.collector.log, hours)
    top.step(xs, ys, where="post", label="inside, from the console's log", color="C0")
    top.set_ylabel("people")
    top.legend(loc="upper left")
    # The site's id, not its Japanese name: no CJK font is needed to draw it.
    top.set_title(f"{sim.building.spec.site}: {sim.start:%Y-%m-%d}")
    for label, kinds, colour in (
        ("meeting rooms in use", ("meeting",), "C1"),
        ("booths in use", ("focus", "phone", "consult"), "C2"),
        ("department areas occupied", ("area",), "C3"),
    ):
        xs, ys = _occupied(sim.collector.log, kinds, hours)
        bottom.step(xs, ys, where="post", label=label, color=colour)
    bottom.set_ylabel("zones occupied")
    bottom.set_xlabel("local time (h)")
    bottom.legend(loc="upper left")
    for at, kind in sim.fault_log:
        x = hour0 + at / 3600
        for axis in (top, bottom):
            axis.axvline(x, color="red", alpha=0.3, linewidth=1)
        top.annotate(
            kind.replace("_", " "),
            (x, 0.03),
            xycoords=("data", "axes fraction"),
            rotation=90,
            fontsize=7,
            color="red",
            va="bottom",
            ha="right",
        )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _console_inside(log: CentralLog, hours: object) -> tuple[list[float], list[int]]:
    xs: list[float] = []
    ys: list[int] = []
    count = 0
    for ts, to_zone, from_zone in log.db.execute(
        "SELECT ts, json_extract(body, '$.to_zone'), json_extract(body, '$.from_zone') "
        "FROM events WHERE kind = 'access' AND type = 'crossing' ORDER BY ts"
    ):
        if to_zone == "staff-area":
            count += 1
        elif from_zone == "staff-area":
            count -= 1
        else:
            continue
        xs.append(hours(ts))  # type: ignore[operator]
        ys.append(count)
    return xs, ys


def _occupied(
    log: CentralLog, prefixes: tuple[str, ...], hours: object
) -> tuple[list[float], list[int]]:
    state: dict[str, bool] = defaultdict(bool)
    xs: list[float] = []
    ys: list[int] = []
    for ts, zone, occupied in log.db.execute(
        "SELECT ts, json_extract(body, '$.zone'), json_extract(body, '$.occupied') "
        "FROM events WHERE kind = 'occupancy' ORDER BY ts"
    ):
        if not str(zone).startswith(prefixes):
            continue
        state[zone] = bool(occupied)
        xs.append(hours(ts))  # type: ignore[operator]
        ys.append(sum(state.values()))
    return xs, ys
