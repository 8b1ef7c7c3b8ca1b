"""What faults act on and report to: the running simulation, as a protocol."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from simulator.broker import Broker
from simulator.building import Building
from simulator.netcut import NetCut
from simulator.staff import Person
from simulator.world import World


class Stage(Protocol):
    """What faults act on and report to: the running simulation."""

    @property
    def building(self) -> Building: ...
    @property
    def world(self) -> World: ...
    @property
    def broker(self) -> Broker: ...
    @property
    def people(self) -> list[Person]: ...

    @property
    def netcuts(self) -> Mapping[str, NetCut]: ...
    @property
    def card_key(self) -> bytes: ...

    outages: list[tuple[float, float]]  # broker down, simulated seconds
    partitions: list[tuple[str, float, float]]  # gate, cut, healed (simulated seconds)
    cut_began: dict[str, float]  # gate -> when its partition began, while it lasts
    cut_held: dict[str, set[str]]  # gate -> staff it held inside at its last cut
    # What each wait for the gates to agree again found: label, since, until, real s, ok.
    reconciliations: list[tuple[str, float, float, float, bool]]
    recovery_s: list[float]  # broker back -> console complete, real seconds
    fire_at: float | None  # when the fire alarm rose, simulated seconds

    def expect_alarm(self, device: str, alarm: str) -> None: ...
    def allow_alarm(self, device: str, alarm: str) -> None: ...
    def command(self, device: str, name: str, args: dict[str, Any]) -> dict[str, Any] | None: ...
    def catch_up(self, timeout_s: float = 30.0) -> bool: ...
    def roll_call_check(self, label: str) -> None: ...
    def sample_head_counts(self, label: str) -> None: ...
    def power_off(self, device: str) -> None: ...
    def power_on(self, device: str) -> None: ...
