"""The agent that runs on each Raspberry Pi at a card door, gate or sensor node."""

__version__ = "0.1.0"
