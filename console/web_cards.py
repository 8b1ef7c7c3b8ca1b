"""The desk pages: lost and revoked cards, and day passes.

Each action has its own route with the role it needs declared (`acting`); a card action
shows a confirmation first, then publishes at once and shows "applied on N of M devices",
which the page keeps polling (from the statuses in the console's log) until every device
has applied it. Bad input is a 400 page naming the field; every form carries the CSRF token.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from console.desk import Desk, DeskError, Done
from console.forgive import ACTION as FORGIVE
from console.sessions import Session
from console.users import may_act
from console.web_context import (
    CardsPoll,
    CardsUser,
    PassesUser,
    acting,
    console_of,
    csrf_ok,
    page,
)
from provisioning.registry import RegistryError

router = APIRouter()
CARD_ACTIONS = {"lost": "card.lost", "revoke": "card.revoke", "reinstate": "card.reinstate"}


IssueUser = Annotated[Session, acting("pass.issue")]
ReturnUser = Annotated[Session, acting("pass.return")]


def _desk(request: Request) -> Desk:
    console = console_of(request)
    s = console.settings
    return Desk(s.site_dir, s.broker, console.log, s.clock)


def _bad(request: Request, error: Exception | str, field: str = "") -> Response:
    name = getattr(error, "field", field)
    return page(request, "bad_request.html", status=400, problem=f"{name}: {error}")


@router.get("/cards", response_class=HTMLResponse)
def cards_page(request: Request, session: CardsUser, who: str = "") -> Response:
    try:
        found = _desk(request).find(who) if who.strip() else []
    except (DeskError, RegistryError) as error:
        return _bad(request, error)
    return page(
        request,
        "cards.html",
        who=who,
        found=found,
        may={
            **{name: may_act(session.role, a) for name, a in CARD_ACTIONS.items()},
            "forgive": may_act(session.role, FORGIVE),
        },
    )


@router.get("/cards/applied")
def applied(request: Request, session: CardsPoll, v: str = "") -> Response:
    """How far version `v` got: JSON for the page's poll."""
    if not v.isascii() or not v.isdigit() or not 0 < len(v) < 10:
        return JSONResponse({"error": "v: a published version number"}, status_code=400)
    try:
        result = _desk(request).progress(int(v))
    except (DeskError, RegistryError) as error:
        field = getattr(error, "field", "v")
        return JSONResponse({"error": f"{field}: {error}"}, status_code=400)
    return JSONResponse(
        {
            "version": int(v),
            "applied": len(result.devices) - len(result.late),
            "total": len(result.devices),
            "late": result.late,
            "summary": result.summary(),
        }
    )


def _card_routes(name: str, action: str) -> None:
    allowed = acting(action)

    @router.get(f"/cards/{name}", response_class=HTMLResponse, name=f"confirm_{name}")
    def confirm(
        request: Request, staff_no: str = "", card: str = "", session: Session = allowed
    ) -> Response:
        if not staff_no.strip():
            return _bad(request, "give the person's staff number", "staff_no")
        return page(
            request, "card_confirm.html", action=name, staff_no=staff_no[:32], card=card[:64]
        )

    @router.post(f"/cards/{name}", response_class=HTMLResponse, name=f"do_{name}")
    def act(
        request: Request,
        staff_no: str = Form(""),
        card: str = Form(""),
        csrf: str = Form(""),
        session: Session = allowed,
    ) -> Response:
        if not csrf_ok(request, csrf):
            return page(request, "forbidden.html", status=400)
        # Only who may revoke a card may undo a revocation: the registry checks it on the
        # card it picks, in the same transaction as the change.
        unrevoke = may_act(session.role, "card.revoke")
        try:
            done = _desk(request).card(session.user, action, staff_no, card or None, unrevoke)
        except (DeskError, RegistryError) as error:
            return _bad(request, error)
        return _done(request, done, "/cards?who=" + quote(staff_no.strip()[:32]))


for _name, _action in CARD_ACTIONS.items():
    _card_routes(_name, _action)


def _desk_or_none(request: Request) -> Desk | DeskError:
    try:
        return _desk(request)
    except DeskError as error:
        return error


def _done(request: Request, done: Done, back: str) -> Response:
    return page(request, "desk_done.html", done=done, back=back)


@router.get("/passes", response_class=HTMLResponse)
def passes_page(request: Request, session: PassesUser) -> Response:
    desk = _desk_or_none(request)
    if isinstance(desk, DeskError):
        return _bad(request, desk)
    try:
        passes, spares = desk.passes(), desk.spares()
    except RegistryError as error:
        return _bad(request, error, "site_dir")
    return page(request, "passes.html", passes=passes, spares=spares)


@router.post("/passes/issue", response_class=HTMLResponse)
def issue(
    request: Request,
    session: IssueUser,
    staff_no: str = Form(""),
    spare: str = Form(""),
    until: str = Form(""),
    csrf: str = Form(""),
) -> Response:
    if not csrf_ok(request, csrf):
        return page(request, "forbidden.html", status=400)
    desk = _desk_or_none(request)
    if isinstance(desk, DeskError):
        return _bad(request, desk)
    try:
        done = desk.issue(session.user, staff_no[:32], spare[:16], until[:16])
    except (DeskError, RegistryError) as error:
        return _bad(request, error)
    return _done(request, done, "/passes")


@router.post("/passes/return", response_class=HTMLResponse)
def give_back(
    request: Request, session: ReturnUser, spare: str = Form(""), csrf: str = Form("")
) -> Response:
    if not csrf_ok(request, csrf):
        return page(request, "forbidden.html", status=400)
    desk = _desk_or_none(request)
    if isinstance(desk, DeskError):
        return _bad(request, desk)
    try:
        done = desk.give_back(session.user, spare[:16])
    except (DeskError, RegistryError) as error:
        return _bad(request, error)
    return _done(request, done, "/passes")
