"""Topic builders: pure functions, so every part of the system spells topics the same way.

{root}/{site}/{device}/status                 retained, last will "offline"
{root}/{site}/{device}/events/{kind}
{root}/{site}/{device}/occupancy/{zone}       retained
{root}/{site}/{device}/cmd/{name}             inbound, signed
{root}/{site}/{device}/credentials            inbound, retained, signed
"""

from __future__ import annotations

import re

from edge.errors import EdgeError

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
EVENT_KINDS = ("access", "door", "alarm", "presence", "system", "command")


class TopicError(EdgeError, ValueError):
    """A topic part that would break the topic tree (a wildcard, a slash, an empty level)."""


def _slug(value: str, what: str) -> str:
    if not _SLUG.match(value):
        raise TopicError(
            f"{what} {value!r} cannot be a topic level: use lower-case letters, digits and "
            "hyphens (no '/', '+' or '#')"
        )
    return value


def device_prefix(root: str, site: str, device: str) -> str:
    """Return `{root}/{site}/{device}`."""
    for level in root.split("/"):
        _slug(level, "topic root level")
    return f"{root}/{_slug(site, 'site')}/{_slug(device, 'device')}"


def status(root: str, site: str, device: str) -> str:
    """Return the retained status topic."""
    return f"{device_prefix(root, site, device)}/status"


def event(root: str, site: str, device: str, kind: str) -> str:
    """Return the topic for one event kind."""
    if kind not in EVENT_KINDS:
        raise TopicError(f"event kind {kind!r}: use one of {', '.join(EVENT_KINDS)}")
    return f"{device_prefix(root, site, device)}/events/{kind}"


def occupancy(root: str, site: str, device: str, zone: str) -> str:
    """Return the retained occupancy topic of a zone."""
    return f"{device_prefix(root, site, device)}/occupancy/{_slug(zone, 'zone')}"


def command(root: str, site: str, device: str, name: str) -> str:
    """Return the inbound topic of one command."""
    return f"{device_prefix(root, site, device)}/cmd/{_slug(name, 'command')}"


def commands_filter(root: str, site: str, device: str) -> str:
    """Return the subscription filter for every command of a device."""
    return f"{device_prefix(root, site, device)}/cmd/+"


def credentials(root: str, site: str, device: str) -> str:
    """Return the retained credentials topic of a device."""
    return f"{device_prefix(root, site, device)}/credentials"


def command_name(topic: str, root: str, site: str, device: str) -> str | None:
    """Return the level after `cmd/` if `topic` is one of this device's command topics.

    The level is returned as it arrived (any case, any script, even empty): the verifier
    accepts a command only where it is exactly the signed command name.
    """
    prefix = f"{device_prefix(root, site, device)}/cmd/"
    if not topic.startswith(prefix):
        return None
    return topic[len(prefix) :]
