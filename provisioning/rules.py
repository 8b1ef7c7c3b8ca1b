"""Access rules in the registry: schedules, group -> doors rules, lockdown override groups."""

from __future__ import annotations

import json
from datetime import time
from typing import Any

from edge.core.policy import AccessPolicy
from edge.core.schedule import ClosureDays, TimeRange
from edge.policy_json import policy_from_json
from edge.store.connection import write_transaction
from provisioning.registry import Registry

DAYS = {"mon": 0, "tue": 1, "wed": 2, "thu": 3, "fri": 4, "sat": 5, "sun": 6}


def parse_days(text: str) -> list[int]:
    """Parse "mon-fri", "sat,sun" or "all" into weekday numbers (0 = Monday)."""
    if text == "all":
        return list(range(7))
    days: set[int] = set()
    for part in text.lower().split(","):
        first, _, last = part.strip().partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ValueError(f"days {text!r}: write them like mon-fri, sat,sun or all")
        start, end = DAYS[first], DAYS[last or first]
        days.update(
            range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)]
        )
    return sorted(days)


def add_schedule(
    registry: Registry, schedule_id: str, days: str, hours: str, holidays: str | None
) -> None:
    """Add or replace a schedule (audited)."""
    TimeRange.parse(hours)
    if holidays:
        TimeRange.parse(holidays)
    body = {
        "windows": [{"days": parse_days(days), "hours": hours}],
        "on_holidays": [holidays] if holidays else [],
    }
    with write_transaction(registry.db) as db:
        db.execute(
            "INSERT INTO schedules (id, body) VALUES (?, ?) "
            "ON CONFLICT(id) DO UPDATE SET body = excluded.body",
            [schedule_id, json.dumps(body)],
        )
        registry.record(db, "schedule add", schedule=schedule_id, **body)


def add_rule(registry: Registry, group: str, doors: list[str], schedule: str) -> None:
    """Let `group` pass `doors` while `schedule` is open (audited)."""
    with write_transaction(registry.db) as db:
        if (
            schedule != "always"
            and not db.execute("SELECT 1 FROM schedules WHERE id = ?", [schedule]).fetchone()
        ):
            raise ValueError(f"no schedule {schedule!r}; add it with edge-provision rules schedule")
        db.execute(
            "INSERT INTO rules (grp, doors, schedule) VALUES (?, ?, ?)",
            [group, json.dumps(doors), schedule],
        )
        registry.record(db, "rule add", group=group, doors=doors, schedule=schedule)


def set_override_groups(registry: Registry, groups: list[str]) -> None:
    """Set the groups that pass through a lockdown (security staff)."""
    _set_groups(registry, "override_groups", "override groups", groups)


def set_authenticated_groups(registry: Registry, groups: list[str]) -> None:
    """Set the groups whose cards must prove themselves at every door (none: an empty list)."""
    _set_groups(registry, "authenticated_groups", "authenticated groups", groups)


def set_pin_groups(registry: Registry, groups: list[str]) -> None:
    """Set the groups that key a PIN after the card at every door with a keypad (none: [])."""
    _set_groups(registry, "pin_groups", "PIN groups", groups)


def _set_groups(registry: Registry, key: str, action: str, groups: list[str]) -> None:
    with write_transaction(registry.db) as db:
        db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, json.dumps(sorted(groups))],
        )
        registry.record(db, action, groups=sorted(groups))


def _setting(registry: Registry, key: str, default: Any) -> Any:
    row = registry.db.execute("SELECT value FROM settings WHERE key = ?", [key]).fetchone()
    return json.loads(row[0]) if row else default


def _save_setting(registry: Registry, key: str, value: Any, action: str) -> None:
    with write_transaction(registry.db) as db:
        db.execute(
            "INSERT INTO settings (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            [key, json.dumps(value, sort_keys=True)],
        )
        registry.record(db, action, **{key: value})


