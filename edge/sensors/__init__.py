"""Presence sensors that speak a protocol (not a plain GPIO level): parsers and adapters."""
