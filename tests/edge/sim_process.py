"""An agent on simulated hardware in its own process, for a test's SimDevice."""

from __future__ import annotations

from pathlib import Path

from simulator.process import AgentProcess as _AgentProcess

from .agent_fixtures import SimDevice


class AgentProcess(_AgentProcess):
    """`python -m simulator.agent` for a SimDevice, on real time, logging into `tmp`."""

    def __init__(self, device: SimDevice, tmp: Path) -> None:
        super().__init__(device.config, tmp)
