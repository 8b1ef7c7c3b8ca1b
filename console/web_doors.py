"""The doors page: each door's live state and what a guard or manager may do to it.

Who may press what is declared per route (`DoorActor`, `LockdownUser`, `FireResetUser`:
FastAPI dependencies on console.users.ACTIONS); a user whose role may not gets the 403 page
and an audit row. Every form carries the session's CSRF token; a lockdown (or lifting it)
takes a confirmation step that names the devices first. A button starts the action
(console.action_jobs) and sends the browser to the page of that action, where each
device's answer appears as it comes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from console.action_jobs import DoorDesk, Jobs, JobsBusy, JobView
from console.actions import (
    DOOR_ACTIONS,
    ActionError,
    Commander,
    Site,
    console_client,
    load_command_key,
    site_slug,
)
from console.claims import Registry
from console.doors import door_states
from console.sessions import Session
from console.users import ACTIONS, audit, may_act
from console.web_context import (
    DoorsPoll,
    DoorsUser,
    Settings,
    acting,
    console_of,
    csrf_ok,
    page,
    refuse_unless,
)

router = APIRouter()
ACTION_LABELS = {  # the label (console.i18n) a result's heading names its action by
    "door.unlock": "door_unlock",
    "door.alarm_reset": "door_reset",
    "door.hold": "door_hold",
    "door.normal": "door_normal",
    "door.fire_reset": "door_fire_reset",
    "lockdown": "lockdown_title",
    "apb.forgive": "apb_forgive",
}
NO_SITE = "the console was started without its site: serve it with --site-dir (or --registry)"
WATCH_ONLY = (
    "this console only watches: serve it with --broker-host, --broker-user, "
    "--broker-password-file, --site and --command-key"
)


def desk(settings: Settings) -> DoorDesk | None:
    """Return the doors and commander the settings allow (None without a site directory)."""
    site_dir = settings.site_dir or (settings.registry.parent if settings.registry else None)
    if site_dir is None:
        return None
    broker = settings.broker
    slug = broker.site if broker else site_slug(site_dir / "registry.db")
    if slug is None:
        return None
    site = Site(Registry(site_dir, slug))
    if broker is None or settings.command_key is None:
        return DoorDesk(site, None)
    client = console_client(
        broker.host, broker.port, broker.username, broker.password_file, broker.ca_file
    )
    clock = settings.clock
    commander = Commander(
        client,
        load_command_key(settings.command_key),
        site=broker.site,
        account=broker.username,
        root=broker.root,
        clock=lambda: datetime.fromtimestamp(clock(), UTC),
        timeout_s=settings.command_timeout_s,
    )
    return DoorDesk(site, Jobs(settings.log_path, commander))


def lifespan(
    doors: DoorDesk | None,
) -> Callable[[FastAPI], contextlib.AbstractAsyncContextManager[None]]:
    """Return the app's lifespan: running actions finish and the broker link closes with it."""

    @contextlib.asynccontextmanager
    async def span(app: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if doors is not None:
                doors.close()

    return span


def _door_actor(request: Request, session: DoorsUser, verb: str) -> Session:
    known = DOOR_ACTIONS.get(verb)
    if known is not None:  # an unknown verb is the handler's 400
        refuse_unless(request, session, known.action)
    return session


DoorActor = Annotated[Session, Depends(_door_actor)]
LockdownUser = Annotated[Session, acting("lockdown")]
FireResetUser = Annotated[Session, acting("door.fire_reset")]


@router.get("/doors", response_class=HTMLResponse)
def doors_page(request: Request, session: DoorsUser, job: str = "") -> Response:
    return _page(request, session, _job(request, session, job))


@router.get("/doors/jobs/{job_id}", response_class=HTMLResponse)
async def job_result(
    request: Request, session: DoorsPoll, job_id: str, seen: str = "0"
) -> Response:
    """Answer once more devices than `seen` have answered, or the action is done (<= 10 s).

    The wait is on the event loop: questions waiting for slow devices hold no thread.
    """
    doors = console_of(request).doors
    job = doors.jobs.find(job_id[:64], session.user) if doors and doors.jobs else None
    if job is None:
        return _bad(request, "no such action of yours (only the newest are kept)", 404)
    count = int(seen) if seen.isdigit() and len(seen) < 6 else 0
    view = await job.next_view(count, 10.0)
    return page(request, "_door_result.html", job=view, **_labels())


@router.get("/doors/rows", response_class=HTMLResponse)
def door_rows(request: Request, session: DoorsPoll) -> Response:
    return page(request, "_door_rows.html", **_rows(request, session))


@router.post("/doors/lockdown", response_class=HTMLResponse)
def lockdown_ask(
    request: Request,
    session: LockdownUser,
    on: str = Form(""),
    zone: Annotated[list[str] | None, Form()] = None,
    door: Annotated[list[str] | None, Form()] = None,
    csrf: str = Form(""),
) -> Response:
    """Name the devices a lockdown (or lifting it) will reach; nothing is sent yet."""
    scope = _lockdown_scope(request, on, zone, door, csrf)
    if isinstance(scope, Response):
        return scope
    doors, zones, named, devices = scope
    return page(
        request,
        "doors_confirm.html",
        on=on,
        zones=zones,
        doors=named,
        devices=devices,
        unreached=doors.site.unreached(),
    )


def _lockdown_scope(
    request: Request, on: str, zone: list[str] | None, door: list[str] | None, csrf: str
) -> Response | tuple[Any, list[str], list[str], list[str]]:
    """Check a lockdown form: (doors, zones, doors named, devices), or the answer refusing it."""
    if not csrf_ok(request, csrf):
        return page(request, "forbidden.html", status=400)
    doors = console_of(request).doors
    if doors is None:
        return _bad(request, NO_SITE, 409)
    if on not in ("on", "off"):
        return _bad(request, "on: use on or off")
    zones, named = (zone or [])[:100], (door or [])[:100]
    try:
        devices = doors.site.lockdown_devices(zones, named)
    except ActionError as error:
        return _bad(request, str(error))
    if not devices:
        return _bad(request, str(doors.site.none_to_send("lockdown")), 409)
    return doors, zones, named, devices


@router.post("/doors/lockdown/confirm", response_class=HTMLResponse)
def lockdown_confirm(
    request: Request,
    session: LockdownUser,
    on: str = Form(""),
    zone: Annotated[list[str] | None, Form()] = None,
    door: Annotated[list[str] | None, Form()] = None,
    csrf: str = Form(""),
) -> Response:
    """Send the lockdown (or lift it) the manager confirmed."""
    scope = _lockdown_scope(request, on, zone, door, csrf)
    if isinstance(scope, Response):
        return scope
    doors, zones, named, devices = scope
    target = " ".join([*(f"zone {z}" for z in zones), *(f"door {d}" for d in named)]) or "site"
    return start_job(
        request,
        session,
        f"lockdown {on}: {target}",
        "lockdown",
        devices,
        "lockdown",
        {"on": on == "on"},
        doors.site.unreached(),
    )


@router.post("/doors/fire-reset", response_class=HTMLResponse)
def fire_reset(
    request: Request, session: FireResetUser, door: str = Form(""), csrf: str = Form("")
) -> Response:
    """Reset the fire release of one door's device, or of every device with a fire input."""
    if not csrf_ok(request, csrf):
        return page(request, "forbidden.html", status=400)
    doors = console_of(request).doors
    if doors is None:
        return _bad(request, NO_SITE, 409)
    try:
        devices = doors.site.fire_devices(door[:100] or None)
    except ActionError as error:
        return _bad(request, str(error))
    unreached = "" if door else doors.site.unreached()
    return start_job(
        request, session, door or "site", "door.fire_reset", devices, "fire-reset", {}, unreached
    )


@router.post("/doors/{door}/{verb}", response_class=HTMLResponse)
def door_action(
    request: Request, session: DoorActor, door: str, verb: str, csrf: str = Form("")
) -> Response:
    """Unlock once, reset alarms, hold open or put back to normal one door."""
    if not csrf_ok(request, csrf):
        return page(request, "forbidden.html", status=400)
    known = DOOR_ACTIONS.get(verb)
    if known is None:
        return _bad(request, f"no door action {verb[:40]!r}; use: {', '.join(DOOR_ACTIONS)}")
    doors = console_of(request).doors
    if doors is None:
        return _bad(request, NO_SITE, 409)
    try:
        device = doors.site.device_of(door)
    except ActionError as error:
        return _bad(request, str(error))
    args = {"door": door, **known.args}
    return start_job(request, session, door, known.action, [device], known.command, args)


def start_job(
    request: Request,
    session: Session,
    target: str,
    action: str,
    devices: list[str],
    command: str,
    args: dict[str, Any],
    unreached: str = "",
) -> Response:
    """Start sending an action and send the browser to its page; or the page saying why not."""
    doors = console_of(request).doors
    if doors is None or doors.jobs is None:
        return _bad(request, WATCH_ONLY, 409)
    if not devices:  # nothing to send: never a job that reads as done
        return _bad(request, str(doors.site.none_to_send(action)), 409)
    try:
        job = doors.jobs.start(
            user=session.user,
            action=action,
            target=target,
            devices=devices,
            name=command,
            args=args,
            unreached=unreached,
        )
    except JobsBusy as error:
        busy = _bad(request, str(error), 429)
        busy.headers["Retry-After"] = "5"
        return busy
    if unreached:
        audit(console_of(request).log, session.user, action, f"{target}: {unreached}")
    # To the page of this action: a reload shows it again and never sends it again.
    return RedirectResponse(f"/doors?job={job.id}", status_code=303)


def _job(request: Request, session: Session, job_id: str) -> JobView | None:
    doors = console_of(request).doors
    if not job_id or doors is None or doors.jobs is None:
        return None
    job = doors.jobs.find(job_id[:64], session.user)
    return None if job is None else job.view()


def _labels() -> dict[str, Any]:
    return {"action_labels": ACTION_LABELS}


def _rows(request: Request, session: Session) -> dict[str, Any]:
    doors = console_of(request).doors
    states = door_states(console_of(request).log, doors.site) if doors else []
    return {
        "states": states,
        "may": {name: may_act(session.role, name) for name in ACTIONS},
        "acting": doors is not None and doors.jobs is not None,
        "fire_doors": {d for c in doors.site.devices() for d in c.fire_inputs} if doors else set(),
    }


def _page(request: Request, session: Session, job: JobView | None = None) -> Response:
    doors = console_of(request).doors
    zones = sorted({z for c in doors.site.devices() for _, z in c.doors.values()}) if doors else []
    return page(
        request,
        "doors.html",
        job=job,
        **_labels(),
        zones=zones,
        watching=doors is None,
        **_rows(request, session),
    )


def _bad(request: Request, problem: str, status: int = 400) -> Response:
    return page(request, "bad_request.html", status=status, problem=problem)
