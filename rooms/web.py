"""The floor view's web page: the whole building, one floor, and "find a free booth now".

Server-rendered (FastAPI + Jinja2, the plan drawn by rooms.floorplan), no script at all: the
page reloads itself every `refresh_s` seconds (meta refresh), and a Content-Security-Policy
forbids scripts outright. No login: it shows places, times and counts only, never a person,
so staff inside the office network may open it; it binds to 127.0.0.1 unless the config's
`[web]` says otherwise. A bad floor or query value is answered 400 or 404 with a page that
says what to do, never a 500; a view that cannot be built is answered 503.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import tzinfo
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.exceptions import HTTPException

from rooms import floorplan
from rooms.view import BuildingView

log = logging.getLogger(__name__)

TEMPLATES = Path(__file__).resolve().parent / "templates"
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class PageProblem(Exception):  # answered by the problem page, with its status
    """A request the page cannot answer: its status and what to do instead."""

    def __init__(self, status: int, problem: str) -> None:
        super().__init__(problem)
        self.status = status
        self.problem = problem


def create_app(view: Callable[[], BuildingView], zone: tzinfo, *, refresh_s: int = 10) -> FastAPI:
    """Build the floor view's app; `view()` returns the building as it is now."""
    app = FastAPI(title="edge-rooms", docs_url=None, redoc_url=None, openapi_url=None)
    templates = Jinja2Templates(directory=str(TEMPLATES))
    templates.env.filters["local"] = lambda when: when.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    templates.env.filters["floor_label"] = floorplan.floor_label

    def current() -> BuildingView:
        try:
            return view()
        except Exception:  # the service keeps running; the page says it is not ready
            log.exception("building the floor view failed")
            raise PageProblem(
                503, "the floor view is not available right now; try again soon"
            ) from None

    def render(request: Request, name: str, status: int = 200, **context: Any) -> Response:
        response = templates.TemplateResponse(
            request,
            name,
            {"refresh_s": refresh_s, "legend": Markup(floorplan.legend()), **context},  # noqa: S704 -- built escaped by rooms.floorplan
            status_code=status,
        )
        response.headers.update(HEADERS)
        return response

    def plans(building: BuildingView, floors: list[int]) -> list[tuple[int, Markup]]:
        # rooms.floorplan escapes every text it draws; the SVG goes in as markup.
        return [(f, Markup(floorplan.render(building, f, zone))) for f in floors]  # noqa: S704

    async def problem(request: Request, error: Exception) -> Response:
        if isinstance(error, PageProblem):
            status, text = error.status, error.problem
        elif isinstance(error, HTTPException) and error.status_code == 404:
            status, text = 404, "no such page: open / for the whole building"
        elif isinstance(error, HTTPException):
            status, text = error.status_code, "this page cannot answer that request"
        else:
            status, text = 400, "a value in the address is not valid: open / and pick a floor"
        return render(request, "problem.html", status, problem=text, floors=[])

    app.add_exception_handler(PageProblem, problem)
    app.add_exception_handler(HTTPException, problem)
    app.add_exception_handler(RequestValidationError, problem)

    @app.get("/", response_class=HTMLResponse)
    def building(request: Request) -> Response:
        now = current()
        return render(
            request, "building.html", view=now, floors=now.floors(), plans=plans(now, now.floors())
        )

    @app.get("/floor/{number}", response_class=HTMLResponse)
    def one_floor(request: Request, number: str) -> Response:
        now = current()
        floor = _floor(number, now)
        return render(
            request, "floor.html", view=now, floors=now.floors(), floor=floor,
            plans=plans(now, [floor]),
        )  # fmt: skip

    @app.get("/free", response_class=HTMLResponse)
    def free(request: Request, floor: str = "") -> Response:
        now = current()
        if not floor:
            return render(request, "free.html", view=now, floors=now.floors(), floor=None, near=[])
        here = _floor(floor, now)
        near = [
            (f, [(b, floorplan.times(b, zone)) for b in booths])
            for f, booths in floorplan.free_booths_near(now, here)
        ]
        return render(request, "free.html", view=now, floors=now.floors(), floor=here, near=near)

    @app.get("/api/view")
    def api_view() -> Response:
        return JSONResponse(current().model_dump(mode="json"), headers=HEADERS)

    @app.get("/healthz")
    def healthz() -> Response:
        return JSONResponse({"status": "ok"}, headers=HEADERS)

    return app


def _floor(text: str, view: BuildingView) -> int:
    """Return the floor `text` names; 400 if it is not a number, 404 if there is no such floor."""
    floors = view.floors()
    listed = ", ".join(str(f) for f in floors) or "none yet"
    name = text.strip().upper().removesuffix("F")
    try:
        # B1 is the first basement, as the building's signs say: floor -1.
        number = -int(name[1:]) if name.startswith("B") else int(name)
    except ValueError:
        raise PageProblem(400, f"floor {text[:20]!r} is not a number; floors: {listed}") from None
    if number not in floors:
        raise PageProblem(404, f"there is no floor {number} in this view; floors: {listed}")
    return number
