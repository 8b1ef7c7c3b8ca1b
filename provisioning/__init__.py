"""Operators' tools: sites, devices, cardholders, rules, broker accounts."""
