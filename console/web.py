"""The security office's web page: alarms live, log search, roll call, occupancy, devices.

Server-rendered pages (FastAPI + Jinja2), live updates over Server-Sent Events, no
front-end build. Sessions are signed cookies (HttpOnly, SameSite=Strict, Secure unless
told it runs on loopback), every form carries a CSRF token, roles decide what each user
may open (console.users.PAGES), and every export and alarm acknowledgement is audited.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from console import alarms as alarm_list
from console.i18n import LANGUAGES, code, labels
from console.log import CentralLog
from console.people import Directory
from console.rollcall import LINE_ZONE, inside
from console.search import FIELDS, Query, export_rows, search
from console.users import audit, audit_trail, check_password, may
from edge.core.clock import utc_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
HOME = {"guard": "/alarms", "manager": "/alarms", "operator": "/devices"}


@dataclass(frozen=True)
class Settings:
    """Where the console's files are, and how it is served."""

    log_path: Path
    registry: Path | None
    secret_file: Path
    secure_cookies: bool = True  # False only for http on loopback (tests, a laptop)
    line_zone: str = LINE_ZONE
    poll_s: float = 0.2  # how often the live page looks for new alarms


def session_secret(path: Path) -> str:
    """Read the cookie-signing secret, making one (0600) the first time."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def create_app(settings: Settings) -> FastAPI:
    """Build the web application."""
    app = FastAPI(title="edge-console", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_middleware(
        SessionMiddleware,
        secret_key=session_secret(settings.secret_file),
        session_cookie="edge_console",
        same_site="strict",
        https_only=settings.secure_cookies,
        max_age=12 * 3600,
    )
    people = Directory(settings.registry)
    templates = Jinja2Templates(directory=str(TEMPLATES))
    zone = ZoneInfo(people.timezone)
    # Times are stored in UTC; guards read them in the site's local time.
    templates.env.filters["local"] = lambda ts: _local(ts, zone)
    app.state.console = Console(settings, CentralLog(settings.log_path), people, templates)
    app.include_router(router)
    return app


class LoginThrottle:
    """Refuse logins for a while after repeated failures (per user name and address).

    Five wrong passwords within 15 minutes lock that name from that address for 15
    minutes: guessing is slowed to a crawl, and a stranger cannot lock a guard out from
    elsewhere.
    """

    LIMIT = 5
    WINDOW_S = 15 * 60

    def __init__(self) -> None:
        self._failures: dict[tuple[str, str], list[float]] = defaultdict(list)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<LoginThrottle watching={len(self._failures)}>"

    def locked(self, user: str, address: str) -> bool:
        with self._lock:
            recent = self._recent((user.lower(), address))
            return len(recent) >= self.LIMIT

    def failed(self, user: str, address: str) -> None:
        with self._lock:
            self._recent((user.lower(), address)).append(time.monotonic())

    def succeeded(self, user: str, address: str) -> None:
        with self._lock:
            self._failures.pop((user.lower(), address), None)

    def _recent(self, key: tuple[str, str]) -> list[float]:
        cutoff = time.monotonic() - self.WINDOW_S
        recent = [t for t in self._failures[key] if t > cutoff]
        self._failures[key] = recent
        return recent


@dataclass(frozen=True)
class Console:
    """What every request needs: the settings, the log, the directory, the templates."""

    settings: Settings
    log: CentralLog
    people: Directory
    templates: Jinja2Templates
    throttle: LoginThrottle = field(default_factory=LoginThrottle)


router = APIRouter()
NAV = ("alarms", "log", "muster", "occupancy", "devices", "audit")


def _console(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page in the user's language with the navigation their role allows."""
    language = request.cookies.get("lang", "ja")
    language = language if language in LANGUAGES else "ja"
    role = request.session.get("role")
    return _console(request).templates.TemplateResponse(
        request,
        name,
        {
            "t": labels(language),
            "code": lambda name: code(name, language),
            "lang": language,
            "user": request.session.get("user"),
            "role": role,
            "csrf": _csrf(request),
            "nav": [p for p in NAV if may(role, p)],
            "here": name.removesuffix(".html"),
            **context,
        },
        status_code=status,
    )


