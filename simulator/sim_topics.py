"""The simulation's own topics, apart from the devices' contract (`edge.link.topics`).

sim/{site}/control/{op}        requests to a running simulation (tap, fault, …)
sim/{site}/reply/{token}       its answers, to the `reply_to` a request names
"""

from __future__ import annotations

from edge.link.topics import site_prefix

ROOT = "sim"


def control(site: str, op: str) -> str:
    """Return the topic of one control request."""
    return f"{site_prefix(ROOT, site)}/control/{op}"


def control_filter(site: str) -> str:
    """Return the filter for every control request of a site's simulation."""
    return f"{site_prefix(ROOT, site)}/control/#"


def reply_prefix(site: str) -> str:
    """Return `sim/{site}/reply/`: a request's `reply_to` must start with it."""
    return f"{site_prefix(ROOT, site)}/reply/"


def reply(site: str, token: str) -> str:
    """Return the topic one requester reads its answer on."""
    return f"{reply_prefix(site)}{token}"


def reply_filter(site: str) -> str:
    """Return the filter for every answer of a site's simulation."""
    return f"{reply_prefix(site)}#"
