"""Logging in and out, changing one's own password, choosing the language."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from console.i18n import LANGUAGES
from console.users import MIN_PASSWORD, UserError, audit, check_password, set_password
from console.web_context import LoggedIn, console_of, csrf_ok, current, page

HOME = {"guard": "/alarms", "manager": "/alarms", "operator": "/devices"}
MAX_PASSWORD = 1024  # longer is refused without hashing

router = APIRouter()


def _address(request: Request) -> str:
    return request.client.host if request.client else "-"


@router.get("/", response_class=HTMLResponse)
def home(request: Request) -> Response:
    session = current(request)
    return RedirectResponse(HOME.get(session.role if session else "", "/login"), 303)


@router.get("/lang/{language}")
def set_language(language: str, request: Request) -> Response:
    """Set the language and go back to the page it was chosen on (this site's only)."""
    if language not in LANGUAGES:
        problem = f"language: use one of {', '.join(LANGUAGES)}"
        return page(request, "bad_request.html", status=400, problem=problem)
    response = RedirectResponse(_same_site_path(request), 303)
    response.set_cookie("lang", language, samesite="strict")
    return response


def _same_site_path(request: Request) -> str:
    """Return the Referer's path if it is a page of this site, else "/"."""
    try:
        back = urlsplit(request.headers.get("referer", ""))
    except ValueError:
        return "/"
    here = (request.url.scheme, request.url.netloc)
    if (back.scheme, back.netloc) != here or not back.path.startswith("/"):
        return "/"
    if back.path.startswith("//") or "\\" in back.path or not back.path.isprintable():
        return "/"
    return back.path + (f"?{back.query}" if back.query else "")


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
    console = console_of(request)
    log, throttle, address = console.log, console.throttle, _address(request)
    shown = username[:32] or "-"
    if not csrf_ok(request, csrf):
        return page(request, "login.html", status=400, failed=True)
    if not throttle.admit():
        return page(request, "login.html", status=429, busy=True)
    if throttle.locked(username, address):
        audit(log, shown, "login refused: too many failures", address)
        return page(request, "login.html", status=429, locked=True)
    role = check_password(log, username, password) if len(password) <= MAX_PASSWORD else None
    if role is None:
        throttle.failed(username, address)
        audit(log, shown, "login failed", address)
        return page(request, "login.html", status=401, failed=True)
    throttle.succeeded(username, address)
    token, _ = console.sessions.start(username)
    request.session.clear()
    request.session["sid"] = token  # the cookie carries the session's id and nothing else
    audit(log, username, "login", address)
    return RedirectResponse(HOME[role], status_code=303)


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    session = current(request)
    if session is not None and csrf_ok(request, csrf):
        console = console_of(request)
        console.sessions.end(session)
        audit(console.log, session.user, "logout")
        request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/password", response_class=HTMLResponse)
def password_form(request: Request, session: LoggedIn) -> Response:
    return page(request, "password.html")


@router.post("/password", response_class=HTMLResponse)
def change_password(
    request: Request,
    session: LoggedIn,
    current_password: str = Form(""),
    new_password: str = Form(""),
    repeat_password: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    """Change one's own password (the current one is required); other sessions end."""
    console = console_of(request)
    log, throttle, address = console.log, console.throttle, _address(request)
    if not csrf_ok(request, csrf):
        return page(request, "forbidden.html", status=400)
    if throttle.locked(session.user, address):
        audit(log, session.user, "password change refused: too many failures", address)
        return page(request, "password.html", status=429, problem="login_locked")
    right = len(current_password) <= MAX_PASSWORD and check_password(
        log, session.user, current_password
    )
    if not right:
        throttle.failed(session.user, address)
        audit(log, session.user, "password change refused: wrong current password", address)
        return page(request, "password.html", status=401, problem="password_wrong")
    if new_password != repeat_password:
        return page(request, "password.html", status=400, problem="password_mismatch")
    if len(new_password) > MAX_PASSWORD:
        return page(request, "password.html", status=400, problem="password_long")
    try:
        set_password(log, session.user, new_password, by=session.user, keep_session=session.key)
    except UserError:
        return page(
            request, "password.html", status=400, problem="password_short", least=MIN_PASSWORD
        )
    throttle.succeeded(session.user, address)
    return page(request, "password.html", changed=True)
