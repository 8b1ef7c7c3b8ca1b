"""`edge-sim`: the whole city hall on one machine, without hardware.

edge-sim demo                         the default building and day, with faults
edge-sim run --scenario my-day.toml   another day (or --building another building)
edge-sim tap gate-1f-east --staff-no K20100      act on a running simulation
edge-sim fault fire --minutes 3
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from edge.errors import EdgeError
from simulator.building import DEFAULT_BUILDING, load_building
from simulator.control_channel import ControlError, send
from simulator.demo import main as morning_main
from simulator.report import build_report, write_report
from simulator.run import Simulation
from simulator.scenario import DEFAULT_SCENARIO, FAULT_KINDS, Scenario, load_scenario

RUN_DIR = Path(tempfile.gettempdir()) / "edge-sim"

run_dir_option = click.option(
    "--run-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=RUN_DIR,
    show_default=True,
    help="Where the running simulation keeps its broker, devices and console log.",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """Run the simulated city hall: real agents, broker and console; simulated hardware."""


@cli.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("edge-sim-report"),
    show_default=True,
    help="Where to write report.txt, report.json and occupancy.png.",
)
@click.option("--speed", type=float, help="Times real time (default: as fast as it goes).")
@run_dir_option
@click.pass_context
def demo(ctx: click.Context, out: Path, speed: float | None, run_dir: Path) -> None:
    """Play a working day at the default city hall, with one of each fault.

    Starts mosquitto on a free loopback port, provisions the site with edge-provision
    (1,500 staff from an HR-style CSV, 37 devices, rules), starts one agent process per
    Raspberry Pi, the console's collector, the rooms service with a private Radicale holding
    the day's bookings, and plays 06:30-21:30 with a broker outage, a dead reader, a forced
    door, a propped door, power cuts (a gate, a booth's sensor node during a booking), a fire
    alarm, a lockdown, a lost card and a clock out of sync. Prints the report checked
    against the truth.
    """
    ctx.exit(_play(DEFAULT_BUILDING, load_scenario(DEFAULT_SCENARIO), out, speed, run_dir))


@cli.command()
@click.option(
    "--building",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=DEFAULT_BUILDING,
    show_default=True,
    help="The building's description file.",
)
@click.option(
    "--scenario",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    default=DEFAULT_SCENARIO,
    show_default=True,
    help="The day to play: date, hours and faults.",
)
@click.option("--speed", type=float, help="Times real time (default: as fast as it goes).")
@click.option("--staff", type=click.IntRange(1), help="Override the number of staff.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    default=Path("edge-sim-report"),
    show_default=True,
    help="Where to write the report and the plot.",
)
@run_dir_option
@click.pass_context
def run(
    ctx: click.Context,
    building: Path,
    scenario: Path,
    speed: float | None,
    staff: int | None,
    out: Path,
    run_dir: Path,
) -> None:
    """Play a scenario file on a building description.

    \b
    Example:
      edge-sim run --scenario my-day.toml --speed 600
    """
    try:
        played = load_scenario(scenario)
    except EdgeError as error:
        click.echo(f"scenario refused: {error}", err=True)
        ctx.exit(2)
    if staff is not None:
        played = played.model_copy(update={"staff": staff})
    ctx.exit(_play(building, played, out, speed, run_dir))


@cli.command()
@click.argument("door")
@click.option("--direction", type=click.Choice(["in", "out"]), default="in", show_default=True)
@click.option("--staff-no", help="Whose card, e.g. K20100.")
@click.option("--card", help="A card as technology:id, e.g. felica:0114A1B2C3D4E5F6.")
@run_dir_option
@click.pass_context
def tap(
    ctx: click.Context,
    door: str,
    direction: str,
    staff_no: str | None,
    card: str | None,
    run_dir: Path,
) -> None:
    """Hold a card to a door's reader in the running simulation.

    \b
    Example:
      edge-sim tap gate-1f-east --staff-no K20100
    """
    body: dict[str, Any] = {"door": door, "direction": direction}
    if staff_no:
        body["staff_no"] = staff_no
    elif card and ":" in card:
        body["technology"], body["id"] = card.split(":", 1)
    else:
        click.echo("say whose card: --staff-no K20100 or --card felica:0114…", err=True)
        ctx.exit(2)
    ctx.exit(_send(run_dir, "tap", body))


@cli.command()
@click.argument("kind", type=click.Choice(FAULT_KINDS))
@click.option("--minutes", type=float, default=5.0, show_default=True)
@click.option("--door", help="door_forced, door_held_open.")
@click.option("--reader", help="reader_unplugged.")
@click.option("--device", help="power_cut, clock_unsynchronised.")
@click.option(
    "--gate",
    help="lost_card_used, cloned_card, handed_back_card, gate_partition; duress (a gate whose "
    "in-reader has a keypad).",
)
@click.option("--open-s", type=float, help="door_forced: seconds the leaf stays open.")
@run_dir_option
@click.pass_context
def fault(
    ctx: click.Context,
    kind: str,
    minutes: float,
    door: str | None,
    reader: str | None,
    device: str | None,
    gate: str | None,
    open_s: float | None,
    run_dir: Path,
) -> None:
    """Throw a fault at the running simulation, now.

    \b
    Example:
      edge-sim fault door_forced --door stair-b-3f
    """
    body = {"kind": kind, "minutes": minutes, "door": door, "reader": reader}
    body |= {"device": device, "gate": gate, "open_s": open_s}
    ctx.exit(_send(run_dir, "fault", {k: v for k, v in body.items() if v is not None}))


@cli.command(context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
@click.pass_context
def morning(ctx: click.Context) -> None:
    """Print a scripted morning at one gate and one stairway door, decision by decision.

    The decision core alone, on a fake clock, in about a second: every reason code a
    guard meets, a lockdown, a fire and its roll call. Options: --all, --staff N, --seed N.
    """

    ctx.exit(morning_main(list(ctx.args)))


def _send(run_dir: Path, op: str, body: dict[str, Any]) -> int:
    try:
        reply = send(run_dir, op, body)
    except (ControlError, EdgeError, OSError) as error:
        click.echo(f"{op} failed: {error}", err=True)
        return 2
    click.echo(json.dumps(reply, ensure_ascii=False))
    return 0 if reply.get("ok") else 1


def _prepare_run_dir(run_dir: Path) -> None:
    state = run_dir / "sim.json"
    if state.exists():
        pid = json.loads(state.read_text()).get("pid")
        if isinstance(pid, int) and _alive(pid):
            raise click.ClickException(
                f"a simulation (pid {pid}) is running in {run_dir}; stop it, or pass --run-dir"
            )
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _play(
    building_path: Path, scenario: Scenario, out: Path, speed: float | None, run_dir: Path
) -> int:
    from simulator.display import Display  # noqa: PLC0415 -- rich (the sim extra), needed only for the live display

    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    # Stopped by SIGTERM (or Ctrl-C): still stop every agent and the broker on the way out.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    _prepare_run_dir(run_dir)
    building = load_building(building_path)
    display = Display()
    sim = Simulation(building, scenario, run_dir, speed=speed, on_progress=display.update)
    try:
        with display.stage(f"setting up {building.spec.site}: broker, provisioning, agents"):
            sim.setup()
        display.say(
            f"{len(sim.agents)} agents, {len(sim.people)} people, broker on 127.0.0.1:"
            f"{sim.broker.port}; drive it with: edge-sim tap / edge-sim fault"
        )
        with display.playing(sim.length):
            sim.play()
        with display.stage("waiting for the console to hold every event"):
            sim.finish()
        report = build_report(sim)
        files = write_report(report, sim, out)
    except EdgeError as error:
        click.echo(f"the simulation stopped: {error}", err=True)
        return 2
    finally:
        sim.close()
    click.echo(report.text())
    click.echo("\nwrote " + ", ".join(str(f) for f in files))
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> None:
    """Run the `edge-sim` command line."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="edge-sim")


if __name__ == "__main__":
    main()
