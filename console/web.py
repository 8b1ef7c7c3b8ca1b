"""The security office's web page: alarms live, log search, roll call, occupancy, devices.

Server-rendered pages (FastAPI + Jinja2), live updates over Server-Sent Events, no
front-end build. Sessions live in the log database (console.sessions); the cookie, signed,
HttpOnly, SameSite=Strict and Secure unless told it runs on loopback, carries only the
session's random id. Every form carries a CSRF token, roles decide what each user may open
(console.users.PAGES, declared per route in console.web_context), and every export and
alarm acknowledgement is audited. A malformed query value is answered 400 naming the field.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import secrets
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import (
    HTMLResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.background import BackgroundTask
from starlette.middleware.sessions import SessionMiddleware

from console import alarms as alarm_list
from console import headcount, web_account, web_cards, web_doors, web_forgive, web_sites
from console.admission import LoginThrottle, StreamSlots
from console.forgive import ACTION as FORGIVE
from console.headcount import ZoneCount
from console.log import CentralLog, open_log
from console.people import Directory
from console.rollcall import Present, by_site, inside
from console.rooms_view import rooms_now
from console.search import FIELDS, Query, QueryError, export_rows, parse_query, search
from console.sessions import SessionStore
from console.site_view import SiteScope, device_health, status_of
from console.users import audit, audit_trail, may, may_act
from console.web_context import (
    AlarmsUser,
    AuditUser,
    Console,
    DevicesUser,
    ExportUser,
    Forbidden,
    LoginNeeded,
    LogUser,
    MusterUser,
    OccupancyUser,
    Settings,
    console_of,
    csrf_ok,
    page,
)
from console.web_outage import LogOutage
from rooms import floorplan

__all__ = ["Settings", "create_app"]
TEMPLATES = Path(__file__).resolve().parent / "templates"


def session_secret(path: Path) -> str:
    """Read the cookie-signing secret, making one (0600) the first time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # 0600 from the first byte, whatever the umask of whoever calls this.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def create_app(settings: Settings) -> FastAPI:
    """Build the web application."""
    doors = web_doors.desk(settings)
    log = open_log(settings.log_path)
    app = FastAPI(
        title="edge-console",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=_lifespan(web_doors.lifespan(doors), log),
    )
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings.secret_file),
        session_cookie="edge_console",
        same_site="strict",
        https_only=settings.secure_cookies,
        max_age=int(settings.lifetime_s),
    )
    people = Directory(settings.registry)
    templates = Jinja2Templates(directory=str(TEMPLATES))
    zone = ZoneInfo(people.timezone)
    # Times are stored in UTC; guards read them in the site's local time.
    templates.env.filters["local"] = lambda ts: _local(ts, zone)
    templates.env.filters["floor_label"] = floorplan.floor_label
    app.state.console = Console(
        settings,
        log,
        people,
        templates,
        SessionStore(log, settings.clock, settings.idle_s, settings.lifetime_s),
        LoginThrottle(settings.clock, settings.login_rate_per_s, settings.login_burst),
        StreamSlots(settings.streams_per_session, settings.streams_total),
        doors=doors,
    )
    app.add_middleware(LogOutage, log=log)  # outermost: the session lookup may fail too
    app.add_exception_handler(LoginNeeded, _to_login)
    app.add_exception_handler(Forbidden, _forbidden)
    app.add_exception_handler(QueryError, _bad_query)
    app.include_router(web_account.router)
    app.include_router(router)
    app.include_router(web_doors.router)
    app.include_router(web_forgive.router)
    app.include_router(web_cards.router)
    app.include_router(web_sites.router)
    return app


