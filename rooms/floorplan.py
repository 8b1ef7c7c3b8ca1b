"""Draw each floor of a `BuildingView` as inline SVG: rooms, booths and department areas.

Pure: a view in, text out. A room or area with a configured `shape` (x, y, w, h in plan
units) is drawn there; the rest are laid out in config order below the shaped ones, so the
same view always gives the same plan: department areas in a band, booths in a row, meeting
rooms along the bottom. Each status has a colour *and* a pattern and a letter mark, so the
plan reads without colour too. Every name is escaped: a room called `<script>` is text.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape

from rooms.view import AreaView, BuildingView, RoomStatus, RoomView

GAP = 10
AREA_SIZE = (220, 130)
BOOTH_SIZE = (130, 90)
ROOM_SIZE = (180, 120)
ROW_WIDTH = 960  # an automatic row wraps past this width
MAX_SLOTS = 3  # next bookings written in one room


@dataclass(frozen=True, slots=True)
class Look:
    """How one status is drawn: fill, pattern, letter mark and its words."""

    fill: str
    pattern: str  # "" for none, else a pattern id suffix (see _patterns)
    mark: str
    ja: str
    en: str


LOOKS: dict[RoomStatus, Look] = {
    "free": Look("#c8e6c9", "", "F", "空き", "free"),
    "booked": Look("#bbdefb", "dots", "B", "予約あり", "booked"),
    "in-use": Look("#ffcc80", "", "U", "使用中", "in use"),
    "in-use-unbooked": Look("#ef9a9a", "cross", "X", "予約なしで使用中", "in use, not booked"),
    "released": Look("#e1bee7", "wave", "R", "解放済み", "released"),
    "unknown": Look("#e0e0e0", "hatch", "?", "不明", "unknown"),
}
INK = "#1b1b1b"
# Text keeps a white outline drawn under it, so it reads on every pattern.
HALO = (
    "<style>svg.floorplan text, svg.legend text { stroke: #fff; stroke-width: 3px; "
    "stroke-linejoin: round; paint-order: stroke; }</style>"
)
FREE_BAR = "#e8f5e9"
FULL_BAR = "#e08a00"


@dataclass(frozen=True, slots=True)
class Box:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True, slots=True)
class Placed:
    """A room or an area and where it is drawn."""

    item: RoomView | AreaView
    box: Box


@dataclass(frozen=True, slots=True)
class FloorPlan:
    floor: int
    width: int
    height: int
    placed: tuple[Placed, ...]


def layout(view: BuildingView, floor: int) -> FloorPlan:
    """Place every room and area of `floor`: its `shape` if given, else the automatic rows."""
    areas = [a for a in view.areas if a.floor == floor]
    rooms = [r for r in view.rooms if r.floor == floor]
    everything: list[AreaView | RoomView] = [*areas, *rooms]
    placed = [Placed(i, Box(*i.shape)) for i in everything if i.shape is not None]
    y = max((p.box.y + p.box.h for p in placed), default=0) + (GAP if placed else 0)
    rows: list[list[AreaView | RoomView]] = [
        [a for a in areas if a.shape is None],
        [r for r in rooms if r.shape is None and r.kind != "meeting-room"],
        [r for r in rooms if r.shape is None and r.kind == "meeting-room"],
    ]
    for items, (w, h) in zip(rows, (AREA_SIZE, BOOTH_SIZE, ROOM_SIZE), strict=True):
        x = 0
        for item in items:
            if x and x + w > ROW_WIDTH:
                x, y = 0, y + h + GAP
            placed.append(Placed(item, Box(x, y, w, h)))
            x += w + GAP
        if items:
            y += h + GAP
    width = max((p.box.x + p.box.w for p in placed), default=0)
    height = max((p.box.y + p.box.h for p in placed), default=0)
    return FloorPlan(floor, max(width, 1), max(height, 1), tuple(placed))


def floor_label(floor: int) -> str:
    """Return a floor's name as the building's signs give it: `3F`, and `B1` for floor -1.

    The floor view, the console and Home Assistant all label floors with this; the floor
    page's address takes either form back (`/floor/B1`, `/floor/-1`).
    """
    return f"B{-floor}" if floor < 0 else f"{floor}F"


def render(view: BuildingView, floor: int, zone: tzinfo) -> str:
    """Return one floor as an `<svg>` element; times are shown in `zone` (the site's)."""
    plan = layout(view, floor)
    tag = f"f{floor}".replace("-", "m")
    parts = [
        f'<svg class="floorplan" data-floor="{floor}" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="-2 -2 {plan.width + 4} {plan.height + 4}" role="img" '
        f'aria-label="{floor_label(floor)}" font-family="IPAGothic, \'IPAゴシック\', sans-serif">',
        _patterns(tag),
    ]
    for p in plan.placed:
        if isinstance(p.item, RoomView):
            parts.append(_room(p.item, p.box, tag, zone))
        else:
            parts.append(_area(p.item, p.box, tag))
    parts.append("</svg>")
    return "".join(parts)


def legend() -> str:
    """Return the key to the plan as an `<svg>`: each status's colour, pattern and mark."""
    row = 26
    parts = [
        '<svg class="legend" xmlns="http://www.w3.org/2000/svg" '
        f'viewBox="0 0 330 {row * len(LOOKS) + 4}" role="img" aria-label="凡例 legend" '
        "font-family=\"IPAGothic, 'IPAゴシック', sans-serif\">",
        _patterns("legend"),
    ]
    for i, (status, look) in enumerate(LOOKS.items()):
        y = i * row + 2
        parts.append(
            f'<g class="key status-{status}" data-status="{status}">'
            f"{_swatch(look, 'legend', 2, y, 40, row - 6)}"
            f'<text x="21" y="{y + 15}" text-anchor="middle" font-weight="bold" '
            f'font-size="13">{look.mark}</text>'
            f'<text x="50" y="{y + 15}" font-size="13">{look.ja} ({look.en})</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)


def free_booths_near(view: BuildingView, floor: int) -> list[tuple[int, list[RoomView]]]:
    """Return [(floor, free booths)] for `floor` first, then the nearest floors (lower first
    when two are as near); floors with no free booth are left out."""
    floors = sorted(view.floors(), key=lambda f: (abs(f - floor), f))
    found = [(f, view.free_booths(f)) for f in floors]
    return [(f, booths) for f, booths in found if booths]


def clean(text: str) -> str:
    """Return `text` safe to show: escaped, without control or direction-override characters."""
    kept = "".join(c for c in text if unicodedata.category(c) not in ("Cc", "Cf", "Cs"))
    return escape(kept, quote=True)


def times(room: RoomView, zone: tzinfo) -> list[str]:
    """Return the room's next bookings as local `HH:MM–HH:MM` (times only, nothing else)."""
    return [f"{_hm(s.start, zone)}–{_hm(s.end, zone)}" for s in room.next]


def _fit(text: str, width: int, size: int) -> str:
    """Shorten `text` to what `width` holds at `size` (wide characters; the tooltip has all)."""
    room_for = max(3, width // size)
    return text if len(text) <= room_for else text[: room_for - 1] + "…"


def _hm(when: datetime, zone: tzinfo) -> str:
    return when.astimezone(zone).strftime("%H:%M")


def _room(room: RoomView, box: Box, tag: str, zone: tzinfo) -> str:
    look = LOOKS[room.status]
    tip = f"{room.name} — {look.ja} ({look.en})"
    if room.reason:
        tip += f": {room.reason}"
    if room.since is not None:
        tip += f" · {_hm(room.since, zone)}〜"
    lines = [
        f'<text x="{box.x + 8}" y="{box.y + 20}" font-size="14" font-weight="bold">'
        f"{clean(_fit(room.name, box.w - 16, 14))}</text>",
        f'<text class="mark" x="{box.x + box.w - 8}" y="{box.y + box.h - 8}" '
        f'text-anchor="end" font-size="18" font-weight="bold">{look.mark}</text>',
        f'<text x="{box.x + 8}" y="{box.y + 38}" font-size="12">{look.ja}</text>',
    ]
    below = [("reason", _fit(room.reason, box.w - 16, 12))] if room.reason else []
    below += [("slot", span) for span in times(room, zone)[:MAX_SLOTS]]
    room_for = max(0, (box.h - 44) // 15)  # lines that fit above the letter mark
    for i, (kind, words) in enumerate(below[:room_for]):
        lines.append(
            f'<text class="{kind}" x="{box.x + 8}" y="{box.y + 56 + i * 15}" '
            f'font-size="12">{clean(words)}</text>'
        )
    return (
        f'<g class="room status-{room.status}" data-zone="{clean(room.zone)}" '
        f'data-status="{room.status}"><title>{clean(tip)}</title>'
        f"{_swatch(look, tag, box.x, box.y, box.w, box.h)}{''.join(lines)}</g>"
    )


def _area(area: AreaView, box: Box, tag: str) -> str:
    unknown_words = f" · 不明 {area.unknown}" if area.unknown else ""
    share = area.occupied / area.zones
    tip = f"{area.name} — {area.occupied}/{area.zones} 島 (islands)"
    if area.unknown:
        tip += f", 不明 {area.unknown} (unknown)"
    bar_x, bar_w, bar_y = box.x + 8, box.w - 16, box.y + box.h - 28
    used = round(bar_w * share)
    unknown_w = round(bar_w * area.unknown / area.zones)
    return (
        f'<g class="area" data-area="{clean(area.id)}" data-occupied="{area.occupied}" '
        f'data-zones="{area.zones}" data-unknown="{area.unknown}"><title>{clean(tip)}</title>'
        f'<rect x="{box.x}" y="{box.y}" width="{box.w}" height="{box.h}" fill="#f5f7fa" '
        f'stroke="{INK}" stroke-dasharray="6 3"/>'
        f'<text x="{box.x + 8}" y="{box.y + 20}" font-size="14" font-weight="bold">'
        f"{clean(_fit(area.name, box.w - 16, 14))}</text>"
        f'<text x="{box.x + 8}" y="{box.y + 40}" font-size="12">'
        f"{area.occupied}/{area.zones} 島に在席{unknown_words}</text>"
        f'<rect x="{bar_x}" y="{bar_y}" width="{bar_w}" height="16" fill="{FREE_BAR}" '
        f'stroke="{INK}"/>'
        f'<rect class="used" x="{bar_x}" y="{bar_y}" width="{used}" height="16" '
        f'fill="{FULL_BAR}"/>'
        f'<rect class="unknown" x="{bar_x + bar_w - unknown_w}" y="{bar_y}" '
        f'width="{unknown_w}" height="16" fill="url(#hatch-{tag})" '
        f'stroke="{INK}" stroke-width="{1 if unknown_w else 0}"/>'
        f'<text x="{bar_x + bar_w}" y="{bar_y - 4}" text-anchor="end" font-size="12">'
        f"{round(share * 100)}%{' ?' if area.unknown else ''}</text></g>"
    )


def _swatch(look: Look, tag: str, x: int, y: int, w: int, h: int) -> str:
    base = f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="{look.fill}" stroke="{INK}"/>'
    if not look.pattern:
        return base
    return (
        f'{base}<rect class="pattern" x="{x}" y="{y}" width="{w}" height="{h}" '
        f'fill="url(#{look.pattern}-{tag})"/>'
    )


def _patterns(tag: str) -> str:
    """Return the `<defs>` of one SVG; ids carry `tag` so several plans share one page."""
    return (
        f"{HALO}<defs>"
        f'<pattern id="hatch-{tag}" width="8" height="8" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><line x1="0" y1="0" x2="0" y2="8" '
        'stroke="#616161" stroke-width="2"/></pattern>'
        f'<pattern id="dots-{tag}" width="10" height="10" patternUnits="userSpaceOnUse">'
        '<circle cx="5" cy="5" r="1.6" fill="#1565c0"/></pattern>'
        f'<pattern id="cross-{tag}" width="10" height="10" patternUnits="userSpaceOnUse">'
        '<path d="M0 0L10 10M10 0L0 10" stroke="#b71c1c" stroke-width="1"/></pattern>'
        f'<pattern id="wave-{tag}" width="16" height="8" patternUnits="userSpaceOnUse">'
        '<path d="M0 4Q4 0 8 4T16 4" fill="none" stroke="#6a1b9a" stroke-width="1"/>'
        "</pattern></defs>"
    )
