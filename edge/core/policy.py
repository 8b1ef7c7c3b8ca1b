"""Access rules: which groups may pass which doors, and when.

A policy is small (groups x doors), so it lives in memory, indexed by door; credentials,
which may number in the millions, stay behind the `CredentialStore` port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from edge.core.schedule import Schedule, ScheduleError


@dataclass(frozen=True, slots=True)
class Rule:
    """Members of `group` may pass `doors` while `schedule` is open."""

    group: str
    doors: frozenset[str]
    schedule: str = "always"


@dataclass(frozen=True)
class AccessPolicy:
    """Rules, schedules, lockdown override groups, groups that need proven cards or a PIN, and
    doors held unlocked by schedule."""

    version: int = 0
    schedules: Mapping[str, Schedule] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    override_groups: frozenset[str] = frozenset()
    # Groups whose cards must prove themselves at every door (a security override card).
    authenticated_groups: frozenset[str] = frozenset()
    # Groups whose cards need a PIN at every door whose reader has a keypad.
    pin_groups: frozenset[str] = frozenset()
    door_schedules: Mapping[str, str] = field(default_factory=dict)  # door -> schedule id
    # Site-wide closure days ("MM-DD") on top of the device's own, and anti-passback per zone
    # (zone -> (off|soft|hard, forgive "HH:MM" or None)) overriding the device configuration.
    closure_days: tuple[str, ...] = ()
    anti_passback: Mapping[str, tuple[str, str | None]] = field(default_factory=dict)
    # The offline fallback (hard|soft) of each zone in `anti_passback` (absent: hard).
    anti_passback_offline: Mapping[str, str] = field(default_factory=dict)
    _by_door: Mapping[str, tuple[tuple[str, Schedule], ...]] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        schedules = dict(self.schedules)
        schedules.setdefault("always", Schedule.always())
        object.__setattr__(self, "schedules", MappingProxyType(schedules))
        object.__setattr__(self, "door_schedules", MappingProxyType(dict(self.door_schedules)))
        named = {r.schedule for r in self.rules} | set(self.door_schedules.values())
        unknown = sorted(s for s in named if s not in schedules)
        if unknown:
            raise ScheduleError(
                f"policy v{self.version} names undefined schedules {unknown}; "
                f"define them or use one of {sorted(schedules)}"
            )
        index: dict[str, list[tuple[str, Schedule]]] = {}
        for rule in self.rules:
            for door in rule.doors:
                index.setdefault(door, []).append((rule.group, schedules[rule.schedule]))
        object.__setattr__(
            self, "_by_door", MappingProxyType({d: tuple(v) for d, v in index.items()})
        )

    def rules_for(self, door: str) -> tuple[tuple[str, Schedule], ...]:
        """Return (group, schedule) pairs that admit people to `door`."""
        return self._by_door.get(door, ())

    def unlock_schedule(self, door: str) -> Schedule | None:
        """Return the schedule that holds `door` unlocked, if any."""
        schedule_id = self.door_schedules.get(door)
        return None if schedule_id is None else self.schedules[schedule_id]