def _lifespan(
    doors: Callable[[FastAPI], AbstractAsyncContextManager[None]], log: CentralLog
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Return the app's lifespan: the doors page's, then the log's connections close."""

    @asynccontextmanager
    async def span(app: FastAPI) -> AsyncIterator[None]:
        try:
            async with doors(app):
                yield
        finally:
            log.close()

    return span


async def _to_login(request: Request, _: Exception) -> Response:
    return RedirectResponse("/login", status_code=303)


async def _forbidden(request: Request, _: Exception) -> Response:
    return page(request, "forbidden.html", status=403)


async def _bad_query(request: Request, error: Exception) -> Response:
    return page(request, "bad_request.html", status=400, problem=str(error))


router = APIRouter()


@router.get("/alarms", response_class=HTMLResponse)
def alarms_page(request: Request, session: AlarmsUser) -> Response:
    scope = web_sites.scope_for(request)
    sites = web_sites.site_context(request, scope)
    cut_off = web_sites.cut_off(request, scope)
    return page(request, "alarms.html", alarms=_alarms(request, scope), **sites, **cut_off)


@router.get("/alarms/rows", response_class=HTMLResponse)
def alarm_rows(request: Request, session: AlarmsUser) -> Response:
    scope = web_sites.scope_for(request)
    sites = web_sites.site_context(request, scope)
    cut_off = web_sites.cut_off(request, scope)
    return page(request, "_alarm_rows.html", alarms=_alarms(request, scope), **sites, **cut_off)


def _alarms(request: Request, scope: SiteScope) -> list[alarm_list.Alarm]:
    """The active alarms, cards named by their holders and zones by their names."""
    console = console_of(request)
    console.people.refresh()
    return alarm_list.active(console.log, console.people, zone_names(console), scope)


@router.get("/alarms/stream")
async def alarm_stream(request: Request, session: AlarmsUser) -> Response:
    """Server-Sent Events: one `alarms` event whenever the alarms change.

    The stream looks its session up again at every poll and sends `ended` (then closes)
    once the session is gone: logged out, timed out, the user removed, disabled or moved
    to a role that may not see alarms.
    """
    console = console_of(request)
    refused = console.streams.take(session.key)
    if refused is not None:
        text = f"{refused}; close another alarm page and reload this one"
        return PlainTextResponse(text, status_code=429, headers={"Retry-After": "30"})
    token = request.session.get("sid")
    poll_s = console.settings.poll_s
    released = False

    def release() -> None:
        nonlocal released
        if not released:
            released = True
            console.streams.release(session.key)

    def look() -> tuple[bool, str]:
        now = console.sessions.find(token, touch=False)
        return now is not None and may(now.role, "alarms"), _alarm_marker(console.log)

    async def changes() -> AsyncIterator[str]:
        try:
            last = None
            quiet = 0.0
            while not await request.is_disconnected():
                live, marker = await asyncio.to_thread(look)
                if not live:
                    yield "event: ended\ndata: session\n\n"
                    return
                if marker != last:
                    last, quiet = marker, 0.0
                    yield f"event: alarms\ndata: {marker}\n\n"
                quiet += poll_s
                if quiet >= 15:  # keep proxies from closing an idle stream
                    quiet = 0.0
                    yield ": still here\n\n"
                await asyncio.sleep(poll_s)
        finally:
            release()

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        changes(),
        media_type="text/event-stream",
        headers=headers,
        background=BackgroundTask(release),  # also when the stream never started
    )


@router.post("/alarms/ack")
def acknowledge(
    request: Request, session: AlarmsUser, key: str = Form(""), csrf: str = Form("")
) -> Response:
    if not csrf_ok(request, csrf):
        return page(request, "forbidden.html", status=400)
    alarm_list.acknowledge(console_of(request).log, key[:200], session.user)
    return RedirectResponse("/alarms", status_code=303)


@router.get("/log", response_class=HTMLResponse)
def log_page(request: Request, session: LogUser) -> Response:
    console = console_of(request)
    scope = web_sites.scope_for(request)
    query = _query(request)
    result = search(console.log, query, console.people, scope.home)
    rows = [(e, console.people.person(e.body.get("card_ref"), e.ts)) for e in result.entries]
    return page(
        request,
        "log.html",
        **web_sites.site_context(request, scope),
        q=query,
        form={f: request.query_params.get(f, "") for f in ("since", "until")},
        rows=rows,
        next_before=result.next_before,
        params=_params(request, drop="before"),
        may_export=may(session.role, "export"),
    )


@router.get("/log/export.csv")
def export(request: Request, session: ExportUser) -> Response:
    console = console_of(request)
    home = web_sites.scope_for(request).home
    query = _query(request)
    audit(console.log, session.user, "export", str(_params(request)))

    def body() -> Iterator[str]:
        yield "\ufeff"  # Excel reads UTF-8 with a BOM
        for row in export_rows(console.log, query, console.people, home):
            out = io.StringIO()
            csv.writer(out, lineterminator="\r\n").writerow(row)
            yield out.getvalue()

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    headers = {"Content-Disposition": f'attachment; filename="access-log-{stamp}.csv"'}
    return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/muster", response_class=HTMLResponse)
def muster(request: Request, session: MusterUser) -> Response:
    """Who is inside each site's line: one site (`site`), or every site, each on its own."""
    console = console_of(request)
    console.people.reload()
    scope = web_sites.scope_for(request)
    present = inside(console.log, console.settings.line_zone, scope=scope)
    return page(
        request,
        "muster.html",
        **web_sites.site_context(request, scope),
        roll=[_roll(console, site, people) for site, people in by_site(present).items()],
        total=len(present),
        generated=_local_now(),
        may_forgive=may_act(session.role, FORGIVE) and console.doors is not None,
    )


