"""`edge-rooms`: run the rooms service, check its configuration, list releases and status.

Exit codes: 0 done, 1 the service could not run (broker, journal), 2 a bad file or option.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import sqlite3
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from pathlib import Path
from types import FrameType
from typing import NoReturn
from zoneinfo import ZoneInfo

import click

from edge.errors import EdgeError
from edge.system import SystemClock
from edge.text import terminal
from firmware_config.errors import ConfigError
from rooms.config import ServiceConfig, load_service_config
from rooms.journal import Journal
from rooms.view import BuildingView

log = logging.getLogger(__name__)

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    required=True,
    help="The rooms service's TOML file (see docs/rooms.md).",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def cli() -> None:
    """The rooms service: bookings checked in from presence, no-shows released, a floor view."""


def _load(ctx: click.Context, path: Path) -> ServiceConfig:
    try:
        return load_service_config(path)
    except ConfigError as error:
        _refuse(ctx, f"{terminal(path)} is not valid:\n{error}", code=2)


def _refuse(ctx: click.Context, message: str, code: int) -> NoReturn:
    click.echo(terminal(message) if "\n" not in message else message, err=True)
    ctx.exit(code)


@cli.command("check")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False))
@click.pass_context
def check(ctx: click.Context, path: Path) -> None:
    """Validate a configuration file: every mistake with its key and fix (exit 2 if any)."""
    config = _load(ctx, path)
    bookable = sum(1 for r in config.rooms if r.calendar)
    click.echo(
        f"{terminal(path)}: site {config.site}, {len(config.rooms)} rooms ({bookable} bookable), "
        f"{len(config.areas)} areas, {len(config.calendars)} calendars, "
        f"{len(config.presence)} UC servers: valid"
    )


@cli.command("run")
@config_option
@click.option("--no-web", is_flag=True, help="Do not serve the floor view ([web] host and port).")
@click.pass_context
def run(ctx: click.Context, config_path: Path, no_web: bool) -> None:
    """Run the service until SIGTERM or Ctrl-C: step on each message, or every second."""
    from rooms.mqtt import RoomsLinkError  # noqa: PLC0415 -- paho only when the service runs
    from rooms.service import ServiceError, build_service  # noqa: PLC0415 -- as above

    config = _load(ctx, config_path)
    set_up_logging()
    listening = None if no_web else _listen(ctx, config)
    try:
        service = build_service(config, SystemClock())
    except (ServiceError, EdgeError, sqlite3.Error) as error:
        if listening is not None:
            listening.close()
        _refuse(ctx, f"edge-rooms run: {error}", code=1)
    stop = threading.Event()

    def stopping(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, stopping)
    signal.signal(signal.SIGINT, stopping)
    try:
        service.start()
        if listening is not None:
            _serve(config, listening, service.view, stop)
            listening = None  # the server's now
        service.run(stop)
    except RoomsLinkError as error:
        _refuse(ctx, f"edge-rooms run: {error}", code=1)
    finally:
        service.close()
        if listening is not None:
            listening.close()


def set_up_logging() -> None:
    """Log at INFO, but not the HTTP clients' request lines: their URLs carry UC user ids."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _listen(ctx: click.Context, config: ServiceConfig) -> socket.socket:
    """Bind the floor view's port now, so a port in use stops the service with a clear word."""
    host, port = config.web.host, config.web.port
    try:
        info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        # With getaddrinfo's protocol (TCP): asyncio sets TCP_NODELAY only on sockets that say
        # so, and without it each keep-alive answer waits for the client's delayed ACK (40 ms).
        listening = socket.socket(info[0], info[1], info[2])
    except OSError as error:
        _refuse(ctx, f"edge-rooms run: [web] host {host}: {error}; fix [web] host", code=1)
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(info[4])
        listening.listen(128)
    except OSError as error:
        listening.close()
        _refuse(
            ctx,
            f"edge-rooms run: cannot serve the floor view on {host}:{port} ({error.strerror}); "
            "set another [web] port, stop what uses it, or run with --no-web",
            code=1,
        )
    return listening


