"""Live alarms: what is wrong now, from the log, with who acknowledged what and when.

A lasting alarm (a door forced or held open, a reader offline, fire, stale credentials, a
corrupt store, a hardware fault) is active from `raised` (or `pre_alarm`) until its
`cleared`. A one-shot alarm (a lost card used, an anti-passback violation) has no end: it
stays until someone acknowledges it. Gaps in a device's sequence are the console's own
`missing_events` alarm, active until the events arrive. Messages the collector refused are
the console's `bad_messages` (over a limit) and `device_claim_refused` (claiming what the
device was not provisioned with) alarms, one per device: active until acknowledged, and
raised again by the next refusal after the acknowledgement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from console import refusals
from console.chain import ACKS, append_row
from console.log import CentralLog
from console.people import Directory
from console.site_view import SiteScope, home_site
from console.users import audit
from edge.core.clock import utc_text

ONE_SHOT = frozenset(
    {
        "lost_card_used",
        "clone_suspected",
        "anti_passback_violation",
        "duress",
        "pin_attempts_exceeded",
        "anti_passback_conflict",
    }
)


@dataclass(frozen=True)
class Alarm:
    """One active (or acknowledged one-shot) alarm."""

    key: str  # the id of the event that raised it, or missing:{device}
    device: str
    type: str
    state: str
    ts: str
    where: str  # door, reader or zone
    detail: str
    acked_by: str | None = None
    acked_at: str | None = None
    site: str = ""


def active(
    log: CentralLog,
    people: Directory | None = None,
    zones: Mapping[str, str] | None = None,
    scope: SiteScope | None = None,
) -> list[Alarm]:
    """Return the alarms active now, newest first (acknowledged one-shots left out).

    With `people` a card alarm names the card's holder (at the alarm's time) and times are
    the site's; with `zones` a zone is shown by its name; with `scope` one site's alarms.
    """
    scope = scope or SiteScope(home=home_site(log, people.site if people is not None else None))
    words = Words(people, zones or {})
    latest: dict[tuple[str, str, str, str], tuple[str, str, str, str, str]] = {}
    one_shots: list[Alarm] = []
    for event_id, device, site, ts, type_, state, door, reader, zone, card, *more in log.db.execute(
        "SELECT id, device, site, ts, type, json_extract(body, '$.state'), "
        "json_extract(body, '$.door'), json_extract(body, '$.reader'), "
        "json_extract(body, '$.zone'), card_ref, json_extract(body, '$.since'), "
        "json_extract(body, '$.to_zone'), json_extract(body, '$.peer'), "
        "json_extract(body, '$.peer_ts'), json_extract(body, '$.own_ts') "
        "FROM events WHERE kind = 'alarm' ORDER BY ts, row"
    ):
        where = door or reader or words.zone(zone) or ""
        detail = words.detail(type_, ts, card, *more)
        name = scope.name(site)
        if type_ in ONE_SHOT:
            one_shots.append(
                Alarm(event_id, device, type_, state or "raised", ts, where, detail, site=name)
            )
            continue
        latest[(name, device, type_, where)] = (event_id, ts, state or "raised", where, detail)
    acks = {
        alarm: (username, at)
        for alarm, username, at in log.db.execute(
            "SELECT alarm, username, at FROM alarm_acks ORDER BY row"  # the newest ack counts
        )
    }
    alarms = [
        Alarm(
            event_id,
            device,
            type_,
            state,
            ts,
            where,
            detail,
            *acks.get(event_id, (None, None)),
            site=site,
        )
        for (site, device, type_, _), (event_id, ts, state, where, detail) in latest.items()
        if state in ("raised", "pre_alarm")
    ]
    alarms += [a for a in one_shots if a.key not in acks]
    sites = {
        device: scope.name(site)
        for device, site in log.db.execute("SELECT device, site FROM devices")
    }
    for keyed, missing in log.gaps().items():
        # A log of many sites keys a device `site/device` (the same id may be at two sites).
        site, _, device = keyed.rpartition("/") if log.keys_sites else ("", "", keyed)
        key = f"missing:{keyed}"
        shown = ", ".join(map(str, missing[:5])) + ("…" if len(missing) > 5 else "")
        by, at = acks.get(key, (None, None))
        where = site or sites.get(device, scope.name(None))
        alarms.append(
            Alarm(
                key, device, "missing_events", "raised", _now(), "", f"seq {shown}", by, at, where
            )
        )
    for total in refusals.totals(log):
        keyed = f"{total.site}/{total.device}" if log.keys_sites else total.device
        key = f"{total.alarm}:{keyed}"
        by, at = acks.get(key, (None, None))
        if at is not None and at >= total.last_at:
            continue  # acknowledged, and nothing refused since
        detail = f"{total.total} refused since {total.first_at}; last: {total.last_reason}"
        site = scope.name(total.site)
        alarms.append(
            Alarm(key, total.device, total.alarm, "raised", total.last_at, "", detail, site=site)
        )
    if scope.site:
        alarms = [a for a in alarms if a.site == scope.site]
    return sorted(alarms, key=lambda a: a.ts, reverse=True)


def acknowledge(log: CentralLog, key: str, username: str, note: str = "") -> bool:
    """Record that `username` acknowledged an alarm (audited); False if it is not active."""
    if key not in {a.key for a in active(log)}:
        return False
    # A row per acknowledgement, on the acknowledgements' chain; the newest per alarm counts.
    values = {"alarm": key, "username": username, "at": _now(), "note": note[:200]}
    with log.transaction() as conn:
        append_row(conn, ACKS, values)
        audit(log, username, "alarm acknowledged", key)
    return True


def latest_alarm_row(log: CentralLog) -> int:
    """Return the newest alarm's row (0 if none): a cheap change marker for live pages.

    A log of many sites numbers rows when they are written and commits them in that order
    only within a site, so one site's alarm may land below another's newest: there the
    marker adds up each site's newest alarm row (each only grows).
    """
    if not log.keys_sites:
        row = log.db.execute("SELECT max(row) FROM events WHERE kind = 'alarm'").fetchone()
        newest = int(row[0] or 0)
    else:
        sites = [site for (site,) in log.db.execute("SELECT DISTINCT site FROM devices")]
        newest = sum(
            int(
                log.db.execute(
                    "SELECT max(row) FROM events WHERE site = ? AND kind = 'alarm'", [site]
                ).fetchone()[0]
                or 0
            )
            for site in sites
        )
    # Both only grow, so their sum changes whenever either does.
    return newest + refusals.latest(log)


class Words:
    """How an alarm's fields read: a card by its holder, a zone by its name, local times."""

    def __init__(self, people: Directory | None, zones: Mapping[str, str]) -> None:
        self.people, self.zones = people, zones
        self.tz = ZoneInfo(people.timezone) if people is not None else UTC

    def zone(self, zone: object) -> str:
        """Return a zone's name and id (`Staff area (staff-area)`), or its id if unnamed."""
        if not isinstance(zone, str) or not zone:
            return ""
        name = self.zones.get(zone)
        return f"{name} ({zone})" if name and name != zone else zone

    def card(self, ref: str | None, ts: str) -> str:
        """Return the card's holder at `ts` (name, staff number), or the card's reference."""
        if not ref:
            return ""
        person = self.people.person(ref, ts) if self.people is not None else None
        if person is None:
            return f"card {ref[:12]}…"
        shown = f"{person.name} ({person.staff_no})"
        return f"{shown}, day pass {person.day_pass}" if person.day_pass else shown

    def time(self, ts: object) -> str:
        """Return a device's time in the site's time zone, or as sent if unreadable."""
        try:
            moment = datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
            return moment.astimezone(self.tz).strftime("%Y-%m-%d %H:%M:%S")
        except (ValueError, OverflowError):
            return str(ts)[:40]

    def detail(self, type_: str, ts: str, card: str | None, *fields: object) -> str:
        """Return what a guard reads in an alarm's detail column."""
        since, to_zone, peer, peer_ts, own_ts = fields
        if type_ == "anti_passback_degraded":
            return f"cut off from its peers since {self.time(since)}" if since else ""
        if type_ == "anti_passback_conflict":
            return (
                f"{self.card(card, ts)}: let in here at {self.time(own_ts)}, then at "
                f"{str(peer)[:64]} into {self.zone(to_zone)} at {self.time(peer_ts)} "
                "without leaving"
            )
        return self.card(card, ts)


def _now() -> str:
    return utc_text(datetime.now(UTC))
