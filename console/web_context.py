"""What every page of the console needs: settings, the session of this request, rendering.

A route declares who may use it with one of the `Annotated` session types below (a FastAPI
dependency); the dependency looks the session up on the server for every request, so what
a user may do is decided by their role and state now, never by what a cookie remembers.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from console.action_jobs import DoorDesk
from console.admission import Clock, LoginThrottle, StreamSlots
from console.i18n import LANGUAGES, code, labels
from console.log import CentralLog
from console.people import Directory
from console.rollcall import LINE_ZONE
from console.sessions import Session, SessionStore
from console.users import ACTIONS, audit, may, may_act

NAV = (
    "alarms",
    "doors",
    "cards",
    "passes",
    "log",
    "muster",
    "occupancy",
    "devices",
    "sites",
    "audit",
)


@dataclass(frozen=True)
class BrokerAccess:
    """The broker the console acts through (commands, publishing), and its account."""

    host: str
    port: int
    site: str
    username: str
    password_file: Path | None = None
    root: str = "edge"
    ca_file: Path | None = None


@dataclass(frozen=True)
class Settings:
    """Where the console's files are, and how it is served."""

    log_path: Path | str  # the log's file (SQLite) or its postgresql:// URL
    registry: Path | None
    secret_file: Path
    secure_cookies: bool = True  # False only for http on loopback (tests, a laptop)
    line_zone: str = LINE_ZONE
    poll_s: float = 0.2  # how often the live page looks for new alarms (and its session)
    clock: Clock = time.time  # sessions and login throttling judge time by this
    idle_s: float = 30 * 60  # a session ends this long after its last request
    lifetime_s: float = 12 * 3600  # and this long after its login, whatever happens
    streams_per_session: int = 3  # live alarm streams one session may hold open
    streams_total: int = 64  # and all sessions together
    login_rate_per_s: float = 5.0  # login attempts a second, all names together
    login_burst: int = 20
    site_dir: Path | None = None  # edge-provision's site directory: cards and passes change here
    broker: BrokerAccess | None = None  # without it the console only watches
    command_key: Path | None = None  # the console's Ed25519 command key (0600, edge-provision)
    command_timeout_s: float = 5.0  # how long each device has to answer a door command


@dataclass(frozen=True)
class Console:
    """What every request needs: the settings, the log, the directory, the templates."""

    settings: Settings
    log: CentralLog
    people: Directory
    templates: Jinja2Templates
    sessions: SessionStore
    throttle: LoginThrottle
    streams: StreamSlots
    doors: DoorDesk | None = None  # the doors page's site and commander (None: no site)


class LoginNeeded(Exception):  # a control-flow signal, answered by a redirect
    """No live session: the answer is the login page."""


class Forbidden(Exception):  # answered by the 403 page
    """A live session whose role may not open this page."""


def console_of(request: Request) -> Console:
    """Return the console this request is served by."""
    console: Console = request.app.state.console
    return console


def current(request: Request, touch: bool = True) -> Session | None:
    """Return this request's live session (looked up once per request), or None.

    `touch` counts the request as the user's activity; a page's background poll does not.
    """
    if "edge_session" in request.scope:
        found: Session | None = request.scope["edge_session"]
        return found
    token = request.session.get("sid")
    session = console_of(request).sessions.find(token, touch=touch) if token else None
    if token and session is None:
        request.session.clear()  # ended on the server: the cookie goes too
    request.scope["edge_session"] = session
    return session


def _logged_in(request: Request) -> Session:
    session = current(request)
    if session is None:
        raise LoginNeeded
    return session


def allowed(name: str, touch: bool = True) -> Any:
    """A dependency: the live session of a user whose role may open `name`.

    With `touch=False` the request is not the user's activity (a page polling in the
    background), so an unattended screen still idles out.
    """

    def dependency(request: Request) -> Session:
        session = current(request, touch)
        if session is None:
            raise LoginNeeded
        if not may(session.role, name):
            raise Forbidden
        return session

    return Depends(dependency)


def refuse_unless(request: Request, session: Session, action: str) -> None:
    """Raise Forbidden unless `session`'s role may do `action`; audit a refused attempt.

    Only an attempt (a POST) is audited: a GET changes nothing, and any page elsewhere can
    make a browser fetch one.
    """
    if may_act(session.role, action):
        return
    if request.method == "POST":
        allowed = " or ".join(sorted(ACTIONS[action]))
        detail = f"role {session.role}; {allowed} may"
        audit(console_of(request).log, session.user, f"{action} refused", detail)
    raise Forbidden


def acting(action: str) -> Any:
    """A dependency: the live session of a user whose role may do `action` (else 403)."""

    def dependency(request: Request) -> Session:
        session = _logged_in(request)
        refuse_unless(request, session, action)
        return session

    return Depends(dependency)


LoggedIn = Annotated[Session, Depends(_logged_in)]
AlarmsUser = Annotated[Session, allowed("alarms")]
LogUser = Annotated[Session, allowed("log")]
ExportUser = Annotated[Session, allowed("export")]
MusterUser = Annotated[Session, allowed("muster")]
OccupancyUser = Annotated[Session, allowed("occupancy")]
DevicesUser = Annotated[Session, allowed("devices")]
SitesUser = Annotated[Session, allowed("sites")]
AuditUser = Annotated[Session, allowed("audit")]
DoorsUser = Annotated[Session, allowed("doors")]
CardsUser = Annotated[Session, allowed("cards")]
PassesUser = Annotated[Session, allowed("passes")]
# A page's background poll: the session must be live, but polling never keeps it alive.
DoorsPoll = Annotated[Session, allowed("doors", touch=False)]
CardsPoll = Annotated[Session, allowed("cards", touch=False)]


def csrf_token(request: Request) -> str:
    """Return the form token: the session's, or before login one kept in the cookie."""
    session = current(request)
    if session is not None:
        return session.csrf
    token = request.session.get("csrf")
    if not isinstance(token, str) or not token:
        token = request.session["csrf"] = secrets.token_urlsafe(24)
    return token


def csrf_ok(request: Request, token: str) -> bool:
    """True if a form carried this request's token."""
    session = current(request)
    expected = session.csrf if session is not None else request.session.get("csrf")
    return isinstance(expected, str) and bool(expected) and secrets.compare_digest(expected, token)


def language_of(request: Request) -> str:
    """Return the reader's language (the `lang` cookie; Japanese by default)."""
    language = request.cookies.get("lang", "ja")
    return language if language in LANGUAGES else "ja"


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page in the user's language with the navigation their role allows."""
    language = language_of(request)
    session = current(request)
    role = session.role if session else None
    return console_of(request).templates.TemplateResponse(
        request,
        name,
        {
            "t": labels(language),
            "code": lambda name: code(name, language),
            "lang": language,
            "user": session.user if session else None,
            "role": role,
            "csrf": csrf_token(request),
            "nav": [p for p in NAV if may(role, p)],
            "here": name.removesuffix(".html"),
            **context,
        },
        status_code=status,
    )
