"""The pure core: events and the time in, commands and event records out. Standard library only."""