def _serve(
    config: ServiceConfig,
    listening: socket.socket,
    view: Callable[[], BuildingView],
    stop: threading.Event,
) -> None:
    """Serve the floor view on a thread until `stop`, on the socket already bound."""
    import uvicorn  # noqa: PLC0415 -- needed only to serve

    from rooms.web import create_app  # noqa: PLC0415 -- fastapi, needed only to serve

    app = create_app(view, ZoneInfo(config.timezone))
    server = uvicorn.Server(
        uvicorn.Config(app, host=config.web.host, port=config.web.port, log_level="warning")
    )
    # Off the main thread uvicorn leaves the signals to us; `stop` ends it.

    def serve_until_stopped() -> None:
        stop.wait()
        server.should_exit = True

    serve = partial(server.run, sockets=[listening])
    threading.Thread(target=serve, name="floor-view", daemon=True).start()
    threading.Thread(target=serve_until_stopped, name="floor-view-stop", daemon=True).start()


def _journal(ctx: click.Context, config: ServiceConfig) -> Journal:
    path = config.state_path
    if not path.exists():
        _refuse(ctx, f"no journal at {path}: edge-rooms run has not run with this file", code=1)
    try:
        return Journal(path, read_only=True)
    except sqlite3.Error as error:
        _refuse(ctx, f"cannot read the journal {path}: {error}", code=1)


def _since(ctx: click.Context, text: str | None, zone: ZoneInfo) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        _refuse(
            ctx, f"--since {text!r}: not a date or time; use e.g. 2026-12-01 or 2026-12-01T09:00", 2
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=zone)


@cli.command("releases")
@config_option
@click.option("--since", help="Only releases from this date or local time (ISO 8601).")
@click.pass_context
def releases(ctx: click.Context, config_path: Path, since: str | None) -> None:
    """List the bookings released as no-shows, with the evidence (no personal data)."""
    config = _load(ctx, config_path)
    zone = ZoneInfo(config.timezone)
    journal = _journal(ctx, config)
    try:
        entries = journal.entries(kind="released", since=_since(ctx, since, zone))
    finally:
        journal.close()
    for entry in entries:
        local = entry.at.astimezone(zone)
        click.echo(
            terminal(
                f"{local:%Y-%m-%d %H:%M} {entry.room} booking "
                f"{entry.start.astimezone(zone):%H:%M}-{entry.end.astimezone(zone):%H:%M}: "
                f"{entry.reason} [{entry.outcome}]"
            )
        )
        for name, value in sorted(entry.evidence.items()):
            click.echo(terminal(f"    {name}: {value}"))
    click.echo(f"{len(entries)} released")


@cli.command("status")
@config_option
@click.pass_context
def status(ctx: click.Context, config_path: Path) -> None:
    """Show each room now, as the service last published it."""
    config = _load(ctx, config_path)
    zone = ZoneInfo(config.timezone)
    journal = _journal(ctx, config)
    try:
        text = journal.last_view()
    finally:
        journal.close()
    if text is None:
        _refuse(ctx, "no view yet: edge-rooms run has not stepped with this file", code=1)
    view = json.loads(text)
    at = datetime.fromisoformat(view["at"]).astimezone(zone)
    click.echo(terminal(f"{view['name']} at {at:%Y-%m-%d %H:%M}"))
    for room in view["rooms"]:
        occupied = {True: "occupied", False: "vacant", None: "sensor unknown"}[room["occupied"]]
        reason = f" ({room['reason']})" if room["reason"] else ""
        click.echo(terminal(f"  {room['zone']:<20} {room['status']:<16} {occupied}{reason}"))
    for area in view["areas"]:
        click.echo(
            terminal(
                f"  {area['id']:<20} {area['occupied']}/{area['zones']} islands occupied"
                + (f", {area['unknown']} unknown" if area["unknown"] else "")
            )
        )


def main(argv: Sequence[str] | None = None) -> None:
    """Run the `edge-rooms` command line; its files are private (umask 077)."""
    previous = os.umask(0o077)
    try:
        cli.main(args=list(argv) if argv is not None else None, prog_name="edge-rooms")
    finally:
        os.umask(previous)


if __name__ == "__main__":
    main()
