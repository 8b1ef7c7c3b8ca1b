"""The rooms service's building view, as the console keeps it for the occupancy page.

The collector takes the retained `{root}/{site}/rooms/view` and `{root}/{site}/rooms/status`
like any device's status: judged here (size, JSON, the view's own model, which carries no
personal data), stored in the log's `rooms` table, newest only. The occupancy page draws the
view's plan with rooms.floorplan above the security line's counts. A view that fails is
refused and the one before it stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from pydantic import ValidationError

from console.log import CentralLog
from rooms.view import BuildingView

MAX_VIEW: Final = 1024 * 1024  # bytes: a city hall's view is a few tens of kilobytes
VIEW: Final = "view"
STATUS: Final = "status"


class ViewRefused(ValueError):
    """A rooms message the console will not keep; the message says why."""


def judge_view(payload: bytes, site: str) -> str:
    """Return the view as JSON text to keep, or raise ViewRefused naming what is wrong."""
    if len(payload) > MAX_VIEW:
        raise ViewRefused(f"rooms view of {len(payload)} bytes; at most {MAX_VIEW}")
    try:
        view = BuildingView.model_validate_json(payload)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the payload"
        raise ViewRefused(f"rooms view: {where}: {first['msg']}"[:200]) from None
    if view.site != site:
        raise ViewRefused(f"rooms view for site {view.site[:40]!r}, not this site")
    return view.model_dump_json()


def judge_status(payload: bytes) -> str:
    """Return the rooms service's status (`online` or `offline`), or raise ViewRefused."""
    text = payload.decode("utf-8", "replace")
    if text not in ("online", "offline"):
        raise ViewRefused("rooms status is neither online nor offline")
    return text


@dataclass(frozen=True, slots=True)
class RoomsNow:
    """What the occupancy page knows of the rooms service."""

    view: BuildingView | None
    received_at: datetime | None
    status: str | None  # online, offline, or None: never heard


def rooms_now(log: CentralLog, site: str | None = None, home: str | None = None) -> RoomsNow:
    """Return the newest view and status the collector kept for `site` (None where there
    is none); the home site's are also those kept before views were kept per site, and
    without a site a log holding one site's view shows that one."""
    kept = _kept(log, site, home)
    view, received = None, None
    if VIEW in kept:
        body, at = kept[VIEW]
        try:
            view = BuildingView.model_validate_json(body)
            received = datetime.fromisoformat(at)
        except (ValidationError, ValueError):  # kept by an older console: judged again
            view = None
    status = kept[STATUS][0] if STATUS in kept else None
    return RoomsNow(view, received, status)


def _kept(log: CentralLog, site: str | None, home: str | None) -> dict[str, tuple[str, str]]:
    if site:
        kept = log.rooms(site)
        return kept if kept or site != home else log.rooms()
    kept = log.rooms()
    if kept:
        return kept
    named = [row[0] for row in log.db.execute("SELECT DISTINCT site FROM rooms").fetchall()]
    return log.rooms(named[0]) if len(named) == 1 and named[0] else {}