def _roll(console: Console, site: str, present: list[Present]) -> dict[str, Any]:
    """One site's roll call: by floor and department, unregistered cards apart."""
    groups: dict[tuple[str, str], list[tuple[Any, Any]]] = defaultdict(list)
    unknown = []
    for p in present:
        person = console.people.person(p.card_ref, p.ts)
        if person is None:
            unknown.append(p)
        else:
            groups[(person.floor, person.department)].append((person, p))
    return {
        "site": site,
        "groups": sorted(groups.items(), key=lambda kv: kv[0]),
        "unknown": unknown,
        "total": len(present),
    }


@router.get("/occupancy", response_class=HTMLResponse)
def occupancy(request: Request, session: OccupancyUser) -> Response:
    console = console_of(request)
    scope = web_sites.scope_for(request)
    sites = web_sites.site_context(request, scope)
    counts = []  # zones are each site's own: counted site by site (one site: all rows)
    several = sites["sites"] if len(sites["sites"]) > 1 else [scope.site]
    for site in [scope.site] if scope.site else several:
        floors: dict[str, list[ZoneCount]] = defaultdict(list)
        zones = headcount.occupancy(console.log, SiteScope(site, scope.home))
        for zone, counted in zones.items():
            floors[_floor_of(zone)].append(counted)
        counts.append((site, sorted(floors.items())))
    # The building view drawn is one site's: the one chosen, the only one, else the home's.
    shown = scope.site or (several[0] if len(several) == 1 and several[0] else scope.home)
    rooms = rooms_now(console.log, shown, scope.home)
    site_time = ZoneInfo(console.people.timezone)
    plans = []
    if rooms.view is not None:
        # rooms.floorplan escapes every text it draws; its SVG goes in as markup.
        plans = [
            (f, Markup(floorplan.render(rooms.view, f, site_time)))  # noqa: S704
            for f in rooms.view.floors()
        ]
    return page(
        request,
        "occupancy.html",
        **sites,
        counts=counts,
        names=zone_names(console),
        rooms=rooms,
        plans=plans,
        legend=Markup(floorplan.legend()),  # noqa: S704
    )


@router.get("/devices", response_class=HTMLResponse)
def devices(request: Request, session: DevicesUser) -> Response:
    """Every device's health, grouped by site (or one site's)."""
    console = console_of(request)
    scope = web_sites.scope_for(request)
    grouped: dict[str, list[tuple[str, dict[str, Any], dict[str, Any], list[int]]]] = {}
    for site, device, row, gaps in device_health(console.log, scope):
        status = status_of(row.get("status"))
        grouped.setdefault(site, []).append((device, row, status, gaps))
    return page(
        request,
        "devices.html",
        **web_sites.site_context(request, scope),
        grouped=sorted(grouped.items()),
    )


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: AuditUser) -> Response:
    return page(request, "audit.html", rows=audit_trail(console_of(request).log))


def zone_names(console: Console) -> dict[str, str]:
    """Return {zone: name} from the site's device configurations ({} without a site)."""
    return console.doors.site.registry.zone_names() if console.doors is not None else {}


def _alarm_marker(log: CentralLog) -> str:
    """A cheap value that changes whenever the alarm list may have (three indexed reads)."""
    acks = log.db.execute("SELECT count(*) FROM alarm_acks").fetchone()[0]
    holes = ",".join(
        f"{device}:{contiguous}:{max_seq}"
        for device, contiguous, max_seq in log.db.execute(
            "SELECT device, contiguous, max_seq FROM devices WHERE contiguous < max_seq "
            "ORDER BY device"
        )
    )
    links = ",".join(
        f"{site}:{connected}:{stored}"
        for site, connected, stored in log.db.execute(
            "SELECT site, connected, stored FROM sites ORDER BY site"
        )
    )
    return f"{alarm_list.latest_alarm_row(log)}-{acks}-{holes}-{links}"


def _query(request: Request) -> Query:
    """The search form's query; its times are the site's local time, the log's are UTC."""
    zone = ZoneInfo(console_of(request).people.timezone)
    return parse_query(request.query_params, request.query_params.get("before"), zone)


def _params(request: Request, drop: str = "") -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if v and k != drop and k in FIELDS}


def _floor_of(zone: str) -> str:
    for part in zone.split("-"):
        if part.endswith("f") and part[:-1].isdigit():
            return f"{part[:-1]}F"
    if zone.startswith("floor-"):
        return f"{zone.removeprefix('floor-')}F"
    return "1F" if zone in ("lobby",) or zone.startswith("consult") else "-"


def _local(ts: str, zone: ZoneInfo) -> str:
    try:
        return datetime.fromisoformat(str(ts)).astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")
    except (ValueError, OverflowError):  # a device's ts is shown as sent when it has no time
        return str(ts)


def _local_now() -> str:
    return datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
