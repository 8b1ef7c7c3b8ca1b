"""The "Forgive anti-passback" button: a manager lets one card enter again.

The button sits where a guard finds a person: their cards on the cards page and their row in
the roll call. It asks first (the person, the card, a zone to limit it to, the devices it
goes to), then sends one signed `forgive` command to every device that may hold the card's
position, through the same functions as `edge-console forgive` (console.forgive), and shows
each device's answer on the doors page as it comes. Who may is declared on the routes
(`apb.forgive`: a manager); anyone else gets the 403 page, and a refused POST is audited.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from console import forgive as forgiving
from console.actions import ActionError, Site
from console.sessions import Session
from console.web_context import acting, console_of, csrf_ok, page
from console.web_doors import NO_SITE, start_job

router = APIRouter()
ForgiveUser = Annotated[Session, acting(forgiving.ACTION)]


@router.get("/cards/forgive", response_class=HTMLResponse)
def ask(request: Request, session: ForgiveUser, card: str = "", staff_no: str = "") -> Response:
    """Show whose card it is and where it goes, with a zone to limit it to; send nothing."""
    found = _card(request, card)
    if isinstance(found, Response):
        return found
    ref, site = found
    console = console_of(request)
    console.people.reload()
    person = console.people.person(ref)
    zones = sorted({z for c in site.devices() for sides in c.doors.values() for z in sides})
    return page(
        request,
        "card_forgive.html",
        card=ref[: forgiving.SHOWN],
        person=person,
        staff_no=person.staff_no if person else staff_no[:32],
        zones=zones,
        names=site.registry.zone_names(),
        devices=forgiving.devices(site, None),
        unreached=site.unreached(),
        back=_back(person.staff_no if person else staff_no),
    )


@router.post("/cards/forgive", response_class=HTMLResponse)
def send(
    request: Request,
    session: ForgiveUser,
    card: str = Form(""),
    zone: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    """Send the forgiveness the manager confirmed; show each device's answer as it comes."""
    if not csrf_ok(request, csrf):
        return page(request, "forbidden.html", status=400)
    found = _card(request, card)
    if isinstance(found, Response):
        return found
    ref, site = found
    chosen = zone[:64] or None
    try:
        devices = forgiving.devices(site, chosen)
    except ActionError as error:
        return _bad(request, f"zone: {error}")
    return start_job(
        request,
        session,
        forgiving.target(ref, chosen),
        forgiving.ACTION,
        devices,
        forgiving.COMMAND,
        forgiving.arguments(ref, chosen),
        "" if chosen else site.unreached(),
    )


def _card(request: Request, card: str) -> tuple[str, Site] | Response:
    """Return the one card `card` (a reference's first digits) names and the site, or a page."""
    console = console_of(request)
    doors = console.doors
    registry = _registry(request)
    if doors is None or registry is None:
        return _bad(request, NO_SITE, 409)
    try:
        (ref,) = forgiving.cards(registry, None, card[:64])
    except ActionError as error:
        return _bad(request, f"card: {error}")
    return ref, doors.site


def _registry(request: Request) -> Path | None:
    settings = console_of(request).settings
    return settings.site_dir / "registry.db" if settings.site_dir else settings.registry


def _bad(request: Request, problem: str, status: int = 400) -> Response:
    return page(request, "bad_request.html", status=status, problem=problem)


def _back(staff_no: str) -> str:
    """Return the cards page of a person (where the button was), or the roll call."""
    return "/cards?who=" + quote(staff_no.strip()[:32]) if staff_no.strip() else "/muster"
