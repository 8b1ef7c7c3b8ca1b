"""The console's pages across sites: the `site` filter every listing page takes, and Sites.

A page that lists events, devices, alarms, occupancy or people inside takes `site=…` (one
site) or nothing (every site, grouped by site); a select box offers the log's sites when it
holds more than one. The Sites page shows each site's link to the centre: connected or not
(since when), what its broker holds for the centre, its newest event and how far behind
that is, its devices online.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from console.search import QueryError
from console.site_view import SiteError, SiteScope, duration, known_sites, scope_of, site_links
from console.web_context import SitesUser, console_of, page

router = APIRouter()


def scope_for(request: Request) -> SiteScope:
    """Return the site this request asks for (`site`), or answer 400 naming the choices."""
    console = console_of(request)
    try:
        return scope_of(console.log, request.query_params.get("site", ""), console.people.site)
    except SiteError as error:
        raise QueryError("site", str(error)) from None


def site_context(request: Request, scope: SiteScope) -> dict[str, Any]:
    """Return what a page's site filter needs: the log's sites and the one chosen."""
    console = console_of(request)
    return {"sites": known_sites(console.log, scope.home), "site": scope.site}


def cut_off(request: Request, scope: SiteScope) -> dict[str, Any]:
    """Return the sites (of the scope) cut off from the centre or still sending a backlog:
    their alarms are not reaching the console, which the alarm page says first."""
    console = console_of(request)
    now = datetime.fromtimestamp(console.settings.clock(), UTC)
    links = site_links(console.log, scope.home, now)
    behind = [
        link
        for link in links
        if (link.connected is False or link.behind_s is not None)
        and (not scope.site or link.site == scope.site)
    ]
    return {"cut_off": behind, "duration": duration}


@router.get("/sites", response_class=HTMLResponse)
def sites_page(request: Request, session: SitesUser) -> Response:
    console = console_of(request)
    now = datetime.fromtimestamp(console.settings.clock(), UTC)  # the sessions' clock too
    links = site_links(console.log, console.people.site, now)
    return page(request, "sites.html", links=links, duration=duration)
