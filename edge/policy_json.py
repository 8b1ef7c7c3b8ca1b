"""The access policy as JSON: how provisioning ships it and how the store keeps it."""

from __future__ import annotations

from datetime import time
from typing import Any

from edge.core.policy import AccessPolicy, Rule
from edge.core.schedule import ClosureDays, Schedule, ScheduleError, TimeRange, Window


def _hours(r: TimeRange) -> str:
    end = "24:00" if r.end is None else r.end.strftime("%H:%M")
    return f"{r.start.strftime('%H:%M')}-{end}"


def policy_to_json(policy: AccessPolicy) -> dict[str, Any]:
    """Return the policy as plain JSON data."""
    return {
        "version": policy.version,
        "schedules": {
            sid: {
                "windows": [{"days": sorted(w.days), "hours": _hours(w.hours)} for w in s.windows],
                "on_holidays": [_hours(r) for r in s.on_holidays],
            }
            for sid, s in policy.schedules.items()
            if sid != "always"
        },
        "rules": [
            {"group": r.group, "doors": sorted(r.doors), "schedule": r.schedule}
            for r in policy.rules
        ],
        "override_groups": sorted(policy.override_groups),
        "authenticated_groups": sorted(policy.authenticated_groups),
        "pin_groups": sorted(policy.pin_groups),
        "door_schedules": dict(policy.door_schedules),
        "closure_days": list(policy.closure_days),
        "anti_passback": {
            zone: {
                "mode": mode,
                "forgive_at": forgive,
                "offline": policy.anti_passback_offline.get(zone, "hard"),
            }
            for zone, (mode, forgive) in policy.anti_passback.items()
        },
    }


def _anti_passback(
    data: dict[str, Any],
) -> tuple[dict[str, tuple[str, str | None]], dict[str, str]]:
    """Return each zone's (mode, forgive_at) and its offline fallback."""
    out: dict[str, tuple[str, str | None]] = {}
    offline: dict[str, str] = {}
    for zone, body in data.items():
        mode, forgive = str(body["mode"]), body.get("forgive_at")
        if mode not in ("off", "soft", "hard"):
            raise ScheduleError(f'anti-passback of zone {zone!r}: use "off", "soft" or "hard"')
        if forgive is not None:
            time.fromisoformat(str(forgive))
        fallback = str(body.get("offline", "hard"))
        if fallback not in ("hard", "soft"):
            raise ScheduleError(f'anti-passback offline of zone {zone!r}: use "hard" or "soft"')
        out[str(zone)] = (mode, None if forgive is None else str(forgive))
        offline[str(zone)] = fallback
    return out, offline


def policy_from_json(data: dict[str, Any]) -> AccessPolicy:
    """Build a policy from JSON data; ScheduleError names what is malformed."""
    try:
        schedules = {
            sid: Schedule(
                sid,
                tuple(
                    Window(frozenset(int(d) for d in w["days"]), TimeRange.parse(w["hours"]))
                    for w in body.get("windows", [])
                ),
                tuple(TimeRange.parse(h) for h in body.get("on_holidays", [])),
            )
            for sid, body in data.get("schedules", {}).items()
        }
        closures = tuple(str(d) for d in data.get("closure_days", []))
        ClosureDays.parse(closures)  # says which is malformed
        rules = tuple(
            Rule(r["group"], frozenset(r["doors"]), r.get("schedule", "always"))
            for r in data.get("rules", [])
        )
        passback, offline = _anti_passback(data.get("anti_passback", {}))
        return AccessPolicy(
            version=int(data.get("version", 0)),
            schedules=schedules,
            rules=rules,
            override_groups=frozenset(data.get("override_groups", [])),
            authenticated_groups=frozenset(map(str, data.get("authenticated_groups", []))),
            pin_groups=frozenset(map(str, data.get("pin_groups", []))),
            door_schedules=dict(data.get("door_schedules", {})),
            closure_days=closures,
            anti_passback=passback,
            anti_passback_offline=offline,
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        if isinstance(exc, ScheduleError):
            raise
        raise ScheduleError(f"access policy is malformed: missing or wrong field {exc}") from exc