def gate(request: Request, name: str) -> Response | None:
    """Return a redirect to log in, or a 403 page, if the user may not see `name`."""
    role = request.session.get("role")
    if role is None:
        return RedirectResponse("/login", status_code=303)
    if not may(role, name):
        return page(request, "forbidden.html", status=403)
    return None


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    role = request.session.get("role")
    return RedirectResponse(HOME.get(role or "", "/login"), status_code=303)


@router.get("/lang/{language}")
def set_language(language: str, request: Request) -> Response:
    back = request.headers.get("referer") or "/"
    response = RedirectResponse(back if back.startswith(("/", "http")) else "/", 303)
    response.set_cookie("lang", language if language in LANGUAGES else "ja", samesite="strict")
    return response


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    return page(request, "login.html")


@router.post("/login", response_class=HTMLResponse)
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    console = _console(request)
    log, throttle = console.log, console.throttle
    address = request.client.host if request.client else "-"
    if not _csrf_ok(request, csrf):
        return page(request, "login.html", status=400, failed=True)
    if throttle.locked(username, address):
        audit(log, username[:32] or "-", "login refused: too many failures", address)
        return page(request, "login.html", status=429, locked=True)
    role = check_password(log, username, password)
    if role is None:
        throttle.failed(username, address)
        audit(log, username[:32] or "-", "login failed", address)
        return page(request, "login.html", status=401, failed=True)
    throttle.succeeded(username, address)
    request.session.clear()
    request.session.update({"user": username, "role": role, "csrf": secrets.token_urlsafe(24)})
    audit(log, username, "login")
    return RedirectResponse(HOME[role], status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    if _csrf_ok(request, csrf) and request.session.get("user"):
        audit(_console(request).log, request.session["user"], "logout")
        request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/alarms", response_class=HTMLResponse)
def alarms_page(request: Request) -> Response:
    log = _console(request).log
    return gate(request, "alarms") or page(request, "alarms.html", alarms=alarm_list.active(log))


@router.get("/alarms/rows", response_class=HTMLResponse)
def alarm_rows(request: Request) -> Response:
    log = _console(request).log
    return gate(request, "alarms") or page(
        request, "_alarm_rows.html", alarms=alarm_list.active(log)
    )


@router.get("/alarms/stream")
async def alarm_stream(request: Request) -> Response:
    """Server-Sent Events: one `alarms` event whenever the alarms change."""
    denied = gate(request, "alarms")
    if denied is not None:
        return denied
    console = _console(request)
    poll_s = console.settings.poll_s

    async def changes() -> AsyncIterator[str]:
        last = None
        quiet = 0.0
        while not await request.is_disconnected():
            marker = await asyncio.to_thread(_alarm_marker, console.log)
            if marker != last:
                last, quiet = marker, 0.0
                yield f"event: alarms\ndata: {marker}\n\n"
            quiet += poll_s
            if quiet >= 15:  # keep proxies from closing an idle stream
                quiet = 0.0
                yield ": still here\n\n"
            await asyncio.sleep(poll_s)

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(changes(), media_type="text/event-stream", headers=headers)


@router.post("/alarms/ack")
def acknowledge(request: Request, key: str = Form(""), csrf: str = Form("")) -> Response:
    denied = gate(request, "alarms")
    if denied is not None:
        return denied
    if not _csrf_ok(request, csrf):
        return page(request, "forbidden.html", status=400)
    alarm_list.acknowledge(_console(request).log, key, request.session["user"])
    return RedirectResponse("/alarms", status_code=303)


@router.get("/log", response_class=HTMLResponse)
def log_page(request: Request) -> Response:
    denied = gate(request, "log")
    if denied is not None:
        return denied
    console = _console(request)
    query = _query(request)
    result = search(console.log, query, console.people)
    rows = [(e, console.people.person(e.body.get("card_ref"))) for e in result.entries]
    return page(
        request,
        "log.html",
        q=query,
        form={f: request.query_params.get(f, "") for f in ("since", "until")},
        rows=rows,
        next_before=result.next_before,
        params=_params(request, drop="before"),
        may_export=may(request.session.get("role"), "export"),
    )


@router.get("/log/export.csv")
def export(request: Request) -> Response:
    denied = gate(request, "export")
    if denied is not None:
        return denied
    console = _console(request)
    query = _query(request)
    audit(console.log, request.session["user"], "export", str(_params(request)))

    def body() -> Iterator[str]:
        yield "\ufeff"  # Excel reads UTF-8 with a BOM
        for row in export_rows(console.log, query, console.people):
            out = io.StringIO()
            csv.writer(out, lineterminator="\r\n").writerow(row)
            yield out.getvalue()

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    headers = {"Content-Disposition": f'attachment; filename="access-log-{stamp}.csv"'}
    return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/muster", response_class=HTMLResponse)
def muster(request: Request) -> Response:
    denied = gate(request, "muster")
    if denied is not None:
        return denied
    console = _console(request)
    console.people.reload()
    groups: dict[tuple[str, str], list[tuple[Any, Any]]] = defaultdict(list)
    unknown = []
    present = inside(console.log, console.settings.line_zone)
    for p in present:
        person = console.people.person(p.card_ref)
        if person is None:
            unknown.append(p)
        else:
            groups[(person.floor, person.department)].append((person, p))
    return page(
        request,
        "muster.html",
        groups=sorted(groups.items(), key=lambda kv: kv[0]),
        unknown=unknown,
        total=len(present),
        generated=_local_now(),
    )


@router.get("/occupancy", response_class=HTMLResponse)
def occupancy(request: Request) -> Response:
    denied = gate(request, "occupancy")
    if denied is not None:
        return denied
    floors: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for zone, row in sorted(_console(request).log.occupancy().items()):
        floors[_floor_of(zone)].append(row)
    return page(request, "occupancy.html", floors=sorted(floors.items()))


@router.get("/devices", response_class=HTMLResponse)
def devices(request: Request) -> Response:
    denied = gate(request, "devices")
    if denied is not None:
        return denied
    log = _console(request).log
    gaps = log.gaps()
    rows = []
    for device, row in sorted(log.devices().items()):
        status = json.loads(row["status"]) if row.get("status") else {}
        rows.append((device, row, status, gaps.get(device, [])))
    return page(request, "devices.html", rows=rows)


@router.get("/audit", response_class=HTMLResponse)
def audit_page(request: Request) -> Response:
    log = _console(request).log
    return gate(request, "audit") or page(request, "audit.html", rows=audit_trail(log))


def _alarm_marker(log: CentralLog) -> str:
    """A cheap value that changes whenever the alarm list may have (three indexed reads)."""
    acks = log.db.execute("SELECT count(*) FROM alarm_acks").fetchone()[0]
    holes = log.db.execute(
        "SELECT group_concat(device || ':' || contiguous || ':' || max_seq) FROM devices "
        "WHERE contiguous < max_seq"
    ).fetchone()[0]
    return f"{alarm_list.latest_alarm_row(log)}-{acks}-{holes}"


def _csrf(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return str(token)


def _csrf_ok(request: Request, token: str) -> bool:
    expected = request.session.get("csrf")
    return bool(expected) and secrets.compare_digest(str(expected), token)


def _query(request: Request) -> Query:
    """The search form's query; its times are the site's local time, the log's are UTC."""
    before = request.query_params.get("before")
    fields = dict(request.query_params)
    zone = ZoneInfo(_console(request).people.timezone)
    for name in ("since", "until"):
        fields[name] = _to_utc(fields.get(name, ""), zone)
    return Query.of(fields, int(before) if before and before.isdigit() else None)


def _to_utc(text: str, zone: ZoneInfo) -> str:
    """Turn a local time from the form (2026-12-01T08:00) into the log's UTC text."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return text  # left as typed: it then matches as text, and the page shows it back
    return utc_text(moment if moment.tzinfo else moment.replace(tzinfo=zone))


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
        moment = datetime.fromisoformat(str(ts))
    except ValueError:
        return str(ts)
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def _local_now() -> str:
    return datetime.now().astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")