def set_closure_days(registry: Registry, days: list[str]) -> None:
    """Set the site's closure days ("MM-DD"), on top of Japanese public holidays."""
    ClosureDays.parse(days)
    _save_setting(registry, "closure_days", sorted(days), "closure days")


def set_anti_passback(
    registry: Registry, zone: str, mode: str, forgive_at: str | None, offline: str = "hard"
) -> None:
    """Set anti-passback for a zone: off, soft or hard, forgiven daily at `forgive_at`,
    falling back to `offline` (hard or soft) on a device cut off from the zone's others."""
    if mode not in ("off", "soft", "hard"):
        raise ValueError('anti-passback is "off", "soft" or "hard"')
    if offline not in ("hard", "soft"):
        raise ValueError('the offline fallback is "hard" or "soft"')
    if forgive_at:
        time.fromisoformat(forgive_at)
    settings = _setting(registry, "anti_passback", {})
    settings[zone] = {"mode": mode, "forgive_at": forgive_at, "offline": offline}
    _save_setting(registry, "anti_passback", settings, "anti-passback")


def anti_passback_zones(registry: Registry) -> set[str]:
    """Return the zones whose anti-passback the site policy sets."""
    return set(_setting(registry, "anti_passback", {}))


def policy_for(
    registry: Registry, doors: set[str], version: int, zones: set[str] | None = None
) -> AccessPolicy:
    """Return the policy a device with `doors` needs: only the rules that touch its doors."""
    return RuleBook(registry).policy(frozenset(doors), version, zones)


class RuleBook:
    """The site's rules and settings, read once; each device's policy is cut from them.

    A publish reads the registry once, not once per device, and devices with the same
    doors and zones share one policy object.
    """

    def __init__(self, registry: Registry) -> None:
        self.schedules: dict[str, Any] = {
            sid: json.loads(body)
            for sid, body in registry.db.execute("SELECT id, body FROM schedules")
        }
        self.rules = [
            (group, frozenset(json.loads(doors_json)), schedule)
            for group, doors_json, schedule in registry.db.execute(
                "SELECT grp, doors, schedule FROM rules ORDER BY id"
            )
        ]
        self.override_groups = _setting(registry, "override_groups", [])
        self.authenticated_groups = _setting(registry, "authenticated_groups", [])
        self.pin_groups = _setting(registry, "pin_groups", [])
        self.closure_days = _setting(registry, "closure_days", [])
        self.anti_passback: dict[str, Any] = _setting(registry, "anti_passback", {})
        self._cut: dict[tuple[frozenset[str], int, frozenset[str] | None], AccessPolicy] = {}

    def __repr__(self) -> str:
        return f"<RuleBook rules={len(self.rules)} schedules={len(self.schedules)}>"

    def policy(
        self, doors: frozenset[str], version: int, zones: set[str] | frozenset[str] | None = None
    ) -> AccessPolicy:
        """Return the policy of a device with `doors` (and `zones`), at `version`."""
        key = (doors, version, None if zones is None else frozenset(zones))
        found = self._cut.get(key)
        if found is None:
            found = self._cut[key] = self._policy(doors, version, key[2])
        return found

    def _policy(
        self, doors: frozenset[str], version: int, zones: frozenset[str] | None
    ) -> AccessPolicy:
        rules = [
            {"group": group, "doors": sorted(ruled & doors), "schedule": schedule}
            for group, ruled, schedule in self.rules
            if ruled & doors
        ]
        return policy_from_json(
            {
                "version": version,
                "schedules": {
                    s: self.schedules[s]
                    for s in {r["schedule"] for r in rules}
                    if s in self.schedules
                },
                "rules": rules,
                "override_groups": self.override_groups,
                "authenticated_groups": self.authenticated_groups,
                "pin_groups": self.pin_groups,
                "closure_days": self.closure_days,
                "anti_passback": {
                    z: body for z, body in self.anti_passback.items() if zones is None or z in zones
                },
            }
        )
